"""Quick per-turn cost of each telemetry mode (no pytest-benchmark).

Usage: PYGENTS_TELEMETRY=off python benchmarks/quick_telemetry.py MODE [N]
MODE: core | noop | proxy | sdk | sdk+prom | sdk+prom+metrics
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from pygents import Agent, Turn, tool

MODE = sys.argv[1] if len(sys.argv) > 1 else "core"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000


def setup() -> None:
    if MODE == "core":
        return
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from prometheus_client import CollectorRegistry

    from pygents.observability import instrument

    class Discard(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    if MODE == "noop":
        instrument(
            tracer_provider=trace.NoOpTracerProvider(),
            meter_provider=metrics.NoOpMeterProvider(),
            prometheus_registry=False,
        )
        return
    if MODE == "proxy":  # global providers never configured
        instrument(meter_provider=metrics.NoOpMeterProvider(), prometheus_registry=False)
        return
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    registry = CollectorRegistry() if "prom" in MODE else False
    mp = (
        MeterProvider(metric_readers=[InMemoryMetricReader()])
        if "metrics" in MODE
        else (metrics.NoOpMeterProvider())
    )
    instrument(tracer_provider=tp, meter_provider=mp, prometheus_registry=registry)


@tool()
async def trivial(x: int) -> int:
    return x


async def one_round(agent: Agent, n: int) -> float:
    for i in range(n):
        await agent.put(Turn(trivial, kwargs={"x": i}))
    t0 = time.perf_counter()
    async for _turn, _value in agent.run():
        pass
    return (time.perf_counter() - t0) / n


async def main() -> None:
    setup()
    agent = Agent("bench", "bench", [trivial])
    await one_round(agent, 500)
    runs = [await one_round(agent, N) for _ in range(7)]
    print(f"{MODE:18s} run loop: {statistics.median(runs) * 1e6:7.2f} us/turn")


asyncio.run(main())
