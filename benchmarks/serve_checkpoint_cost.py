"""Per-turn cost of serving and of checkpointing into SQLite (wall time, event-loop blocking).

``python benchmarks/serve_checkpoint_cost.py [TURNS]``: one agent, a chain of trivial turns
(each returns the next), served with no store, with ``MemoryStore`` and with ``SQLiteStore``
(WAL, synchronous=NORMAL, on a temporary file), against plain ``run()``. Prints µs per turn,
the ratio to ``run()``, and the longest time the event loop was blocked by one checkpoint
(the JSON snapshot; the write itself runs on the store's thread).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PYGENTS_TELEMETRY", "off")

from pygents import Agent, AgentRegistry, ContextItem, Service, Turn, _checkpoint, tool
from pygents.store import MemoryStore, SQLiteStore

TURNS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000


@tool()
async def chain(n: int) -> Turn | None:
    """Return the next turn until n reaches 0."""
    return Turn("chain", kwargs={"n": n - 1}) if n else None


def fresh_agent(items: int) -> Agent:
    for agent in AgentRegistry.all():
        AgentRegistry.unregister(agent.name)
    agent = Agent("bench", "", [chain])
    for i in range(items):
        agent.context_queue._items.append(ContextItem(content=f"item {i} " + "x" * 200))
    return agent


async def plain_run(items: int) -> float:
    agent = fresh_agent(items)
    await agent.put(Turn("chain", kwargs={"n": TURNS}))
    start = time.perf_counter()
    async for _ in agent.run():
        pass
    return time.perf_counter() - start


async def served(items: int, store: object) -> float:
    agent = fresh_agent(items)
    await agent.put(Turn("chain", kwargs={"n": TURNS}))
    start = time.perf_counter()
    service = Service([agent], store=store)  # type: ignore[arg-type]
    await service.start()
    await service.aclose(drain=True)
    return time.perf_counter() - start


def blocking(items: int) -> tuple[float, float]:
    agent = fresh_agent(items)
    for n in range(10):
        agent._queue.append(Turn("chain", kwargs={"n": n}))
    samples = []
    for seq in range(500):
        t = time.perf_counter()
        _checkpoint.encode(agent, seq, True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), max(samples)


async def main() -> None:
    print(f"{TURNS} turns per measurement, best of 5")
    for items in (0, 10, 1000):
        base = min([await plain_run(items) for _ in range(5)])
        rows = [("run()", base)]
        rows.append(("Service, no store", min([await served(items, None) for _ in range(5)])))
        rows.append(
            ("Service + MemoryStore", min([await served(items, MemoryStore()) for _ in range(5)]))
        )
        with tempfile.TemporaryDirectory() as tmp:
            times = []
            for i in range(5):
                store = SQLiteStore(os.path.join(tmp, f"b{i}.db"))
                times.append(await served(items, store))
                await store.aclose()
            rows.append(("Service + SQLiteStore", min(times)))
        median, worst = blocking(items)
        print(
            f"\ncontext queue of {items} items (~210 B each); snapshot on the loop: "
            f"median {median * 1e6:.0f} µs, max {worst * 1e6:.0f} µs"
        )
        for name, seconds in rows:
            print(f"  {name:24s} {seconds / TURNS * 1e6:8.1f} µs/turn  x{seconds / base:6.1f}")


asyncio.run(main())
