"""The durable ledger: what was claimed, published, skipped or failed, and what tracking has seen."""
