"""What the person on call sees: structured logs, redaction of secrets, upload progress.

``logs`` configures structlog (JSON off a terminal, console on one) and routes the
standard library's logging (the client libraries' warnings) through the same processors;
``redaction`` removes every registered secret, in its plain and encoded forms, from every
line. May import ``bot.core`` only.
"""
