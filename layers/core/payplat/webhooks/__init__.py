"""Webhooks: endpoints partners register, events made from the audit stream's money
movements, and signed deliveries retried until they land (or for three days).

- **Endpoints** belong to the owner the creating client acts for (`principal.owner`); the
  URL is checked against SSRF rules (payplat.webhooks.ssrf) on create and again at every delivery.
  The signing secret (`whsec_…`) is shown on create and on roll only; a rolled secret keeps
  signing next to the new one until it expires, so a partner can deploy the new one first.
- **Events** are made by λ webhook_dispatcher from audit events (`AUDIT_TO_EVENTS`); each
  belongs to the owners of its payment (payer and payee) and carries the object as the API
  showed it at that movement: the payment's state as the audit event recorded it, the rest
  read from the ledger. Its id is derived from the audit event's id, and it is written
  with a conditional put: a retried audit record makes no second event and no second
  delivery.
- **Deliveries**: one per (event, subscribed endpoint), queued on SQS. An attempt is a
  signed POST (`Payplat-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`, one v1
  per live secret); 2xx is delivered, anything else is retried with full-jitter exponential
  backoff until `RETRY_WINDOW_S` after the first attempt, then parked in the DLQ and
  recorded as failed. At least once: receivers deduplicate by `Payplat-Event-Id`.

Duplicates are harmless by construction: an attempt first claims its delivery with a
conditional update (attempt n only after n-1, or after a crashed attempt's lease ran out), so
a message SQS hands out twice makes one POST, not two.

Modules: the objects and what the domain needs from storage (objects), signatures
(signatures), the routes (endpoints), the dispatcher (dispatch), SSRF checks (ssrf); stored
in the webhooks table, sent through SQS and HTTP (dal). Imports the kernel, audit and
payments (the objects an event carries, idempotency keys).
"""

__all__ = ["dal", "dispatch", "endpoints", "objects", "signatures", "ssrf"]
