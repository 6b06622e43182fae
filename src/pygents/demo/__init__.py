"""``pygents demo``: a multi-agent workload with telemetry on, to see pygents at work.

A research team of agents (planners, fetchers, writers and a supervisor) answers a stream of
questions against simulated services, exercising every hook the telemetry bridge covers:
tool-driven flow control, streaming tools, ``send()`` between agents, context-queue and
context-pool evictions, timeouts, tool errors and pause/resume. It serves Prometheus
``/metrics``, exports spans over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, shows live
progress and ends with a per-agent summary.

Run it with ``pygents demo`` (or ``python -m pygents demo``); ``--help`` lists the options.
The agents are in ``pygents.demo._agents``. Importing this package registers nothing; the
tools register when the demo runs.
"""

from __future__ import annotations

__all__: list[str] = []
