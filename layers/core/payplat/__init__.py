"""payplat's domain core, shipped to every function as the Lambda layer.

Layers, one direction: handlers (functions/*) -> domain (this package) -> dal (payplat.dal,
the only place boto3 is imported).
"""
