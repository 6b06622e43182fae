"""Tests of current_agent() / current_turn() / current_tool()."""

import asyncio
from contextlib import aclosing

import pytest

from pygents import (
    Agent,
    ContextItem,
    ToolHook,
    Turn,
    TurnHook,
    current_agent,
    current_tool,
    current_turn,
    hook,
    tool,
)


def snapshot():
    return current_agent(), current_turn(), current_tool()


async def drain(agent):
    return [value async for _, value in agent.run()]


def test_all_none_outside():
    assert snapshot() == (None, None, None)


async def test_all_none_outside_in_async_code():
    assert snapshot() == (None, None, None)


async def test_inside_a_tool_run_by_an_agent():
    seen = []

    @tool()
    async def where():
        seen.append(snapshot())
        await asyncio.sleep(0)
        seen.append(snapshot())  # still set after a suspension
        return "ok"

    agent = Agent("runner", "d", [where])
    turn = Turn(where)
    await agent.put(turn)
    assert await drain(agent) == ["ok"]
    assert seen == [(agent, turn, where)] * 2
    assert snapshot() == (None, None, None)


async def test_inside_a_generator_tool_run_by_an_agent():
    seen = []

    @tool()
    async def stream():
        for i in range(2):
            seen.append(snapshot())
            await asyncio.sleep(0)
            yield i
        seen.append(snapshot())

    agent = Agent("gen-runner", "d", [stream])
    turn = Turn(stream)
    await agent.put(turn)
    assert await drain(agent) == [0, 1]
    assert seen == [(agent, turn, stream)] * 3
    assert snapshot() == (None, None, None)


async def test_each_turn_of_an_agent_sees_itself():
    seen = []

    @tool()
    async def first():
        seen.append(current_turn())
        return "a"

    @tool()
    async def second():
        seen.append(current_turn())
        return "b"

    agent = Agent("two-turns", "d", [first, second])
    t1, t2 = Turn(first), Turn(second)
    await agent.put(t1)
    await agent.put(t2)
    await drain(agent)
    assert seen == [t1, t2]


async def test_inside_a_tool_hook_of_a_turn_run_by_an_agent():
    seen = {}

    @tool()
    async def work(x):
        return x

    @work.before_invoke
    async def before(x):
        seen["before_invoke"] = snapshot()

    @work.after_invoke
    async def after(result):
        seen["after_invoke"] = snapshot()

    @hook(ToolHook.BEFORE_INVOKE)
    async def global_before(*args, **kwargs):
        seen["global before_invoke"] = snapshot()

    agent = Agent("hooked", "d", [work])
    turn = Turn(work, args=[1])
    await agent.put(turn)
    await drain(agent)
    assert seen == {
        "before_invoke": (agent, turn, work),
        "after_invoke": (agent, turn, work),
        "global before_invoke": (agent, turn, work),
    }


async def test_inside_turn_hooks_of_a_turn_run_by_an_agent():
    seen = {}

    @tool()
    async def work():
        return None

    agent = Agent("turn-hooked", "d", [work])
    turn = Turn(work)

    @turn.before_run
    async def before(turn):
        seen["before_run"] = snapshot()

    @turn.on_complete
    async def complete(turn, reason):
        seen["on_complete"] = snapshot()

    await agent.put(turn)
    await drain(agent)
    assert seen == {"before_run": (agent, turn, work), "on_complete": (agent, turn, work)}


async def test_inside_context_hooks_fired_by_routing():
    # A returned ContextItem is routed by the agent on behalf of the producing turn.
    seen = {}

    @tool()
    async def produce():
        return ContextItem(content="note")

    @tool()
    async def produce_keyed():
        return ContextItem(content="doc", id="d1", description="a doc")

    agent = Agent("router", "d", [produce, produce_keyed])

    @agent.context_queue.after_append
    async def appended(queue, items, current):
        seen["queue"] = snapshot()

    @agent.context_pool.after_add
    async def added(pool, item):
        seen["pool"] = snapshot()

    t1, t2 = Turn(produce), Turn(produce_keyed)
    await agent.put(t1)
    await agent.put(t2)
    await drain(agent)
    assert seen == {"queue": (agent, t1, produce), "pool": (agent, t2, produce_keyed)}
    assert snapshot() == (None, None, None)


