"""Partner clients (apps): their registration record, secrets and keys, and a short-lived
cache of records for the request path (registry); stored in the clients table (dal). Imports
the kernel only.
"""

__all__ = ["dal", "registry"]
