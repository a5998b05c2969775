"""The audit trail and the metrics: the structured audit record every decision and money
movement writes (events), the metric catalogue and its EMF writer, the hash chain that seals
the trail, and its stores (dal: the Kinesis stream, the Object Lock archive). The bottom of
the house: it imports nothing of payplat but itself, so every layer may record and measure.
"""

__all__ = ["chain", "dal", "emf", "events", "metrics"]
