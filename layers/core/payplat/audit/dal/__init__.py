"""The audit trail's stores: the Kinesis stream and the Object Lock archive (boto3)."""

__all__ = ["archive", "stream"]
