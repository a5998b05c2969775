"""Money: the double-entry ledger and its state machine (ledger), amounts and currencies
(money), the payment routes' request models (requests) and response models (models),
idempotency keys (idempotency), the routes' reads (queries), authorization expiry (expiry),
the ledger's audit events (ledger_audit) and its independent verification (ledger_verify);
stored in the ledger table (dal). Imports the kernel and audit.
"""

__all__ = ["dal", "idempotency", "ledger", "ledger_verify", "models", "money", "requests"]
