"""pygents (this tree or the published package): a chain of N tool-returned turns.

Each step: the tool runs, returns the next ``Turn`` (tool-driven flow control), the agent
routes it to its queue (``put``) and runs it. Tracing on (this tree only): the
OpenTelemetry SDK tracer with a batch processor to a discarding exporter, via
``pygents.observability.instrument`` (no metrics).
"""

from __future__ import annotations

import os

os.environ.setdefault("PYGENTS_TELEMETRY", "off")

from typing import Any

from _common import discarding_tracer_provider, fail, guarded, measure, parse

args = parse()


def run() -> None:
    import pygents
    from pygents import Agent, Turn, tool

    version = getattr(pygents, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("pygents")
    name = "pygents"
    if args.tracing == "on":
        try:
            from opentelemetry import metrics

            from pygents.observability import instrument
        except ImportError:
            fail(name, args, "no tracing in this version / environment")
            return
        instrument(
            tracer_provider=discarding_tracer_provider(),
            meter_provider=metrics.NoOpMeterProvider(),
            prometheus_registry=False,
        )

    calls = 0

    @tool()
    async def step(left: int) -> Any:
        nonlocal calls
        calls += 1
        if left > 1:
            return Turn("step", kwargs={"left": left - 1})
        return left

    agent = Agent("compare", "benchmark agent", [step])

    async def workload(steps: int) -> int:
        nonlocal calls
        calls = 0
        await agent.put(Turn(step, kwargs={"left": steps}))
        async for _ in agent.run():
            pass
        return calls

    measure(name, version, workload, args)


guarded("pygents", args, run)
