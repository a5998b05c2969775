"""What the operator's reports read of the ledger table."""
