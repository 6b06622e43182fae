"""Scale: many agents in one event loop, long queues, memory per queued turn."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import _workloads as w
import pytest

TURNS_PER_AGENT = 100


def _bench_concurrent(per_op: Any, runner: asyncio.Runner, agents: int, rounds: int) -> None:
    trivial = w.trivial_tool()
    crowd = [w.agent_with([trivial]) for _ in range(agents)]

    async def fill() -> None:
        for agent in crowd:
            await w.put_round(agent, trivial, TURNS_PER_AGENT)

    per_op(
        lambda: runner.run(w.drain_many(crowd)),
        ops=agents * TURNS_PER_AGENT,
        rounds=rounds,
        setup=lambda: runner.run(fill()),
        agents=agents,
    )
    bench = per_op.benchmark
    if bench.stats is not None:
        bench.extra_info["turns_per_second"] = round(1 / bench.stats.stats.median)


@pytest.mark.benchmark(group="scale: 1,000 agents x 100 turns")
def test_1000_agents_x_100_turns_concurrently(per_op: Any, runner: asyncio.Runner) -> None:
    """1,000 agents, 100 queued turns each, all run concurrently (``asyncio.gather``)."""
    _bench_concurrent(per_op, runner, 1000, rounds=5)


@pytest.mark.benchmark(group="scale: concurrency curve")
@pytest.mark.parametrize("agents", [1, 10, 100, 1000])
def test_concurrency(per_op: Any, runner: asyncio.Runner, agents: int) -> None:
    _bench_concurrent(per_op, runner, agents, rounds=max(5, 2000 // agents))


@pytest.mark.benchmark(group="scale: queue length curve")
@pytest.mark.parametrize("queued", [10, 100, 1_000, 10_000, 100_000])
def test_cost_per_turn_vs_queue_length(per_op: Any, runner: asyncio.Runner, queued: int) -> None:
    """Per-turn cost of draining queues of ``queued`` turns. Short queues are measured as
    several agents drained one after the other (10,000 turns per round), so the round's
    fixed cost stays small; each agent's run() start and stop is part of its turns' cost."""
    trivial = w.trivial_tool()
    agents = [w.agent_with([trivial]) for _ in range(max(1, 10_000 // queued))]

    async def fill() -> None:
        for agent in agents:
            await w.put_round(agent, trivial, queued)

    async def drain_each() -> None:
        for agent in agents:
            await w.drain(agent)

    per_op(
        lambda: runner.run(drain_each()),
        ops=queued * len(agents),
        rounds=5 if queued == 100_000 else 10,
        setup=lambda: runner.run(fill()),
        queued=queued,
    )


MEMORY_TURNS = 100_000

_RSS_SCRIPT = """
import asyncio, json, os, sys
sys.path.insert(0, sys.argv[1])
os.environ["PYGENTS_TELEMETRY"] = "off"
import _workloads as w

def status_kib(field):  # VmRSS: now; VmHWM: peak of this process image (not inherited)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit("no " + field + " in /proc/self/status (Linux only)")

n = int(sys.argv[2])
trivial = w.trivial_tool()
agent = w.agent_with([trivial])
before = status_kib("VmRSS")
asyncio.run(w.put_round(agent, trivial, n))
after = status_kib("VmRSS")
peak = status_kib("VmHWM")
print(json.dumps({"rss_before_kib": before, "rss_after_kib": after, "peak_rss_kib": peak,
                  "queued": len(agent)}))
"""


@pytest.mark.benchmark(group="scale: memory")
def test_memory_100000_queued_turns(per_op: Any, runner: asyncio.Runner) -> None:
    """Time to queue 100,000 turns; memory per queued turn (tracemalloc, this process) and
    the peak RSS of a fresh process that queues 100,000 turns."""
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])

    # tracemalloc: bytes still allocated per queued turn (Turn, its metadata, kwargs dict...).
    runner.run(w.put_round(agent, trivial, 10))  # warm caches outside the measurement
    runner.run(w.drain(agent))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        runner.run(w.put_round(agent, trivial, MEMORY_TURNS))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    bytes_per_turn = (after - before) / MEMORY_TURNS
    runner.run(w.drain(agent))

    # Peak RSS: a fresh interpreter, so nothing else this session allocated counts.
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(Path(w.__file__).parent), str(MEMORY_TURNS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rss = json.loads(out.stdout)
    assert rss["queued"] == MEMORY_TURNS

    per_op(
        lambda: runner.run(w.put_round(agent, trivial, MEMORY_TURNS)),
        ops=MEMORY_TURNS,
        rounds=3,
        setup=lambda: runner.run(w.drain(agent)),
        bytes_per_queued_turn=round(bytes_per_turn),
        peak_rss_mib=round(rss["peak_rss_kib"] / 1024, 1),
        rss_before_mib=round(rss["rss_before_kib"] / 1024, 1),
        rss_growth_mib=round((rss["rss_after_kib"] - rss["rss_before_kib"]) / 1024, 1),
    )
