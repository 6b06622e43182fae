"""The original's agents page, re-enacted: ``docs-0.6.1/concepts/agents.md`` (and seed ``003_*``).

Sections covered (by heading):

- "Creating an agent": the constructor's parameters and defaults (``ContextQueue(limit=10)``,
  ``ContextPool()``), the registry check of tool instances, ``@agent.after_turn``.
- "Queue and run loop": ``put``/``run``, the printed ``work: 10`` / ``work: 20``, ``put`` of a
  foreign tool, ``TurnTimeoutError`` out of ``run()``, the value-routing table and "Why Turn and
  ContextItem are consumed, not yielded", per-value routing of generators.
- "Inter-agent messaging": ``send`` and ``UnregisteredAgentError``.
- "Branching": what a child inherits, the overrides, independence of parent and child.
- "Immutability while running or paused" and "Pausing and resuming" (the gate, ``ON_PAUSE`` /
  ``ON_RESUME``, a paused agent surviving ``to_dict``/``from_dict``).
- "Hooks": the seven agent hooks, their arguments and order; global ``@hook(AgentHook.*)``.
- "Registry": ``AgentRegistry.get/clear``, duplicate names.
- "Serialization": the keys of ``to_dict()``, ``from_dict()`` rebuilding queue, context and
  pause state, ``UnregisteredHookError``.

From the older seed ``003_*`` (still valid): ``turn.tool_name``, ``pop()`` waiting for a turn,
``send_turn`` (kept as a deprecated alias of ``send``).
"""

from __future__ import annotations

import asyncio

import pytest

from pygents import (
    Agent,
    AgentHook,
    AgentRegistry,
    ContextPool,
    ContextQueue,
    SafeExecutionError,
    StopReason,
    ToolRegistry,
    Turn,
    TurnTimeoutError,
    UnregisteredAgentError,
    UnregisteredHookError,
    UnregisteredToolError,
    hook,
    tool,
)
from pygents.context import ContextItem


def _make_doubler():
    @tool()
    async def double(x: int) -> int:
        return x * 2

    return double


# -- Creating an agent -----------------------------------------------------------------------


def test_an_agent_registers_itself_under_its_name():
    double = _make_doubler()
    agent = Agent("doubler", "Doubles numbers", [double])
    assert AgentRegistry.get("doubler") is agent
    assert agent.name == "doubler"
    assert agent.description == "Doubles numbers"
    assert agent.tools == [double]


def test_the_default_context_queue_holds_ten_items():
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    assert isinstance(agent.context_queue, ContextQueue)
    assert agent.context_queue.limit == 10


def test_the_default_context_pool_is_unbounded():
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    assert isinstance(agent.context_pool, ContextPool)
    assert agent.context_pool.limit is None


def test_constructor_parameters_in_the_documented_positional_order():
    pool = ContextPool(limit=3)
    window = ContextQueue(limit=4)
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()], pool, window, ["blue"])
    assert agent.context_pool is pool
    assert agent.context_queue is window
    assert agent.tags == frozenset({"blue"})


def test_a_tool_that_is_not_the_registered_instance_raises_value_error():
    async def body(x: int) -> int:
        return x

    stale = tool()(body)
    ToolRegistry.clear()
    tool()(body)  # the registry now holds another object under the same name
    with pytest.raises(ValueError, match="not the instance given"):
        Agent("stale", "desc", [stale])


def test_a_tool_whose_name_is_not_registered_raises_unregistered_tool_error():
    async def orphan(x: int) -> int:
        return x

    dropped = tool()(orphan)
    ToolRegistry.clear()
    with pytest.raises(UnregisteredToolError, match="'orphan' not found"):
        Agent("lost", "desc", [dropped])
    # ...and it is still a ValueError for code written against our earlier promise.
    with pytest.raises(ValueError):
        Agent("lost2", "desc", [dropped])


async def test_after_turn_instance_hook_sees_agent_and_finished_turn(
    capsys: pytest.CaptureFixture[str],
):
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])

    @agent.after_turn
    async def report(agent, turn) -> None:
        print(f"[{agent.name}] {turn.tool.metadata.name} -> {turn.metadata.stop_reason}")

    await agent.put(Turn("double", kwargs={"x": 1}))
    async for _ in agent.run():
        pass
    assert capsys.readouterr().out == f"[doubler] double -> {StopReason.COMPLETED}\n"


