"""The benchmark suite's fixtures: `pytest benchmarks --benchmark-only`.

Not collected by the default ``python -m pytest`` (``testpaths = ["tests"]``).

Every benchmark reports a cost **per operation** (per turn, per yielded value, per append...):
a round does ``ops`` operations on a persistent event loop, pytest-benchmark times the round,
and ``per_op`` divides each round's time by ``ops`` (what pytest-benchmark itself does with
``iterations``), so its table shows per-operation times. Setup work of a round (filling a
queue, say) runs in pedantic ``setup``, outside the timing. Derived figures (turns/s, bytes
per turn, spans exported...) go to ``extra_info`` and a summary printed at the end.
"""

from __future__ import annotations

import os

# Telemetry is switched on only explicitly (instrument()) by the telemetry benchmarks.
os.environ["PYGENTS_TELEMETRY"] = "off"

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pygents.testing import isolated_registries

_RESULTS: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _isolated_registries() -> Iterator[None]:
    with isolated_registries():
        yield


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop per benchmark, reused by every round (``runner.run(coro)``)."""
    with asyncio.Runner() as r:
        yield r


def _normalise(benchmark: Any, ops: int, internal: list[float] | None) -> None:
    """Make the recorded rounds per-operation times (as ``iterations=ops`` would)."""
    metadata = benchmark.stats
    stats = metadata.stats
    if not hasattr(stats, "data") or not hasattr(metadata, "iterations"):
        raise RuntimeError("pytest-benchmark internals changed: update benchmarks/conftest.py")
    if internal is not None:
        # Rounds timed inside a worker process (seconds per operation); the list also
        # holds the warm-up rounds, which come first.
        if len(internal) < len(stats.data):
            raise RuntimeError("one internal timing per round expected")
        stats.data[:] = internal[-len(stats.data) :]
    else:
        stats.data[:] = [d / ops for d in stats.data]
    for cached in [k for k in vars(stats) if k != "data"]:
        delattr(stats, cached)  # drop any statistic computed from the raw rounds
    metadata.iterations = ops


class PerOp:
    """``per_op(target, ops=N, rounds=R, setup=...)``: benchmark a round of N operations."""

    def __init__(self, benchmark: Any, request: pytest.FixtureRequest) -> None:
        self.benchmark = benchmark
        self.name = request.node.name

    def __call__(
        self,
        target: Callable[[], Any],
        *,
        ops: int,
        rounds: int,
        unit: str = "turn",
        setup: Callable[[], Any] | None = None,
        warmup_rounds: int = 1,
        internal: list[float] | None = None,
        **extra: Any,
    ) -> Any:
        bench = self.benchmark
        bench.extra_info.update({"ops_per_round": ops, "unit": unit, **extra})

        def prepare() -> Any:
            # pedantic treats a truthy return of setup as (args, kwargs): pass only those.
            made = setup() if setup is not None else None
            return made if isinstance(made, tuple) else None

        result = bench.pedantic(
            target,
            setup=prepare if setup is not None else None,
            rounds=rounds,
            warmup_rounds=warmup_rounds,
            iterations=1,
        )
        if bench.disabled or bench.stats is None:
            return result
        _normalise(bench, ops, internal)
        median = bench.stats.stats.median
        bench.extra_info["median_us_per_op"] = round(median * 1e6, 4)
        _RESULTS.append(
            {
                "group": bench.group or "",
                "name": self.name,
                "unit": unit,
                "median_us": median * 1e6,
                "extra": bench.extra_info,  # read at the end: later additions show too
            }
        )
        return result


@pytest.fixture
def per_op(benchmark: Any, request: pytest.FixtureRequest) -> PerOp:
    return PerOp(benchmark, request)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("pygents: median cost per operation")
    for r in sorted(_RESULTS, key=lambda r: (r["group"], r["name"])):
        shown = {
            k: v
            for k, v in r["extra"].items()
            if k not in ("ops_per_round", "median_us_per_op", "unit") and v is not None
        }
        info = ", ".join(f"{k}={v}" for k, v in shown.items())
        tr.write_line(
            f"{r['group'][:32]:32} {r['name'][:50]:50} {r['median_us']:11.3f} us/{r['unit']}"
            + (f"  [{info}]" if info else "")
        )
