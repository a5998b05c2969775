"""The operator's tools: the `payplat` CLI, admin actions, the finance report and the audit
view. A composition root like the handlers: it may import any capability, and nothing
imports it.
"""
