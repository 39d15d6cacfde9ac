"""The worker's HTTP endpoint for hosts and staff: ``/healthz``, ``/metrics``, the status page and its review actions.

``server`` serves a ``Backend`` (functions of the running worker) with the standard library's ``wsgiref``
and Jinja2 templates (``templates/``); ``calendar`` lays out today and the next days per account from the
campaign and the ledger. Sits between the worker (which starts it) and publishing/resharing; may import
those layers and below, never the worker nor the CLI.
"""
