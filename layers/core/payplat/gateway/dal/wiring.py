"""Composition: the request-path gate on its DynamoDB stores, as every function that serves
rate-limited routes builds it (at cold start, once)."""

from __future__ import annotations

from payplat.clients.dal.clients_table import DynamoClientStore
from payplat.clients.registry import CachedClients
from payplat.gateway.access import Gate
from payplat.gateway.dal.rate_limit_table import DynamoBucketStore
from payplat.gateway.limiter import RateLimiter
from payplat.gateway.nonces import Nonces
from payplat.gateway.plans import CachedPlans


def dynamo_gate(
    clients_table: str,
    rate_limits_table: str,
    cache_ttl_s: float,
    *,
    dpop_nonce: bool = False,
    sender_constrained: bool = False,
) -> Gate:
    buckets = DynamoBucketStore(rate_limits_table)
    return Gate(
        clients=CachedClients(DynamoClientStore(clients_table), cache_ttl_s),
        plans=CachedPlans(buckets, cache_ttl_s),
        limiter=RateLimiter(buckets),
        nonces=Nonces(buckets) if dpop_nonce else None,
        sender_constrained=sender_constrained,
    )
