"""The authorizer's answer: an IAM policy naming every route the token's scopes allow.

API Gateway caches the policy per token and reuses it for *every* route, so a policy naming
only the called route would wrongly deny the others; one naming every allowed route is right
everywhere. A token whose scopes allow no route gets an explicit Deny.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from typing import Any

from payplat.routes import routes_allowed

Policy = dict[str, Any]


def api_prefix(method_arn: str) -> str:
    """`arn:aws:execute-api:region:account:api-id/stage` of a method ARN."""
    parts = method_arn.split("/")
    if len(parts) < 3 or not parts[0].startswith("arn:"):
        raise ValueError("not an execute-api method ARN")
    return "/".join(parts[:2])


@functools.lru_cache(maxsize=256)
def _allowed(prefix: str, scopes: frozenset[str]) -> tuple[str, ...]:
    # The same for every token with these scopes: worked out once per container.
    return tuple(f"{prefix}/{route.arn_path}" for route in routes_allowed(scopes))


def build_policy(
    principal_id: str, method_arn: str, scopes: frozenset[str], context: dict[str, str | int]
) -> Policy:
    prefix = api_prefix(method_arn)
    resources = _allowed(prefix, scopes)
    if resources:
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": list(resources)}
    else:
        statement = {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{prefix}/*"]}
    return {
        "principalId": principal_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": context,
    }


def is_allowed(policy: Policy, method_arn: str) -> bool:
    """Evaluate `policy` for `method_arn` as API Gateway does: an explicit Deny wins, then an
    Allow must match; `*` and `?` are wildcards in resources."""
    allowed = False
    for statement in policy["policyDocument"]["Statement"]:
        resources = statement["Resource"]
        patterns = (resources,) if isinstance(resources, str) else tuple(resources)
        if _matcher(patterns).match(method_arn):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


@functools.lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression for a statement's resources (fnmatch's, case-sensitive)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
