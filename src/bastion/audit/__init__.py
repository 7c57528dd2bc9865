"""The audit trail: one hash-chained, checkpoint-signed event per request, group-committed."""
