"""The original's design rationale, checked: ``docs-0.6.1/whitepaper.md``.

The whitepaper has no code; its claims about the primitives are behaviours a port relies on:

- "Declaration ... can be described entirely as data — serialized, transmitted, and replayed
  without reconstructing any runtime state": a turn (and an agent's queue) survives a JSON round
  trip and replays to the same result.
- "The Tool ... may well return a Turn, in which case the Agent will be obliged to enqueue it".
- "The Agent ... acts as the sole writer to the context stores ... that intent is expressed in
  the type of its output": a tool never touching a store still fills both.
- "The ContextQueue ... when the window is full, the oldest item is evicted".
"""

from __future__ import annotations

import json

from pygents import Agent, AgentRegistry, Turn, tool
from pygents.context import ContextItem, ContextQueue


async def test_a_turn_is_data_that_survives_json_and_replays():
    @tool()
    async def area(w: int, h: int) -> int:
        return w * h

    original = Turn("area", args=[3], kwargs={"h": 7}, timeout=5)
    replayed = Turn.from_dict(json.loads(json.dumps(original.to_dict())))
    assert await replayed.returning() == await original.returning() == 21


async def test_an_agents_queue_survives_json_and_replays(values):
    @tool()
    async def area(w: int, h: int) -> int:
        return w * h

    agent = Agent("surveyor", "Measures", [area])
    await agent.put(Turn("area", args=[2, 3]))
    await agent.put(Turn("area", args=[4, 5]))
    payload = json.dumps(agent.to_dict())
    AgentRegistry.clear()
    assert await values(Agent.from_dict(json.loads(payload))) == [6, 20]


async def test_a_returned_turn_is_always_enqueued(values):
    @tool()
    async def step(n: int) -> Turn | str:
        return Turn("step", args=[n - 1]) if n else "landed"

    agent = Agent("stepper", "Steps", [step])
    await agent.put(Turn("step", args=[3]))
    assert await values(agent) == ["landed"]


async def test_the_agent_writes_the_stores_from_the_output_type_alone(values):
    @tool()
    async def produce(n: int):
        yield ContextItem(content=f"window {n}")
        yield ContextItem(content=f"doc {n}", description=f"document {n}", id=f"d{n}")

    agent = Agent("producer", "Produces", [produce])
    await agent.put(Turn("produce", args=[1]))
    assert await values(agent) == []
    assert [i.content for i in agent.context_queue.items] == ["window 1"]
    assert agent.context_pool.get("d1").content == "doc 1"


async def test_a_full_window_evicts_its_oldest_item():
    window = ContextQueue(limit=3)
    for n in range(5):
        await window.append(ContextItem(content=n))
    assert [i.content for i in window.items] == [2, 3, 4]
