"""Shared by the runners: argument parsing, the timing loop and the JSON result line.

A runner measures one implementation in its own interpreter/virtualenv:
``python run_X.py --steps 100 --repeats 7 --warmup 2 --tracing off`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tracing", choices=("off", "on"), default="off")
    return parser.parse_args()


def measure(
    name: str,
    version: str,
    workload: Callable[[int], Awaitable[int]],
    args: argparse.Namespace,
    note: str = "",
) -> None:
    """Run ``workload(steps)`` warmup + repeats times on one event loop; print the result.

    ``workload`` returns how many tool calls it made, checked against ``steps``.
    """

    async def main() -> list[float]:
        times = []
        for i in range(args.warmup + args.repeats):
            t0 = time.perf_counter()
            calls = await workload(args.steps)
            elapsed = time.perf_counter() - t0
            if calls != args.steps:
                raise RuntimeError(f"{name}: {calls} tool calls, expected {args.steps}")
            if i >= args.warmup:
                times.append(elapsed / args.steps)
        return times

    times = asyncio.run(main())
    emit(
        {
            "impl": name,
            "version": version,
            "python": platform.python_version(),
            "steps": args.steps,
            "tracing": args.tracing,
            "repeats": args.repeats,
            "median_us": statistics.median(times) * 1e6,
            "min_us": min(times) * 1e6,
            "note": note,
        }
    )


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def fail(name: str, args: argparse.Namespace, reason: str) -> None:
    emit({"impl": name, "steps": args.steps, "tracing": args.tracing, "error": reason})
    sys.exit(0)


def guarded(name: str, args: argparse.Namespace, fn: Callable[[], None]) -> None:
    """Run ``fn``; report an exception as an ``error`` result rather than a traceback."""
    try:
        fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        fail(name, args, f"{type(exc).__name__}: {exc}"[:300])


def discarding_tracer_provider() -> Any:
    """An OpenTelemetry SDK tracer provider: batch processor to an exporter that drops spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider
