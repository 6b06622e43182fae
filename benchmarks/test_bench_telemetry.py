"""Telemetry modes on the same workload as the run-loop benchmark (trivial coroutine tool).

- not installed: a worker subprocess where a meta-path blocker hides opentelemetry and
  prometheus_client (``import pygents`` takes the real "not installed" path); its rounds
  are timed inside the worker and recorded here as the benchmark's rounds;
- installed but off: this process (``PYGENTS_TELEMETRY=off``, auto-instrument skipped);
- no-op providers: ``instrument(NoOpTracerProvider(), NoOpMeterProvider(),
  prometheus_registry=False)``;
- SDK tracer: ``TracerProvider`` + ``BatchSpanProcessor`` (defaults) to an exporter that
  counts and drops spans; Prometheus off, no-op meter provider;
- + Prometheus: a private ``CollectorRegistry``;
- + SDK metrics: a ``MeterProvider`` whose reader (``InMemoryMetricReader``) never collects
  during the run.

Each instrumented mode calls ``uninstrument()`` afterwards (``TelemetryMode.__exit__``).
The span queue is flushed in the untimed setup of every round, so each round starts with an
idle export thread; spans exported during a round (the processor exports every 512) are in
the measurement, as they would be in a real program.
"""

from __future__ import annotations

import asyncio
from typing import Any

import _workloads as w
import pytest

N = 1000  # turns per round
ROUNDS = 15

pytestmark = pytest.mark.benchmark(group="telemetry modes")


def test_not_installed(per_op: Any) -> None:
    worker = w.Worker("not_installed")
    try:
        assert not worker.hello["opentelemetry_importable"]
        assert not worker.hello["prometheus_client_importable"]
        internal: list[float] = []

        def target() -> None:
            internal.append(worker("runloop", N))  # fill untimed, drain timed, in the worker

        per_op(target, ops=N, rounds=ROUNDS, internal=internal, timed="inside the worker")
    finally:
        worker.close()


@pytest.mark.parametrize("mode", w.IN_PROCESS_MODES)
def test_mode(per_op: Any, runner: asyncio.Runner, mode: str) -> None:
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])
    with w.TelemetryMode(mode) as telemetry:

        def setup() -> None:
            telemetry.flush()
            runner.run(w.put_round(agent, trivial, N))

        def target() -> None:
            runner.run(w.drain(agent))

        per_op(target, ops=N, rounds=ROUNDS, setup=setup, mode=w.MODE_LABELS[mode])
        telemetry.flush()
        if telemetry.tracer_provider is not None:
            # warm-up + rounds, one span per turn and one per run()
            per_op.benchmark.extra_info["spans_exported"] = telemetry.exported
            assert telemetry.exported == (ROUNDS + 1) * (N + 1)
