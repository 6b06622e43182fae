"""Where the telemetry time goes: ablations and a cProfile breakdown of the run loop.

Usage: python benchmarks/profile_telemetry.py [--n 1000] [--rounds 9]

Part 1 (ablations, no profiler, medians of interleaved-free rounds of ``n`` turns): the
run loop per turn with telemetry off; with each of the 22 hook types of ``BRIDGED`` holding
one empty global hook (hook dispatch alone; the bridge itself now registers at most 10 global
hooks and does its per-turn work in an execution scope); with the SDK tracer but no span
processor (span start/end and attributes alone); with the batch processor (the real "SDK
tracer" mode); + Prometheus; + SDK metrics; and each of the last three again with the cyclic
GC disabled during the drain (what the GC costs).

Part 2 (cProfile of the full mode's drain): own time grouped by where it is spent. The
profiler inflates everything, Python calls most; read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["PYGENTS_TELEMETRY"] = "off"

import _workloads as w  # noqa: E402

from pygents import (  # noqa: E402
    AgentHook,
    ContextPoolHook,
    ContextQueueHook,
    ToolHook,
    TurnHook,
    current_turn,
    hook,
)
from pygents.testing import isolated_registries  # noqa: E402


def drain_cost(runner: asyncio.Runner, n: int, rounds: int, no_gc: bool = False) -> float:
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])
    values = []
    for _ in range(rounds + 1):
        runner.run(w.put_round(agent, trivial, n))
        gc.collect()
        if no_gc:
            gc.disable()
        try:
            values.append(runner.run(w.timed_drain(agent)) / n)
        finally:
            gc.enable()
    w.forget(agent)
    return statistics.median(values[1:]) * 1e6


#: The hook types pygents.observability's bridge registered a global hook on before it had an
#: execution scope; it now registers at most 10 of them (``Bridge.register``: pause, resume, a
#: tool's yield, the context queues' and pools' events).
BRIDGED = (
    TurnHook.BEFORE_RUN,
    TurnHook.ON_ERROR,
    TurnHook.ON_TIMEOUT,
    TurnHook.ON_COMPLETE,
    AgentHook.ON_RUN_START,
    AgentHook.ON_RUN_END,
    AgentHook.AFTER_PUT,
    AgentHook.BEFORE_TURN,
    AgentHook.ON_TURN_VALUE,
    AgentHook.ON_PAUSE,
    AgentHook.ON_RESUME,
    ToolHook.BEFORE_INVOKE,
    ToolHook.AFTER_INVOKE,
    ToolHook.ON_ERROR,
    ToolHook.ON_YIELD,
    ContextQueueHook.AFTER_APPEND,
    ContextQueueHook.ON_EVICT,
    ContextQueueHook.AFTER_CLEAR,
    ContextPoolHook.AFTER_ADD,
    ContextPoolHook.AFTER_REMOVE,
    ContextPoolHook.ON_EVICT,
    ContextPoolHook.AFTER_CLEAR,
)


@contextmanager
def empty_hooks() -> Iterator[None]:
    """One empty global hook on every hook type of ``BRIDGED``: dispatch alone."""
    with isolated_registries():
        for t in BRIDGED:

            async def nothing(*args: Any, **kwargs: Any) -> None:
                return None

            nothing.__name__ = f"empty_{type(t).__name__}_{t.name}"
            hook(t)(nothing)
        yield


@contextmanager
def tracer_without_processor() -> Iterator[None]:
    from opentelemetry import metrics
    from opentelemetry.sdk.trace import TracerProvider

    from pygents.observability import instrument, uninstrument

    instrument(
        tracer_provider=TracerProvider(),
        meter_provider=metrics.NoOpMeterProvider(),
        prometheus_registry=False,
    )
    try:
        yield
    finally:
        uninstrument()


@contextmanager
def minimal_bridge() -> Iterator[None]:
    """The least Python a bridge of the same hooks can run, for comparison (not a bridge).

    The per-turn hooks the real bridge used before its execution scope (``BEFORE_TURN``,
    ``BEFORE_RUN``, ``BEFORE_INVOKE``, ``AFTER_INVOKE``, ``ON_COMPLETE``, ``ON_TURN_VALUE``; the
    bridge now uses none of them: its per-turn work goes through ``ExecutionScope``), each
    doing only the essential work: one SDK span per turn made at completion (same 7
    attributes, batch processor, discarding exporter) and the Prometheus-side counts as bare
    list and dict updates. No failure guard, label cap, exemplar, suppression check or run
    bookkeeping.
    """
    import threading
    import time
    from bisect import bisect_left
    from types import SimpleNamespace

    from opentelemetry import trace

    provider = w.discarding_tracer_provider(SimpleNamespace(exported=0))
    tracer = provider.get_tracer("minimal")
    kind = trace.SpanKind.INTERNAL
    bounds = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    lock = threading.Lock()
    counts = {"turn": [0] * 7, "tool": [0] * 7, "wait": [0] * 7, "values": 0}
    depth: dict[str, int] = {}
    states: dict[Any, list[Any]] = {}
    run_context: list[Any] = [None]
    start_attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "trivial",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "A registered coroutine tool that returns its argument",
        "pygents.turn.timeout": 60.0,
    }
    with isolated_registries():

        @hook(AgentHook.ON_RUN_START)
        async def minimal_run_start(agent: Any) -> None:
            run_context[0] = trace.set_span_in_context(tracer.start_span("invoke_agent"))

        @hook(AgentHook.BEFORE_TURN)
        async def minimal_before_turn(agent: Any) -> None:
            depth[agent.name] = len(agent) - 1

        @hook(TurnHook.BEFORE_RUN)
        async def minimal_before_run(turn: Any) -> None:
            states[turn] = [time.time_ns(), 0.0, 0.0]
            wait = turn.metadata.queue_wait
            with lock:
                counts["wait"][bisect_left(bounds, wait)] += 1

        @hook(ToolHook.BEFORE_INVOKE)
        async def minimal_before_invoke(*args: Any, **kwargs: Any) -> None:
            state = states.get(current_turn())
            if state is not None:
                state[1] = time.perf_counter()

        @hook(ToolHook.AFTER_INVOKE)
        async def minimal_after_invoke(result: Any) -> None:
            state = states.get(current_turn())
            if state is not None:
                state[2] = time.perf_counter() - state[1]

        @hook(TurnHook.ON_COMPLETE)
        async def minimal_complete(turn: Any, reason: Any) -> None:
            start, _, tool_time = states.pop(turn)
            end = time.time_ns()
            attributes = dict(start_attrs)
            attributes["pygents.turn.stop_reason"] = reason.value
            attributes["pygents.turn.values"] = 1
            span = tracer.start_span(
                "execute_tool trivial",
                context=run_context[0],
                kind=kind,
                attributes=attributes,
                start_time=start,
            )
            span.end(end_time=end)
            with lock:
                counts["turn"][bisect_left(bounds, (end - start) / 1e9)] += 1
                counts["tool"][bisect_left(bounds, tool_time)] += 1

        @hook(AgentHook.ON_TURN_VALUE)
        async def minimal_value(agent: Any, turn: Any, value: Any) -> None:
            with lock:
                counts["values"] += 1

        try:
            yield
        finally:
            provider.shutdown()


@contextmanager
def mode(name: str) -> Iterator[None]:
    with w.TelemetryMode(name) as telemetry:
        yield
        telemetry.flush()


def ablations(n: int, rounds: int) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    with asyncio.Runner() as runner:
        steps: list[tuple[str, Callable[[], Any], bool]] = [
            ("telemetry off", lambda: mode("installed_off"), False),
            ("empty global hooks on the bridged hook types", empty_hooks, False),
            ("SDK tracer, no span processor", tracer_without_processor, False),
            ("SDK tracer, batch processor (mode 'sdk')", lambda: mode("sdk"), False),
            ("  same, GC disabled during the drain", lambda: mode("sdk"), True),
            ("SDK tracer + Prometheus", lambda: mode("sdk_prometheus"), False),
            ("  same, GC disabled during the drain", lambda: mode("sdk_prometheus"), True),
            ("  a minimal bridge of the same hooks (comparison)", minimal_bridge, False),
            (
                "SDK tracer + Prometheus + SDK metrics",
                lambda: mode("sdk_prometheus_metrics"),
                False,
            ),
            ("  same, GC disabled during the drain", lambda: mode("sdk_prometheus_metrics"), True),
        ]
        for label, make, no_gc in steps:
            with make():
                rows.append((label, drain_cost(runner, n, rounds, no_gc)))
            print(f"{label:50} {rows[-1][1]:7.2f} us/turn", flush=True)
    return rows


CATEGORIES = [
    ("opentelemetry/sdk/trace/export", "batch span processor (on_end, queue)"),
    ("opentelemetry/sdk/trace", "OTel SDK span (start, attributes, end)"),
    ("opentelemetry/sdk/metrics", "OTel SDK metrics (histogram record)"),
    ("opentelemetry/sdk/util", "OTel SDK span (start, attributes, end)"),
    ("opentelemetry/attributes", "OTel SDK span (start, attributes, end)"),
    ("opentelemetry/trace", "OTel API (span context, ids)"),
    ("opentelemetry/context", "OTel API (span context, ids)"),
    ("opentelemetry", "OTel other"),
    ("pygents/observability/_store", "metric store (Prometheus, OTel observables)"),
    ("pygents/observability/_metrics", "OTel metrics glue"),
    ("pygents/observability", "bridge hooks (pygents.observability)"),
    ("pygents/_dispatch", "hook dispatch (pygents._dispatch)"),
    ("pygents/", "pygents core (run loop, turn, tool)"),
    ("benchmarks/", "benchmark workload"),
    ("asyncio", "asyncio"),
    ("threading", "threading (locks, condition notify)"),
    ("random", "random (trace and span ids)"),
]


def categorise(filename: str, funcname: str) -> str:
    path = filename.replace("\\", "/")
    if filename == "~":
        if "random" in funcname or "getrandbits" in funcname:
            return "random (trace and span ids)"
        if "lock" in funcname or "acquire" in funcname or "release" in funcname:
            return "threading (locks, condition notify)"
        return "builtins (time, dict, list, ...)"
    for needle, category in CATEGORIES:
        if needle in path:
            return category
    return "other"


def profile(n: int) -> list[tuple[str, float]]:
    with asyncio.Runner() as runner, w.TelemetryMode("sdk_prometheus_metrics") as telemetry:
        trivial = w.trivial_tool()
        agent = w.agent_with([trivial])
        runner.run(w.put_round(agent, trivial, n))
        runner.run(w.drain(agent))  # warm-up
        telemetry.flush()
        runner.run(w.put_round(agent, trivial, n))
        gc.collect()
        profiler = cProfile.Profile()
        gc_time = [0.0]
        started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            import time

            if phase == "start":
                started[0] = time.perf_counter()
            else:
                gc_time[0] += time.perf_counter() - started[0]

        gc.callbacks.append(on_gc)
        try:
            profiler.enable()
            runner.run(w.drain(agent))
            profiler.disable()
        finally:
            gc.callbacks.remove(on_gc)
        telemetry.flush()
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[categorise(filename, funcname)] += tottime
    total = sum(totals.values())
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    print(f"\ncProfile of the drain, mode sdk_prometheus_metrics, {n} turns (own time)")
    for category, seconds in rows:
        print(f"  {category:48} {seconds / total:6.1%}")
    print(f"  (cyclic GC during the profiled drain: {gc_time[0] / n * 1e6:.1f} us/turn)")
    return rows


def primitives(n: int) -> list[tuple[str, float]]:
    """What the OpenTelemetry SDK itself costs per call, with no pygents involved."""
    import time

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import SpanKind

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "trivial",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Return x.",
        "pygents.turn.timeout": 60.0,
    }

    def spans(provider: Any) -> float:
        tracer = provider.get_tracer("bench")
        best = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                span = tracer.start_span(
                    "execute_tool trivial", kind=SpanKind.INTERNAL, attributes=attributes
                )
                span.set_attribute("pygents.turn.stop_reason", "completed")
                span.set_attribute("pygents.turn.values", 1)
                span.end()
            best.append((time.perf_counter() - t0) / n)
            provider.force_flush()
        provider.shutdown()
        return statistics.median(best) * 1e6

    bare = TracerProvider()
    batched = TracerProvider()
    batched.add_span_processor(BatchSpanProcessor(Discard()))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    histogram = meter.create_histogram("h", unit="s")
    attrs2 = {"gen_ai.tool.name": "trivial", "pygents.agent": "bench"}

    def records() -> float:
        values = []
        for _ in range(5):
            t0 = time.perf_counter()
            for i in range(n):
                histogram.record(i * 1e-6, attrs2)
            values.append((time.perf_counter() - t0) / n)
        return statistics.median(values) * 1e6

    rows = [
        ("SDK span: start (5 attrs) + 2 set_attribute + end, no processor", spans(bare)),
        ("same, batch processor to a discarding exporter", spans(batched)),
        ("SDK histogram.record, 2 attributes", records()),
    ]
    print()
    for label, us in rows:
        print(f"{label:66} {us:6.2f} us")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    ablations(args.n, args.rounds)
    primitives(args.n)
    profile(args.n)


if __name__ == "__main__":
    main()
