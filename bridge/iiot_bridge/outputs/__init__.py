"""Outputs: sinks that drain the outbox, each with its own cursor, batching and retry."""
