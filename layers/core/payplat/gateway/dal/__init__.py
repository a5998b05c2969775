"""The rate-limits table (buckets, plans) and the gate wired on DynamoDB."""

__all__ = ["rate_limit_table", "wiring"]
