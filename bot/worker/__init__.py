"""The hosted worker process: the scheduler loop, fan-out, recovery, reload, liveness, operations, signals.

``runtime.Worker`` owns the scheduler (``jobs``: our loop over APScheduler 3's public triggers, on an
injected clock), the publication thread pool, recovery and spaced catch-up of slots missed while no worker
ran (``recovery``), campaign reload once edited files have settled (``reload``; the campaign itself is
parsed in a capped child, ``bot.campaign.isolated``), heartbeats that let workers take over a dead one's
claims (``bot.ledger.workers``), alerts, metrics and the health check (``ops``), the HTTP endpoint
(``bot.web``), and warm and cold stops (``signals``). Only the CLI imports it.
"""
