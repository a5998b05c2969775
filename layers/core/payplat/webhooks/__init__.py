"""Webhooks: endpoints, events and signed deliveries with retries (api), SSRF checks
(ssrf); stored in the webhooks table, sent through SQS and HTTP (dal). Imports the kernel,
audit and payments (the objects an event carries, idempotency keys).
"""

__all__ = ["api", "dal", "ssrf"]
