"""API management on the request path: the Lambda authorizer (authorizer, verify, keyset,
policy: JWT validation and the scope policy, free of boto3, Powertools and pydantic for its
cold start), and the backend's gate (access: the caller, its scope, a DPoP-bound token's
proof (dpop, nonces), its rate limits, quotas, revocations and the proof's one use in one write;
limiter, plans, enforce, revocation); buckets and
plans stored in the rate-limits table (dal). Imports the kernel, audit and clients.
"""

__all__ = [
    "access",
    "dal",
    "dpop",
    "enforce",
    "keyset",
    "limiter",
    "nonces",
    "plans",
    "revocation",
    "verify",
]
