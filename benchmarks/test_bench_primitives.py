"""Building blocks: Turn + put, context queue and pool at their limits, catalogue()."""

from __future__ import annotations

import asyncio
from typing import Any

import _workloads as w
import pytest

from pygents import ContextPool, ContextQueue

N = 2000
ROUNDS = 30

pytestmark = pytest.mark.benchmark(group="primitives")


def test_turn_construction_and_put(per_op: Any, runner: asyncio.Runner) -> None:
    """``await agent.put(Turn(tool, kwargs={"x": i}))`` on an agent with no hooks."""
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])

    def setup() -> None:
        runner.run(w.drain(agent))  # empty the queue the last round filled

    def target() -> None:
        runner.run(w.put_round(agent, trivial, N))

    per_op(target, ops=N, rounds=ROUNDS, setup=setup)


def test_context_queue_append_at_limit(per_op: Any, runner: asyncio.Runner) -> None:
    """Appending one item at a time to a full ``ContextQueue(limit=100)``: each evicts one."""
    queue = ContextQueue(limit=100)
    runner.run(queue.append(*w.context_items(100)))
    items = w.context_items(N, start=100)

    async def append_all() -> None:
        append = queue.append
        for item in items:
            await append(item)

    per_op(lambda: runner.run(append_all()), ops=N, rounds=ROUNDS, unit="append")
    assert len(queue) == 100


LIMIT = 1000


def _full_pool(runner: asyncio.Runner) -> ContextPool:
    pool = ContextPool(limit=LIMIT)
    for item in w.context_items(LIMIT):
        runner.run(pool.add(item))
    return pool


def test_context_pool_add_at_limit(per_op: Any, runner: asyncio.Runner) -> None:
    """Adding new ids to a full ``ContextPool(limit=1000)``: each evicts the oldest."""
    pool = _full_pool(runner)
    batches = iter(range(10**9))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (w.context_items(N, start=LIMIT + next(batches) * N),), {}

    async def add_all(items: list[Any]) -> None:
        add = pool.add
        for item in items:
            await add(item)

    per_op(lambda items: runner.run(add_all(items)), ops=N, rounds=ROUNDS, setup=setup, unit="add")
    assert len(pool) == LIMIT


def test_context_pool_get(per_op: Any, runner: asyncio.Runner) -> None:
    """``pool.get(id)`` on a full pool of 1,000 items (every id, twice per round)."""
    pool = _full_pool(runner)
    ids = [item.id for item in pool.items] * 2

    def get_all() -> None:
        get = pool.get
        for i in ids:
            get(i)

    per_op(get_all, ops=len(ids), rounds=ROUNDS, unit="get")


def test_context_pool_remove(per_op: Any, runner: asyncio.Runner) -> None:
    """``await pool.remove(id)`` of every item of a full pool of 1,000 (refilled untimed)."""
    pool = ContextPool(limit=LIMIT)
    items = w.context_items(LIMIT)
    ids = [item.id for item in items]

    async def refill() -> None:
        for item in items:
            await pool.add(item)

    async def remove_all() -> None:
        remove = pool.remove
        for i in ids:
            await remove(i)

    per_op(
        lambda: runner.run(remove_all()),
        ops=LIMIT,
        rounds=ROUNDS,
        setup=lambda: runner.run(refill()),
        unit="remove",
    )


def test_catalogue_of_1000_items(per_op: Any, runner: asyncio.Runner) -> None:
    pool = _full_pool(runner)
    calls = 10

    def catalogue() -> None:
        for _ in range(calls):
            pool.catalogue()

    per_op(catalogue, ops=calls, rounds=ROUNDS, unit="call")
    assert pool.catalogue().count("\n") == LIMIT - 1