async def test_inside_a_turn_run_directly():
    seen = []

    @tool()
    async def work():
        seen.append(snapshot())
        return 1

    @work.before_invoke
    async def before():
        seen.append(snapshot())

    turn = Turn(work)
    assert await turn.returning() == 1
    assert seen == [(None, turn, work)] * 2
    assert snapshot() == (None, None, None)


async def test_inside_a_generator_turn_run_directly():
    seen = []

    @tool()
    async def stream():
        seen.append(snapshot())
        yield 1
        seen.append(snapshot())

    turn = Turn(stream)
    assert [v async for v in turn.yielding()] == [1]
    assert seen == [(None, turn, stream)] * 2
    assert snapshot() == (None, None, None)


async def test_inside_a_direct_tool_call():
    seen = []

    @tool()
    async def direct():
        seen.append(snapshot())
        return 1

    @direct.before_invoke
    async def before():
        seen.append(snapshot())

    assert await direct() == 1
    assert seen == [(None, None, direct)] * 2
    assert snapshot() == (None, None, None)


async def test_inside_a_direct_generator_tool_call():
    seen = []

    @tool()
    async def direct_stream():
        seen.append(snapshot())
        yield 1
        seen.append(snapshot())

    assert [v async for v in direct_stream()] == [1]
    assert seen == [(None, None, direct_stream)] * 2
    assert snapshot() == (None, None, None)


async def test_direct_tool_call_inside_a_tool_keeps_agent_and_turn():
    seen = {}

    @tool()
    async def inner():
        seen["inner"] = snapshot()
        return 1

    @tool()
    async def outer():
        await inner()
        seen["outer after inner"] = snapshot()
        return 2

    agent = Agent("nesting", "d", [outer, inner])
    turn = Turn(outer)
    await agent.put(turn)
    await drain(agent)
    assert seen == {
        "inner": (agent, turn, inner),
        "outer after inner": (agent, turn, outer),
    }


async def test_nested_turn_inside_a_tool_is_restored_afterwards():
    seen = {}

    @tool()
    async def inner():
        seen["inner"] = snapshot()
        return 1

    @tool()
    async def outer():
        nested = Turn(inner)
        seen["nested"] = nested
        await nested.returning()
        seen["outer after nested"] = snapshot()
        return 2

    agent = Agent("nested-turns", "d", [outer])
    turn = Turn(outer)
    await agent.put(turn)
    await drain(agent)
    assert seen["inner"] == (agent, seen["nested"], inner)
    assert seen["outer after nested"] == (agent, turn, outer)


async def test_consumer_of_a_streaming_turn_does_not_see_the_turn():
    @tool()
    async def stream():
        yield 1
        yield 2

    turn = Turn(stream)
    consumer_seen = [snapshot() async for _ in turn.yielding()]
    assert consumer_seen == [(None, None, None)] * 2


async def test_consumer_of_an_agent_run_does_not_see_the_turn():
    @tool()
    async def stream():
        yield 1
        yield 2

    @tool()
    async def single():
        return 3

    agent = Agent("consumer", "d", [stream, single])
    await agent.put(Turn(stream))
    await agent.put(Turn(single))
    consumer_seen = [snapshot() async for _ in agent.run()]
    assert consumer_seen == [(None, None, None)] * 3


async def test_restored_after_a_turn():
    @tool()
    async def work():
        return 1

    await Turn(work).returning()
    assert snapshot() == (None, None, None)
    await work()
    assert snapshot() == (None, None, None)


async def test_restored_after_a_failing_turn():
    @tool()
    async def broken():
        raise ValueError("nope")

    with pytest.raises(ValueError):
        await Turn(broken).returning()
    assert snapshot() == (None, None, None)
    with pytest.raises(ValueError):
        await broken()
    assert snapshot() == (None, None, None)


