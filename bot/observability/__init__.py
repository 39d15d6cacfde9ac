"""What the person on call sees: structured logs, redaction of secrets, alerts, metrics, upload progress.

``logs`` configures structlog (JSON off a terminal, console on one) and routes the standard library's
logging (the client libraries' warnings) through the same processors; ``redaction`` removes every
registered secret, in its plain and encoded forms, from every line and from every stored or shown error
text; ``alerts`` sends grouped, redacted alerts through apprise; ``metrics`` keeps the worker's Prometheus
counters. May import ``bot.core`` only.
"""
