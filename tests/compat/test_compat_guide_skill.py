"""The original's Claude Code skill, re-enacted: ``docs-0.6.1/guides/claude-code-skill.md``.

The same page is the newest seed (``004_*``). Most of its examples repeat the concept pages
(covered by the other modules here); this module covers what it states on its own:

- "Turns": the constructor ``Turn(tool, timeout=60, args=[], kwargs={}, tags=None)`` in that
  positional order; "Immutability: ... ``metadata`` can [change]".
- "Agents": ``agent.hooks.append(my_hook)``; "Coroutine tools yield one ``(turn, value)``.
  Generator tools yield per value."
- "ContextQueue": ``ON_EVICT`` fires once per eviction; ``clear()`` fires
  ``BEFORE_CLEAR``/``AFTER_CLEAR``.
- "ContextPool": ``pool.get`` is synchronous; ``answer(pool, question)`` picking by catalogue.
- "Tool-driven flow control": ``think`` returning ``Turn(respond)`` with context injected, no
  kwargs needed.
- "Serialization": agent, turn and queue round trips.
- "Common errors": one check per bullet not covered elsewhere (re-entering ``yielding()``).
"""

from __future__ import annotations

import asyncio
import inspect

from pygents import (
    Agent,
    AgentHook,
    ContextPool,
    ContextQueue,
    SafeExecutionError,
    Turn,
    tool,
)
from pygents.context import ContextItem

# -- Turns -----------------------------------------------------------------------------------


async def test_turn_positional_order_is_tool_timeout_args_kwargs_tags():
    @tool()
    async def join(a: str, b: str) -> str:
        return a + b

    turn = Turn("join", 12, ["x"], {"b": "y"}, ["flagged"])
    assert turn.timeout == 12
    assert list(turn.args) == ["x"]
    assert turn.kwargs == {"b": "y"}
    assert turn.tags == frozenset({"flagged"})
    assert await turn.returning() == "xy"


def test_turn_defaults_are_the_documented_ones():
    # ``Turn(tool, timeout=60, args=[], kwargs={}, tags=None)``: args read as a list (they
    # were the tuple ``()``), a fresh one per turn.
    @tool()
    async def nothing() -> None: ...

    first, second = Turn("nothing"), Turn("nothing")
    assert (first.timeout, first.args, first.kwargs, first.tags) == (60, [], {}, frozenset())
    assert first.args + ["more"] == ["more"]  # noqa: RUF005 - the point: it is a list
    assert first.args is not second.args and first.kwargs is not second.kwargs
    assert Turn.from_dict(first.to_dict()).args == first.args


# -- Agents ----------------------------------------------------------------------------------


async def test_a_duck_typed_hook_appended_to_agent_hooks_fires():
    seen: list[str] = []

    @tool()
    async def ping() -> str:
        return "pong"

    class Recorder:
        type = AgentHook.BEFORE_TURN
        __name__ = "recorder"

        async def __call__(self, agent) -> None:
            seen.append(agent.name)

    agent = Agent("pinger", "Pings", [ping])
    agent.hooks.append(Recorder())
    await agent.put(Turn("ping"))
    async for _ in agent.run():
        pass
    assert seen == ["pinger"]


async def test_coroutine_tools_yield_once_and_generators_per_value(values):
    @tool()
    async def once() -> str:
        return "one"

    @tool()
    async def thrice():
        for n in range(3):
            yield n

    agent = Agent("counter", "Counts", [once, thrice])
    await agent.put(Turn("once"))
    await agent.put(Turn("thrice"))
    assert await values(agent) == ["one", 0, 1, 2]


# -- ContextQueue ----------------------------------------------------------------------------


async def test_on_evict_fires_once_per_eviction():
    evicted: list[object] = []
    window = ContextQueue(limit=1)

    @window.on_evict
    async def dropped(queue, item) -> None:
        evicted.append(item.content)

    await window.append(
        ContextItem(content="a"), ContextItem(content="b"), ContextItem(content="c")
    )
    assert evicted == ["a", "b"]
    assert [i.content for i in window.items] == ["c"]


