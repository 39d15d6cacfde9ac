"""One publication exactly once: claim in the ledger, reconcile, publish, record, retry.

``publisher`` is the whole path of one (slot, account) publication; ``adapters`` keeps one
platform adapter per account; ``staging`` uploads media before a slot; ``faults`` holds the
crash hooks the kill tests use. May import platforms, ledger, campaign, schedule and below;
never the worker that drives it.
"""
