"""The hosted worker process: APScheduler jobs for slots, fan-out, recovery, reload, signals.

``runtime.Worker`` owns the scheduler (``jobs``), the publication thread pool, recovery of
slots missed while no worker ran (``recovery``), campaign reload on file changes
(``reload``) and tracking threads. Only the CLI imports it.
"""
