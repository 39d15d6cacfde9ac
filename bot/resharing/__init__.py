"""Hashtag tracking and the reshare policy: what anyone posts under the tag is untrusted.

``tracker`` reads mentions (polling feeds, ``streams`` where a platform streams),
``policy`` decides (``decide`` applies it to a batch fairly), ``resharer`` reshares what the
policy allows and records every decision in the ledger. May import platforms, ledger,
campaign and below; never the worker.
"""
