"""Quick per-turn cost check of the core (no pytest-benchmark): run-loop drain and Turn+put.

Usage: python benchmarks/quick_speed.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from pygents import Agent, Turn, tool

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


@tool()
async def trivial(x: int) -> int:
    return x


async def floor(n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        async with asyncio.timeout(60):
            await trivial.fn(i)
    return (time.perf_counter() - t0) / n


async def one_round(agent: Agent, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    for i in range(n):
        await agent.put(Turn(trivial, kwargs={"x": i}))
    t1 = time.perf_counter()
    async for _turn, _value in agent.run():
        pass
    t2 = time.perf_counter()
    return (t1 - t0) / n, (t2 - t1) / n


async def main() -> None:
    agent = Agent("bench", "bench", [trivial])
    await one_round(agent, 1000)  # warm-up
    puts, runs = [], []
    for _ in range(7):
        p, r = await one_round(agent, N)
        puts.append(p)
        runs.append(r)
    f = await floor(N)
    print(f"python {sys.version.split()[0]}  N={N}")
    print(f"Turn(...) + put : {statistics.median(puts) * 1e6:6.2f} us/turn (budget 2)")
    print(f"run loop drain  : {statistics.median(runs) * 1e6:6.2f} us/turn (budget 4)")
    print(f"floor: await under asyncio.timeout: {f * 1e6:6.2f} us")


asyncio.run(main())
