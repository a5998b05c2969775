"""payplat's domain core, shipped to every function as the Lambda layer.

Cut by capability first, then by layer. The kernel (this package's own modules: config,
errors, http, routes, principal, pagination, observability) is what every capability shares;
each capability package holds its domain modules and, where it has storage, a `dal`
subpackage (the only place boto3 is imported). The direction, enforced by import-linter
(`make lint`) and tests/unit/test_architecture.py: handlers (functions/*) -> capability
domain -> dal; capabilities import the kernel, and one another only through the modules a
package lists in its `__all__`; nothing imports `ops`.
"""
