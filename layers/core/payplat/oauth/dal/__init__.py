"""The tokens table (codes, refresh families, pending authorizations, signing keys), the
users table, and KMS signing."""

__all__ = ["kms_signer", "tokens_table", "users_table"]
