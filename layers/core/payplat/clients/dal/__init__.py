"""The clients table (and the plans stored beside it)."""

__all__ = ["clients_table"]