# -- Queue and run loop ----------------------------------------------------------------------


async def test_run_yields_each_result_as_the_docs_print_it(capsys: pytest.CaptureFixture[str]):
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    await agent.put(Turn("double", kwargs={"x": 7}))
    await agent.put(Turn("double", args=[11]))

    async for turn, value in agent.run():
        print(f"{turn.tool.metadata.name}: {value}")

    assert capsys.readouterr().out == "double: 14\ndouble: 22\n"
    assert len(agent.queue) == 0


async def test_put_of_a_tool_outside_the_agents_set_raises_value_error():
    @tool()
    async def foreign() -> None: ...

    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    with pytest.raises(ValueError, match="does not accept tool"):
        await agent.put(Turn("foreign"))


async def test_turn_timeout_error_propagates_out_of_run():
    @tool()
    async def hang() -> None:
        await asyncio.Event().wait()

    agent = Agent("hanger", "Hangs", [hang])
    await agent.put(Turn("hang", timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        async for _ in agent.run():
            pass


async def test_routing_table_only_plain_values_reach_the_caller(values):
    @tool()
    async def emit(kind: str):
        if kind == "turn":
            return Turn("emit", args=["plain"])
        if kind == "queue":
            return ContextItem(content="for the window")
        if kind == "pool":
            return ContextItem(content="for the store", description="stored", id="s1")
        return "plain value"

    agent = Agent("router", "Routes", [emit])
    for kind in ("turn", "queue", "pool"):
        await agent.put(Turn("emit", args=[kind]))

    assert await values(agent) == ["plain value"]
    assert [i.content for i in agent.context_queue.items] == ["for the window"]
    assert agent.context_pool["s1"].content == "for the store"


async def test_on_turn_value_fires_for_every_value_after_routing():
    seen: list[tuple[object, int]] = []

    @tool()
    async def produce():
        yield ContextItem(content="kept")
        yield "shown"

    agent = Agent("producer", "Produces", [produce])

    @agent.on_turn_value
    async def observe(agent, turn, value) -> None:
        seen.append((value, len(agent.context_queue)))

    await agent.put(Turn("produce"))
    got = [v async for _, v in agent.run()]

    assert got == ["shown"]
    assert seen == [(ContextItem(content="kept"), 1), ("shown", 1)]


async def test_a_generator_value_is_routed_before_the_caller_sees_the_next_one():
    window_sizes: list[int] = []

    @tool()
    async def chatter():
        yield ContextItem(content="one")
        yield "a"
        yield ContextItem(content="two")
        yield "b"

    agent = Agent("chatty", "Chats", [chatter])
    await agent.put(Turn("chatter"))
    async for _, _value in agent.run():
        window_sizes.append(len(agent.context_queue))
    assert window_sizes == [1, 2]


async def test_after_turn_fires_for_a_turn_whose_value_was_routed():
    finished: list[str] = []

    @tool()
    async def note() -> ContextItem:
        return ContextItem(content="n")

    agent = Agent("noter", "Notes", [note])

    @agent.after_turn
    async def done(agent, turn) -> None:
        finished.append(turn.tool.metadata.name)
        assert turn.output == ContextItem(content="n")

    await agent.put(Turn("note"))
    async for _ in agent.run():
        pass
    assert finished == ["note"]


async def test_a_pool_item_without_description_raises_out_of_run():
    @tool()
    async def bad_item() -> ContextItem:
        return ContextItem(content="x", id="no-desc")

    agent = Agent("careless", "Careless", [bad_item])
    await agent.put(Turn("bad_item"))
    with pytest.raises(ValueError, match="'id' and 'description'"):
        async for _ in agent.run():
            pass


# -- Inter-agent messaging -------------------------------------------------------------------


async def test_send_to_a_known_agent_puts_the_turn_there():
    double = _make_doubler()
    sender = Agent("sender", "Sends", [double])
    receiver = Agent("receiver", "Receives", [double])
    await sender.send("receiver", Turn("double", args=[21]))
    assert [v async for _, v in receiver.run()] == [42]


async def test_send_to_an_unknown_agent_raises_unregistered_agent_error():
    sender = Agent("sender", "Sends", [_make_doubler()])
    with pytest.raises(UnregisteredAgentError, match="'nobody' not found"):
        await sender.send("nobody", Turn("double", args=[1]))


# -- Branching -------------------------------------------------------------------------------


async def test_a_branch_inherits_description_tools_hooks_tags_and_queued_turns():
    double = _make_doubler()
    parent = Agent("lead", "Main agent", [double], tags=["team"])

    @parent.before_turn
    async def tick(agent) -> None: ...

    await parent.put(Turn("double", args=[5]))
    child = parent.branch("lead-copy")

    assert child.name == "lead-copy"
    assert AgentRegistry.get("lead-copy") is child
    assert child.description == "Main agent"
    assert child.tools == [double]
    assert child.hooks == [tick]
    assert child.tags == frozenset({"team"})
    assert [t.tool.metadata.name for t in child.queue] == ["double"]
    assert len(parent.queue) == 1  # copied, not moved


async def test_branch_overrides_description_tools_and_hooks():
    double = _make_doubler()

    @tool()
    async def summarise() -> str:
        return "s"

    parent = Agent("lead", "Main agent", [double, summarise])

    @parent.before_turn
    async def tick(agent) -> None: ...

    child = parent.branch("special", description="Specialised", tools=[double], hooks=[])
    assert child.description == "Specialised"
    assert child.tools == [double]
    assert child.hooks == []
    assert parent.hooks == [tick]


async def test_branch_positional_order_is_name_description_tools_hooks():
    double = _make_doubler()
    parent = Agent("lead", "Main agent", [double])
    child = parent.branch("pos", "By position", [double], [])
    assert child.description == "By position"
    assert child.hooks == []


async def test_branch_hooks_none_gives_a_child_without_hooks():
    parent = Agent("lead", "Main agent", [_make_doubler()])

    @parent.before_turn
    async def tick(agent) -> None: ...

    assert parent.branch("none", hooks=None).hooks == []


async def test_a_branch_gets_a_snapshot_of_both_context_stores():
    parent = Agent("lead", "Main agent", [_make_doubler()])

    @parent.context_queue.after_append
    async def window_grew(queue, appended_items, current) -> None: ...

    @parent.context_pool.after_add
    async def store_grew(pool, item) -> None: ...

    await parent.context_queue.append(ContextItem(content="shared"))
    await parent.context_pool.add(ContextItem(content=1, description="one", id="i1"))

    child = parent.branch("snap")
    await child.context_queue.append(ContextItem(content="child only"))
    await child.context_pool.add(ContextItem(content=2, description="two", id="i2"))

    assert [i.content for i in parent.context_queue.items] == ["shared"]
    assert [i.content for i in child.context_queue.items] == ["shared", "child only"]
    assert "i2" not in parent.context_pool
    assert child.context_pool["i1"].content == 1
    assert child.context_queue is not parent.context_queue
    assert child.context_queue.hooks == [window_grew]
    assert child.context_pool.hooks == [store_grew]
    assert child.context_pool is not parent.context_pool


async def test_parent_and_branch_run_the_same_queued_turns_independently(values):
    parent = Agent("lead", "Main agent", [_make_doubler()])
    await parent.put(Turn("double", args=[3]))
    await parent.put(Turn("double", args=[4]))
    child = parent.branch("twin")

    assert await values(child) == [6, 8]
    assert await values(parent) == [6, 8]


# -- Immutability while running or paused ----------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "new_value"),
    [("name", "renamed"), ("description", "changed"), ("tags", ["x"]), ("hooks", [])],
)
async def test_changing_an_attribute_while_running_raises(attribute: str, new_value: object):
    errors: list[BaseException] = []

    @tool()
    async def meddle() -> None:
        try:
            setattr(agent, attribute, new_value)
        except SafeExecutionError as exc:
            errors.append(exc)

    agent = Agent("busy", "Busy", [meddle])
    await agent.put(Turn("meddle"))
    async for _ in agent.run():
        pass
    assert len(errors) == 1
    assert f"Cannot change property '{attribute}' while the agent is running" in str(errors[0])


async def test_calling_run_while_running_raises():
    errors: list[BaseException] = []

    @tool()
    async def reenter() -> None:
        try:
            async for _ in agent.run():
                pass
        except SafeExecutionError as exc:
            errors.append(exc)

    agent = Agent("busy", "Busy", [reenter])
    await agent.put(Turn("reenter"))
    async for _ in agent.run():
        pass
    assert len(errors) == 1
    assert "running" in str(errors[0])


@pytest.mark.parametrize(
    ("attribute", "new_value"),
    [("name", "renamed"), ("description", "changed"), ("context_queue", None)],
)
def test_attributes_are_locked_while_paused_until_resume(attribute: str, new_value: object):
    agent = Agent("idle", "Idle", [_make_doubler()])
    if new_value is None:
        new_value = ContextQueue(limit=2)
    agent.pause()
    with pytest.raises(SafeExecutionError, match="while the agent is paused"):
        setattr(agent, attribute, new_value)
    agent.resume()
    setattr(agent, attribute, new_value)
    assert getattr(agent, attribute) == new_value


# -- Pausing and resuming --------------------------------------------------------------------


def test_pause_and_resume_are_idempotent_and_reported_by_is_paused():
    agent = Agent("idle", "Idle", [_make_doubler()])
    assert agent.is_paused is False
    agent.pause()
    agent.pause()
    assert agent.is_paused is True
    agent.resume()
    agent.resume()
    assert agent.is_paused is False


async def test_a_paused_run_waits_at_the_gate_between_turns():
    agent = Agent("gated", "Gated", [_make_doubler()])
    at_gate = asyncio.Event()
    log: list[str] = []

    @agent.on_pause
    async def paused(agent) -> None:
        log.append("pause")
        at_gate.set()

    @agent.on_resume
    async def resumed(agent) -> None:
        log.append("resume")

    await agent.put(Turn("double", args=[1]))
    await agent.put(Turn("double", args=[2]))
    agent.pause()  # before run() starts

    async def collect() -> None:
        async for _, value in agent.run():
            log.append(f"value {value}")
            if value == 2:
                agent.pause()  # pause after the first turn

    task = asyncio.create_task(collect())
    await at_gate.wait()
    at_gate.clear()
    assert log == ["pause"]
    agent.resume()
    await at_gate.wait()
    assert log == ["pause", "resume", "value 2", "pause"]
    agent.resume()
    await task
    assert log == ["pause", "resume", "value 2", "pause", "resume", "value 4"]


async def test_a_paused_agent_round_trips_and_stays_paused(values):
    agent = Agent("sleeper", "Sleeps", [_make_doubler()])
    await agent.put(Turn("double", args=[8]))
    agent.pause()
    data = agent.to_dict()

    restored = Agent.from_dict(data)
    assert restored.is_paused
    restored.resume()
    assert await values(restored) == [16]


# -- Hooks -----------------------------------------------------------------------------------


async def test_agent_hooks_fire_in_documented_order_with_their_arguments():
    agent = Agent("observed", "Observed", [_make_doubler()])
    log: list[tuple] = []

    @agent.before_put
    async def bp(a, turn) -> None:
        log.append(("before_put", a is agent, turn.tool.metadata.name))

    @agent.after_put
    async def ap(a, turn) -> None:
        log.append(("after_put", a is agent, len(a.queue)))

    @agent.before_turn
    async def bt(a) -> None:
        log.append(("before_turn", a is agent))

    @agent.on_turn_value
    async def tv(a, turn, value) -> None:
        log.append(("on_turn_value", value))

    @agent.after_turn
    async def at(a, turn) -> None:
        log.append(("after_turn", turn.output))

    await agent.put(Turn("double", args=[5]))
    async for _, value in agent.run():
        log.append(("caller", value))

    assert log == [
        ("before_put", True, "double"),
        ("after_put", True, 1),
        ("before_turn", True),
        ("on_turn_value", 10),
        ("caller", 10),
        ("after_turn", 10),
    ]


async def test_global_agent_hook_fires_for_every_agent():
    names: list[str] = []
    double = _make_doubler()

    @hook(AgentHook.AFTER_TURN)
    async def everywhere(agent, turn) -> None:
        names.append(agent.name)

    for name in ("north", "south"):
        agent = Agent(name, "desc", [double])
        await agent.put(Turn("double", args=[1]))
        async for _ in agent.run():
            pass
    assert names == ["north", "south"]


# -- Registry --------------------------------------------------------------------------------


def test_a_second_agent_with_a_taken_name_raises_value_error():
    double = _make_doubler()
    Agent("only", "desc", [double])
    with pytest.raises(ValueError, match="'only' already registered"):
        Agent("only", "other", [double])


def test_agent_registry_clear_frees_the_names():
    double = _make_doubler()
    Agent("only", "desc", [double])
    AgentRegistry.clear()
    with pytest.raises(UnregisteredAgentError):
        AgentRegistry.get("only")
    Agent("only", "again", [double])


# -- Serialization ---------------------------------------------------------------------------


async def test_to_dict_has_the_documented_keys():
    agent = Agent("saver", "Saves", [_make_doubler()])
    data = agent.to_dict()
    assert set(data) == {
        "name",
        "description",
        "tool_names",
        "queue",
        "current_turn",
        "hooks",
        "turn_hooks",
        "context_pool",
        "context_queue",
        "is_paused",
        "tags",
    }
    assert data["name"] == "saver"
    assert data["tool_names"] == ["double"]
    assert data["current_turn"] is None
    assert data["is_paused"] is False
    assert data["hooks"] == {}


async def test_from_dict_rebuilds_queue_context_and_hooks():
    agent = Agent("saver", "Saves", [_make_doubler()], tags=["k"])

    @agent.before_turn
    async def watch(agent) -> None: ...

    await agent.put(Turn("double", args=[2]))
    await agent.context_queue.append(ContextItem(content="remembered"))
    await agent.context_pool.add(ContextItem(content="doc", description="a doc", id="d"))
    data = agent.to_dict()
    assert data["hooks"] == {"before_turn": ["watch"]}

    AgentRegistry.clear()
    restored = Agent.from_dict(data)
    assert restored.name == "saver"
    assert restored.tags == frozenset({"k"})
    assert restored.hooks == [watch]
    assert [i.content for i in restored.context_queue.items] == ["remembered"]
    assert restored.context_pool["d"].description == "a doc"
    assert [v async for _, v in restored.run()] == [4]


async def test_a_turn_in_flight_is_saved_as_current_turn_and_replayed_first(values):
    snapshot: dict = {}

    @tool()
    async def step(n: int) -> int:
        if not snapshot:
            snapshot.update(agent.to_dict())
        return n

    agent = Agent("stepper", "Steps", [step])
    await agent.put(Turn("step", args=[1]))
    await agent.put(Turn("step", args=[2]))
    assert await values(agent) == [1, 2]

    assert snapshot["current_turn"]["tool_name"] == "step"
    assert len(snapshot["queue"]) == 1
    AgentRegistry.clear()
    restored = Agent.from_dict(snapshot)
    assert await values(restored) == [1, 2]


async def test_from_dict_raises_unregistered_hook_error_for_an_unknown_hook():
    agent = Agent("saver", "Saves", [_make_doubler()])
    data = agent.to_dict()
    data["hooks"] = {"before_turn": ["never_defined"]}
    AgentRegistry.clear()
    with pytest.raises(UnregisteredHookError):
        Agent.from_dict(data)


# -- Seed 003 (older agents page) ------------------------------------------------------------


async def test_turn_tool_name_is_the_registered_name(capsys: pytest.CaptureFixture[str]):
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    await agent.put(Turn("double", kwargs={"x": 3}))
    async for turn, value in agent.run():
        print(f"{turn.tool_name}: {value}")
    assert capsys.readouterr().out == "double: 6\n"


async def test_pop_waits_until_a_turn_is_available():
    agent = Agent("doubler", "Doubles numbers", [_make_doubler()])
    waiting = asyncio.create_task(agent.pop())
    await asyncio.sleep(0)
    assert not waiting.done()
    queued = Turn("double", args=[1])
    await agent.put(queued)
    assert await waiting is queued


async def test_send_turn_still_works_as_a_deprecated_alias(values):
    double = _make_doubler()
    sender = Agent("sender", "Sends", [double])
    receiver = Agent("receiver", "Receives", [double])
    with pytest.warns(DeprecationWarning, match="send"):
        await sender.send_turn("receiver", Turn("double", args=[5]))
    assert await values(receiver) == [10]
