"""The values every layer shares, importing nothing else of ours.

Errors grouped by what the caller does next (``errors``), time sources (``clock``), the
campaign's runtime model (``model``: accounts, posts, schedules, slots, policy), and what
travels between the publisher, the platforms and the tracker (``values``: an outgoing post
and its attachments, a receipt, a mention). Third-party imports only; no I/O.
"""