async def test_clear_fires_before_and_after_clear():
    events: list[str] = []
    window = ContextQueue(limit=3)

    @window.before_clear
    async def going(queue, items) -> None:
        events.append(f"before {len(items)}")

    @window.after_clear
    async def gone(queue) -> None:
        events.append(f"after {len(queue)}")

    await window.append(ContextItem(content=1))
    await window.clear()
    assert events == ["before 1", "after 0"]


# -- ContextPool -----------------------------------------------------------------------------


async def test_pool_get_is_synchronous_and_answers_pick_by_catalogue(values):
    assert not inspect.iscoroutinefunction(ContextPool.get)

    @tool()
    async def store_doc(doc_id: str) -> ContextItem:
        return ContextItem(id=doc_id, description=f"notes on {doc_id}", content=doc_id.upper())

    @tool()
    async def reply(pool: ContextPool, question: str) -> str:
        line = next(line for line in pool.catalogue().splitlines() if question in line)
        chosen = line.split("]")[0].removeprefix("- [")
        return pool.get(chosen).content

    agent = Agent("librarian", "Looks things up", [store_doc, reply])
    for doc_id in ("apples", "pears"):
        await agent.put(Turn("store_doc", args=[doc_id]))
    await agent.put(Turn("reply", kwargs={"question": "pears"}))
    assert await values(agent) == ["PEARS"]


# -- Tool-driven flow control ----------------------------------------------------------------


async def test_a_returned_turn_needs_no_context_kwargs(values):
    @tool()
    async def ponder(cq: ContextQueue, pool: ContextPool) -> Turn:
        if not pool:
            return Turn(reply_directly)
        return Turn(reply_with_sources)

    @tool()
    async def reply_directly(cq: ContextQueue) -> str:
        return f"direct ({len(cq)} in memory)"

    @tool()
    async def reply_with_sources(cq: ContextQueue, pool: ContextPool) -> str:
        return f"sourced from {len(pool)}"

    agent = Agent("ponderer", "Ponders", [ponder, reply_directly, reply_with_sources])
    await agent.context_queue.append(ContextItem(content="hello"))
    await agent.put(Turn(ponder))
    assert await values(agent) == ["direct (1 in memory)"]

    await agent.context_pool.add(ContextItem(id="s", description="source", content=""))
    await agent.put(Turn(ponder))
    assert await values(agent) == ["sourced from 1"]


# -- Serialization ---------------------------------------------------------------------------


async def test_agent_turn_and_queue_round_trip(values):
    @tool()
    async def square(n: int) -> int:
        return n * n

    window = ContextQueue(limit=5)
    await window.append(ContextItem(content="ctx"))
    agent = Agent("squarer", "Squares", [square], context_queue=window)
    await agent.put(Turn("square", args=[3]))

    turn = Turn.from_dict(Turn("square", args=[4]).to_dict())
    assert await turn.returning() == 16

    restored_window = ContextQueue.from_dict(window.to_dict())
    assert restored_window.items == window.items

    data = agent.to_dict()
    del agent, window
    from pygents import AgentRegistry

    AgentRegistry.clear()
    restored = Agent.from_dict(data)
    assert restored.context_queue.limit == 5
    assert [i.content for i in restored.context_queue.items] == ["ctx"]
    assert await values(restored) == [9]


# -- Common errors ---------------------------------------------------------------------------


async def test_reentering_yielding_while_running_raises_safe_execution_error():
    errors: list[BaseException] = []
    holder: dict[str, Turn] = {}

    @tool()
    async def stream_back():
        try:
            async for _ in holder["turn"].yielding():
                pass
        except SafeExecutionError as exc:
            errors.append(exc)
        yield 1

    holder["turn"] = Turn("stream_back")
    assert [v async for v in holder["turn"].yielding()] == [1]
    assert len(errors) == 1


async def test_metadata_is_the_part_of_a_turn_that_may_change_while_running():
    @tool()
    async def touch() -> None:
        await asyncio.sleep(0)
        turn.metadata = type(turn.metadata)()

    turn = Turn("touch")
    await turn.returning()
    assert turn.metadata.stop_reason is not None
