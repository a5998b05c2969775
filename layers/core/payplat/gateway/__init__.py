"""API management on the request path: the Lambda authorizer (authorizer, verify, keyset,
policy: JWT validation and the scope policy, free of boto3, Powertools and pydantic for its
cold start), and the backend's gate (access: the caller, its scope, its rate limits, quotas
and revocations in one conditional write; limiter, plans, enforce, revocation); buckets and
plans stored in the rate-limits table (dal). Imports the kernel, audit and clients.
"""

__all__ = ["access", "dal", "enforce", "keyset", "limiter", "plans", "revocation", "verify"]