async def test_restored_after_a_failing_generator_turn():
    @tool()
    async def broken_stream():
        yield 1
        raise ValueError("nope")

    with pytest.raises(ValueError):
        async for _ in Turn(broken_stream).yielding():
            pass
    assert snapshot() == (None, None, None)


async def test_restored_after_a_timed_out_turn():
    @tool()
    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        await Turn(slow, timeout=0.01).returning()
    assert snapshot() == (None, None, None)


async def test_restored_after_a_vetoed_turn():
    @tool()
    async def work():
        return 1

    @hook(TurnHook.BEFORE_RUN)
    async def veto(turn):
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        await Turn(work).returning()
    assert snapshot() == (None, None, None)


async def test_restored_after_an_agent_run_fails():
    @tool()
    async def broken():
        raise ValueError("nope")

    agent = Agent("failing", "d", [broken])
    await agent.put(Turn(broken))
    with pytest.raises(ValueError):
        await drain(agent)
    assert snapshot() == (None, None, None)


async def test_restored_after_an_abandoned_streaming_turn():
    @tool()
    async def stream():
        for i in range(10):
            yield i

    async with aclosing(Turn(stream).yielding()) as values:
        async for v in values:
            if v == 1:
                break
    assert snapshot() == (None, None, None)

    agent = Agent("abandoned", "d", [stream])
    await agent.put(Turn(stream))
    async with aclosing(agent.run()) as run:
        async for _, v in run:
            if v == 1:
                break
    assert snapshot() == (None, None, None)


async def test_isolation_between_concurrent_agents():
    seen = {"a": [], "b": []}

    @tool()
    async def probe(label):
        for _ in range(3):
            seen[label].append((current_agent(), current_turn()))
            await asyncio.sleep(0.01)
        return label

    agent_a = Agent("a", "d", [probe])
    agent_b = Agent("b", "d", [probe])
    turns_a = [Turn(probe, kwargs={"label": "a"}) for _ in range(2)]
    turns_b = [Turn(probe, kwargs={"label": "b"}) for _ in range(2)]
    for t in turns_a:
        await agent_a.put(t)
    for t in turns_b:
        await agent_b.put(t)

    results = await asyncio.gather(drain(agent_a), drain(agent_b))
    assert results == [["a", "a"], ["b", "b"]]
    assert [s[0] for s in seen["a"]] == [agent_a] * 6
    assert [s[0] for s in seen["b"]] == [agent_b] * 6
    assert [s[1] for s in seen["a"]] == [turns_a[0]] * 3 + [turns_a[1]] * 3
    assert [s[1] for s in seen["b"]] == [turns_b[0]] * 3 + [turns_b[1]] * 3
    assert snapshot() == (None, None, None)


async def test_isolation_between_concurrent_direct_tool_calls():
    seen = []

    @tool()
    async def left():
        await asyncio.sleep(0.01)
        seen.append(("left", current_tool()))

    @tool()
    async def right():
        await asyncio.sleep(0.01)
        seen.append(("right", current_tool()))

    await asyncio.gather(left(), right(), left())
    assert sorted(seen, key=lambda s: s[0]) == [
        ("left", left),
        ("left", left),
        ("right", right),
    ]


async def test_an_agent_is_truthy_while_it_runs_its_last_turn():
    # The "Who is running?" pattern of docs/concepts/hooks.md: the last queued turn runs with
    # the agent's queue empty, and `if current_agent():` must still see the agent.
    lines = []

    @tool()
    async def lookup(key: str) -> str:
        return key.upper()

    @hook(ToolHook.BEFORE_INVOKE)
    async def trace_calls(*args: object, **kwargs: object) -> None:
        agent, turn = current_agent(), current_turn()
        name = turn.tool.metadata.name if turn else "-"
        lines.append(f"{agent.name if agent else '-'} runs {name}{kwargs}")

    agent = Agent("librarian", "Looks things up", [lookup])
    assert not len(agent) and bool(agent)  # empty queue, still true
    await agent.put(Turn("lookup", kwargs={"key": "abc"}))
    assert await drain(agent) == ["ABC"]
    await lookup(key="direct")
    assert lines == ["librarian runs lookup{'key': 'abc'}", "- runs -{'key': 'direct'}"]
