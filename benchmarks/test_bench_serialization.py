"""Agent.to_dict() / from_dict() with 10,000 queued turns, a full context queue and pool."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import _workloads as w
import pytest

from pygents import Agent, AgentRegistry, ContextPool, ContextQueue, UnregisteredAgentError

QUEUED = 10_000
ROUNDS = 10

pytestmark = pytest.mark.benchmark(group="serialization")


def _loaded_agent(runner: asyncio.Runner) -> Agent:
    trivial = w.trivial_tool()
    queue = ContextQueue(limit=100)
    pool = ContextPool(limit=1000)
    agent = w.agent_with([trivial], context_queue=queue, context_pool=pool)
    runner.run(w.put_round(agent, trivial, QUEUED))
    runner.run(queue.append(*w.context_items(queue.limit)))
    for item in w.context_items(1000, start=queue.limit):
        runner.run(pool.add(item))
    assert len(agent) == QUEUED and len(pool) == 1000 and len(queue) == 100
    return agent


def test_agent_to_dict(per_op: Any, runner: asyncio.Runner) -> None:
    agent = _loaded_agent(runner)
    data = per_op(agent.to_dict, ops=1, rounds=ROUNDS, unit="call", queued_turns=QUEUED)
    if data is not None:
        assert len(json.loads(json.dumps(data))["queue"]) == QUEUED


def test_agent_from_dict(per_op: Any, runner: asyncio.Runner) -> None:
    agent = _loaded_agent(runner)
    data = json.loads(json.dumps(agent.to_dict()))
    w.forget(agent)

    def setup() -> None:
        # from_dict registers the agent: drop the previous round's one first.
        try:
            AgentRegistry.unregister(data["name"])
        except UnregisteredAgentError:
            pass

    restored = per_op(
        lambda: Agent.from_dict(data),
        ops=1,
        rounds=ROUNDS,
        setup=setup,
        unit="call",
        queued_turns=QUEUED,
    )
    if restored is not None:
        assert len(restored) == QUEUED and len(restored.context_pool) == 1000
