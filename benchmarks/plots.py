"""Measure and plot per-turn cost vs queue length and vs concurrency (PNG, matplotlib).

Usage::

    pip install -e ".[bench]"
    python benchmarks/plots.py                # writes docs/img/*.png, prints the numbers

Same workloads as the suite (trivial coroutine tool, telemetry off), timed in-process with
``time.perf_counter`` around the measured part only; each point is the median of several
rounds. Runs in about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import sys
from pathlib import Path
from time import perf_counter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["PYGENTS_TELEMETRY"] = "off"

import _workloads as w  # noqa: E402

QUEUE_LENGTHS = (10, 100, 1_000, 10_000, 100_000)
CONCURRENCY = (1, 10, 100, 1_000)
TURNS_PER_AGENT = 100


async def queue_point(queued: int, rounds: int) -> tuple[float, float]:
    """Median (put, drain) seconds per turn with ``queued`` turns per agent queue."""
    trivial = w.trivial_tool()
    agents = [w.agent_with([trivial]) for _ in range(max(1, 10_000 // queued))]
    puts, drains = [], []
    for _ in range(rounds + 1):  # the first round warms up
        gc.collect()
        t0 = perf_counter()
        for agent in agents:
            await w.put_round(agent, trivial, queued)
        t1 = perf_counter()
        for agent in agents:
            await w.drain(agent)
        t2 = perf_counter()
        total = queued * len(agents)
        puts.append((t1 - t0) / total)
        drains.append((t2 - t1) / total)
    for agent in agents:
        w.forget(agent)
    return statistics.median(puts[1:]), statistics.median(drains[1:])


async def concurrency_point(agents: int, rounds: int) -> float:
    """Median seconds per turn, ``agents`` agents x 100 turns run concurrently."""
    trivial = w.trivial_tool()
    crowd = [w.agent_with([trivial]) for _ in range(agents)]
    drains = []
    for _ in range(rounds + 1):
        for agent in crowd:
            await w.put_round(agent, trivial, TURNS_PER_AGENT)
        gc.collect()
        t0 = perf_counter()
        await w.drain_many(crowd)
        drains.append((perf_counter() - t0) / (agents * TURNS_PER_AGENT))
    for agent in crowd:
        w.forget(agent)
    return statistics.median(drains[1:])


def plot(out: Path, queue: dict[int, tuple[float, float]], crowd: dict[int, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    where = f"Python {platform.python_version()}, {os.cpu_count()} CPUs; median per point"
    thousands = FuncFormatter(lambda x, _: f"{x:,.0f}")

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    xs = list(queue)
    ax.plot(xs, [queue[x][1] * 1e6 for x in xs], "o-", label="run loop (drain), per turn")
    ax.plot(xs, [queue[x][0] * 1e6 for x in xs], "s--", label="Turn + put, per turn")
    ax.axhline(4.0, color="tab:red", lw=1, ls=":", label="run-loop budget (4 µs)")
    ax.axhline(2.0, color="tab:orange", lw=1, ls=":", label="Turn + put budget (2 µs)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(thousands)
    ax.set_ylim(0, max(6.0, max(max(v) for v in queue.values()) * 1e6 * 1.5))
    ax.set_xlabel("turns queued on the agent")
    ax.set_ylabel("µs per turn")
    ax.set_title(f"Cost per turn vs queue length\n{where}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(out / "cost_vs_queue_length.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    xs = list(crowd)
    ax.plot(xs, [crowd[x] * 1e6 for x in xs], "o-", label="run loop, per turn")
    ax.axhline(4.0, color="tab:red", lw=1, ls=":", label="run-loop budget (4 µs)")
    for x in xs:
        ax.annotate(
            f"{1 / crowd[x]:,.0f} turns/s",
            (x, crowd[x] * 1e6),
            textcoords="offset points",
            xytext=(0, -16),
            ha="center",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlim(0.5, 2000)
    ax.xaxis.set_major_formatter(thousands)
    ax.set_ylim(0, max(5.0, max(crowd.values()) * 1e6 * 1.3))
    ax.set_xlabel(f"agents running concurrently in one event loop ({TURNS_PER_AGENT} turns each)")
    ax.set_ylabel("µs per turn")
    ax.set_title(f"Cost per turn vs concurrency\n{where}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "cost_vs_concurrency.png")
    plt.close(fig)


async def measure(rounds: int) -> tuple[dict[int, tuple[float, float]], dict[int, float]]:
    queue = {}
    for q in QUEUE_LENGTHS:
        queue[q] = await queue_point(q, rounds if q < 100_000 else max(3, rounds // 2))
        print(
            f"queue {q:>7,}: run loop {queue[q][1] * 1e6:5.2f} us/turn, "
            f"Turn+put {queue[q][0] * 1e6:5.2f} us/turn"
        )
    crowd = {}
    for n in CONCURRENCY:
        crowd[n] = await concurrency_point(n, max(5, rounds * 10 // n) if n < 1000 else rounds)
        print(f"agents {n:>6,}: run loop {crowd[n] * 1e6:5.2f} us/turn ({1 / crowd[n]:,.0f}/s)")
    return queue, crowd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    queue, crowd = asyncio.run(measure(args.rounds))
    plot(args.out, queue, crowd)

    print("\n| turns queued | run loop, µs/turn | Turn + put, µs/turn |\n|---:|---:|---:|")
    for q, (put, drain) in queue.items():
        print(f"| {q:,} | {drain * 1e6:.2f} | {put * 1e6:.2f} |")
    print("\n| agents (100 turns each), concurrently | µs/turn | turns/s |\n|---:|---:|---:|")
    for n, t in crowd.items():
        print(f"| {n:,} | {t * 1e6:.2f} | {1 / t:,.0f} |")
    print(f"\nwrote cost_vs_queue_length.png and cost_vs_concurrency.png in {args.out}")


if __name__ == "__main__":
    main()
