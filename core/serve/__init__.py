"""``connector serve``: webhooks in, through a durable inbox, out through the recipes' sinks.

* :mod:`core.serve.app`: the HTTP routes (verify, then commit to the inbox, then answer 2xx).
* :mod:`core.serve.store_thread`: the one thread that writes the inbox, many events per commit.
* :mod:`core.serve.drain`: a worker per recipe draining its inbox through the runner, and its
  reconciling poll.
* :mod:`core.serve.metrics`: counters and the Prometheus text of ``GET /metrics``.
* :mod:`core.serve.server`: uvicorn, the workers, and a graceful stop on SIGTERM.
* :mod:`core.serve.command` and :mod:`core.serve.inbox_command`: the CLI commands.
"""
