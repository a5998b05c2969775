"""The webhooks table, the delivery queue (SQS) and the HTTP poster."""

__all__ = ["webhook_http", "webhook_queue", "webhooks_table"]
