"""The ledger table, and idempotency claims as items of whichever table they answer for."""

__all__ = ["idempotency_items", "ledger_table"]
