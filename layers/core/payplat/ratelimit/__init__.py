"""Rate limits and quotas: GCRA buckets and fixed-window quotas, decided in one conditional
DynamoDB write per request (see limiter.py)."""
