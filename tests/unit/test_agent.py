"""Agent: construction, queue, run loop, routing, immutability, messaging, branching, pause,
hooks and the AgentRegistry."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextQueue,
    SafeExecutionError,
    StopReason,
    ToolRegistry,
    Turn,
    TurnHook,
    TurnTimeoutError,
    UnregisteredAgentError,
    current_agent,
    current_turn,
    hook,
    tool,
)


async def drain(agent: Agent) -> list[tuple[Turn, Any]]:
    return [pair async for pair in agent.run()]


async def values_of(agent: Agent) -> list[Any]:
    return [value async for _turn, value in agent.run()]


def make_echo() -> Any:
    @tool()
    async def echo(x: Any = None) -> Any:
        return x

    return echo


# --------------------------------------------------------------------------- constructor


class TestConstructor:
    def test_basic_attributes(self) -> None:
        echo = make_echo()
        agent = Agent("worker", "Echoes things", [echo], tags=["team-a"])
        assert agent.name == "worker"
        assert agent.description == "Echoes things"
        assert agent.tools == [echo]
        assert agent.tags == frozenset({"team-a"})
        assert agent.hooks == []
        assert agent.queue == []
        assert len(agent) == 0
        assert not agent.is_running
        assert not agent.is_paused
        assert agent.current_turn is None
        assert AgentRegistry.get("worker") is agent

    @pytest.mark.parametrize("name", [None, 42, b"bytes", ["worker"]])
    def test_name_must_be_a_string(self, name: Any) -> None:
        with pytest.raises(TypeError):
            Agent(name, "desc", [make_echo()])
        assert AgentRegistry.all() == []

    @pytest.mark.parametrize("description", [None, 42, ["a description"]])
    def test_description_must_be_a_string(self, description: Any) -> None:
        with pytest.raises(TypeError):
            Agent("worker", description, [make_echo()])
        assert AgentRegistry.all() == []

    def test_tool_that_is_not_the_registered_instance_is_value_error(self) -> None:
        stale = make_echo()
        ToolRegistry.unregister("echo")
        fresh = make_echo()
        assert stale is not fresh
        with pytest.raises(ValueError):
            Agent("worker", "desc", [stale])
        # Nothing was registered by the failed constructor: the name is still free.
        agent = Agent("worker", "desc", [fresh])
        assert agent.tools == [fresh]

    def test_unregistered_tool_is_value_error(self) -> None:
        echo = make_echo()
        ToolRegistry.clear()
        with pytest.raises(ValueError):
            Agent("worker", "desc", [echo])

    def test_plain_function_is_type_error(self) -> None:
        async def not_a_tool() -> None:
            return None

        with pytest.raises(TypeError):
            Agent("worker", "desc", [not_a_tool])
        assert AgentRegistry.all() == []

    @pytest.mark.parametrize("bad", ["echo", 42, None])
    def test_non_tool_in_list_is_type_error(self, bad: Any) -> None:
        make_echo()
        with pytest.raises(TypeError):
            Agent("worker", "desc", [bad])

    def test_duplicate_name_is_value_error(self) -> None:
        echo = make_echo()
        first = Agent("worker", "first", [echo])
        with pytest.raises(ValueError):
            Agent("worker", "second", [echo])
        assert AgentRegistry.get("worker") is first
        assert AgentRegistry.all() == [first]

    def test_default_context_queue_and_pool(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        assert isinstance(agent.context_queue, ContextQueue)
        assert agent.context_queue.limit == 10
        assert len(agent.context_queue) == 0
        assert isinstance(agent.context_pool, ContextPool)
        assert agent.context_pool.limit is None
        assert len(agent.context_pool) == 0
        assert agent.context_queue.owner == "worker"
        assert agent.context_pool.owner == "worker"

    def test_each_agent_gets_its_own_default_context(self) -> None:
        echo = make_echo()
        a = Agent("a", "desc", [echo])
        b = Agent("b", "desc", [echo])
        assert a.context_queue is not b.context_queue
        assert a.context_pool is not b.context_pool
        assert b.context_queue.owner == "b"

    def test_given_context_is_used_and_owned(self) -> None:
        cq = ContextQueue(limit=7)
        pool = ContextPool(limit=3)
        assert cq.owner is None
        agent = Agent("worker", "desc", [make_echo()], context_queue=cq, context_pool=pool)
        assert agent.context_queue is cq
        assert agent.context_pool is pool
        assert cq.owner == "worker"
        assert pool.owner == "worker"

    def test_wrong_context_types_are_type_errors(self) -> None:
        echo = make_echo()
        with pytest.raises(TypeError):
            Agent("a", "desc", [echo], context_queue=ContextPool())  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Agent("b", "desc", [echo], context_pool=ContextQueue(3))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- put / pop / queue


class TestPut:
    @pytest.mark.parametrize("bad", ["echo", {"tool": "echo"}, None])
    async def test_non_turn_is_type_error(self, bad: Any) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        with pytest.raises(TypeError):
            await agent.put(bad)
        assert len(agent) == 0

    async def test_tool_itself_is_not_a_turn(self) -> None:
        echo = make_echo()
        agent = Agent("worker", "desc", [echo])
        with pytest.raises(TypeError):
            await agent.put(echo)  # type: ignore[arg-type]

    async def test_foreign_tool_is_value_error(self) -> None:
        echo = make_echo()

        @tool()
        async def other() -> None:
            return None

        agent = Agent("worker", "desc", [echo])
        await agent.put(Turn(echo))
        with pytest.raises(ValueError):
            await agent.put(Turn(other))
        assert [t.tool for t in agent.queue] == [echo]

    async def test_put_keeps_order_and_queue_is_a_copy(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        turns = [Turn("echo", kwargs={"x": i}) for i in range(3)]
        for t in turns:
            await agent.put(t)
        assert agent.queue == turns
        assert len(agent) == 3
        view = agent.queue
        view.clear()
        assert agent.queue == turns

    async def test_pop_takes_the_first(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        a, b = Turn("echo", kwargs={"x": 1}), Turn("echo", kwargs={"x": 2})
        await agent.put(a)
        await agent.put(b)
        assert await agent.pop() is a
        assert agent.queue == [b]

    async def test_pop_waits_for_a_put(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        waiter = asyncio.create_task(agent.pop())
        await asyncio.sleep(0.02)
        assert not waiter.done()
        turn = Turn("echo", kwargs={"x": 1})
        await agent.put(turn)
        assert await asyncio.wait_for(waiter, 1) is turn
        assert len(agent) == 0


# --------------------------------------------------------------------------- run


class TestRun:
    async def test_yields_turn_value_pairs_in_order_and_exits_when_empty(self) -> None:
        @tool()
        async def double(x: int) -> int:
            return x * 2

        agent = Agent("worker", "desc", [double])
        turns = [Turn("double", kwargs={"x": i}) for i in (1, 2, 3)]
        for t in turns:
            await agent.put(t)
        pairs = await drain(agent)
        assert pairs == [(turns[0], 2), (turns[1], 4), (turns[2], 6)]
        assert all(p[0] is t for p, t in zip(pairs, turns, strict=True))
        assert len(agent) == 0
        assert not agent.is_running
        assert all(t.metadata.stop_reason is StopReason.COMPLETED for t in turns)

    async def test_run_on_empty_queue_yields_nothing(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        assert await drain(agent) == []
        assert not agent.is_running

    async def test_streaming_tool_yields_each_value(self) -> None:
        @tool()
        async def count(n: int):
            for i in range(n):
                yield i

        agent = Agent("worker", "desc", [count])
        t1, t2 = Turn("count", kwargs={"n": 3}), Turn("count", kwargs={"n": 2})
        await agent.put(t1)
        await agent.put(t2)
        assert await drain(agent) == [(t1, 0), (t1, 1), (t1, 2), (t2, 0), (t2, 1)]
        assert t1.output == [0, 1, 2]

    async def test_returned_turn_is_enqueued_and_run(self) -> None:
        @tool()
        async def start() -> Turn:
            return Turn("finish", kwargs={"x": "from start"})

        @tool()
        async def finish(x: str) -> str:
            return x

        agent = Agent("worker", "desc", [start, finish])
        await agent.put(Turn("start"))
        await agent.put(Turn("finish", kwargs={"x": "queued"}))
        start_turn = agent.turns[0]
        pairs = await drain(agent)
        # The returned turn goes to the back of the queue, and is not yielded itself.
        assert [(t.tool_name, v) for t, v in pairs] == [
            ("finish", "queued"),
            ("finish", "from start"),
        ]
        returned = start_turn.output
        assert isinstance(returned, Turn)
        assert pairs[1][0] is returned

    @pytest.mark.parametrize("hooked", [False, True], ids=["bare", "hooked"])
    async def test_a_returned_turn_is_enqueued_between_its_producer_end_and_its_start(
        self, hooked: bool
    ) -> None:
        @tool()
        async def hop(left: int) -> Any:
            return Turn("hop", kwargs={"left": left - 1}) if left else "done"

        agent = Agent("worker", "desc", [hop])
        seen: list[Turn] = []
        if hooked:  # a turn hook takes the run loop off its bare-turn path

            @hook(TurnHook.AFTER_RUN)
            async def note(turn: Turn, *rest: Any) -> None:
                seen.append(turn)

            agent.turn_hooks.append(note)
        first = Turn("hop", kwargs={"left": 5})
        await agent.put(first)
        produced = [first]
        async for _ in agent.run():
            pass
        while isinstance(produced[-1].output, Turn):
            produced.append(produced[-1].output)
        assert len(produced) == 6 and produced[-1].output == "done"
        for producer, returned in itertools.pairwise(produced):
            done, queued = producer.metadata.end_time, returned.metadata.enqueued_time
            assert done is not None and queued is not None
            assert done <= queued <= returned.metadata.start_time
            wait = returned.metadata.queue_wait
            assert wait is not None and wait >= 0
        assert len(seen) == (6 if hooked else 0)

    async def test_context_items_are_routed(self) -> None:
        @tool()
        async def note(text: str) -> ContextItem:
            return ContextItem(content=text)

        @tool()
        async def store(doc_id: str) -> ContextItem:
            return ContextItem(id=doc_id, description=f"doc {doc_id}", content="body")

        @tool()
        async def other() -> dict[str, str]:
            return {"id": "x", "description": "not an item"}

        agent = Agent("worker", "desc", [note, store, other])
        await agent.put(Turn("note", kwargs={"text": "hello"}))
        await agent.put(Turn("store", kwargs={"doc_id": "d1"}))
        await agent.put(Turn("other"))
        pairs = await drain(agent)
        # Routed values are consumed, not yielded; a dict is just a value.
        assert [v for _, v in pairs] == [{"id": "x", "description": "not an item"}]
        assert [i.content for i in agent.context_queue.items] == ["hello"]
        assert [i.id for i in agent.context_pool.items] == ["d1"]

    async def test_streamed_values_are_routed_before_they_are_yielded(self) -> None:
        @tool()
        async def mixed():
            yield ContextItem(content="q-item")
            yield ContextItem(id="p1", description="pool item", content=1)
            yield Turn("leaf")
            yield "plain"

        @tool()
        async def leaf() -> str:
            return "leaf ran"

        agent = Agent("worker", "desc", [mixed, leaf])
        await agent.put(Turn("mixed"))
        observed: list[tuple[Any, int, int, int]] = []
        async for _turn, value in agent.run():
            observed.append(
                (
                    value if not isinstance(value, Turn) else "turn",
                    len(agent.context_queue),
                    len(agent.context_pool),
                    len(agent),
                )
            )
        # Only "plain" and the leaf's value are yielded; the routed ones were routed first.
        assert observed == [
            ("plain", 1, 1, 1),
            ("leaf ran", 1, 1, 0),
        ]

    async def test_returned_turn_for_a_foreign_tool_raises_value_error(self) -> None:
        @tool()
        async def outside() -> None:
            return None

        @tool()
        async def wander() -> Turn:
            return Turn(outside)

        agent = Agent("worker", "desc", [wander])
        await agent.put(Turn("wander"))
        await agent.put(Turn("wander"))
        with pytest.raises(ValueError):
            await drain(agent)
        assert not agent.is_running
        assert [t.tool_name for t in agent.queue] == ["wander"]

    async def test_streamed_turn_for_a_foreign_tool_raises_value_error(self) -> None:
        @tool()
        async def outside() -> None:
            return None

        @tool()
        async def wander():
            yield Turn(outside)

        agent = Agent("worker", "desc", [wander])
        await agent.put(Turn("wander"))
        with pytest.raises(ValueError):
            await drain(agent)
        assert not agent.is_running

    async def test_put_from_inside_a_tool_runs_in_the_same_run(self) -> None:
        @tool()
        async def spawn() -> str:
            me = current_agent()
            assert me is not None
            await me.put(Turn("echo", kwargs={"x": "spawned"}))
            return "spawner"

        echo = make_echo()
        agent = Agent("worker", "desc", [spawn, echo])
        await agent.put(Turn("spawn"))
        assert await values_of(agent) == ["spawner", "spawned"]

    async def test_second_concurrent_run_is_refused(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        for i in range(3):
            await agent.put(Turn("echo", kwargs={"x": i}))
        seen = []
        async for _turn, value in agent.run():
            seen.append(value)
            with pytest.raises(SafeExecutionError):
                await anext(agent.run())
            assert agent.is_running
        # The refused run() disturbed nothing: the first run went on to the end.
        assert seen == [0, 1, 2]
        assert not agent.is_running

    async def test_run_from_another_task_while_running_is_refused(self) -> None:
        release = asyncio.Event()

        @tool()
        async def wait() -> str:
            await release.wait()
            return "released"

        agent = Agent("worker", "desc", [wait])
        await agent.put(Turn("wait"))
        task = asyncio.create_task(values_of(agent))
        await asyncio.sleep(0.01)
        assert agent.is_running
        with pytest.raises(SafeExecutionError):
            await drain(agent)
        assert agent.is_running
        release.set()
        assert await asyncio.wait_for(task, 1) == ["released"]
        assert not agent.is_running

    async def test_tool_error_propagates_and_run_end_gets_it(self) -> None:
        @tool()
        async def boom() -> None:
            raise KeyError("boom")

        agent = Agent("worker", "desc", [boom])
        ends: list[Any] = []

        @agent.on_run_end
        async def run_end(a: Agent, exc: BaseException | None) -> None:
            ends.append((a, exc))

        await agent.put(Turn("boom"))
        with pytest.raises(KeyError) as info:
            await drain(agent)
        assert ends == [(agent, info.value)]


# --------------------------------------------------------------------------- immutability

NEW_VALUES: dict[str, Any] = {
    "name": lambda: "renamed",
    "description": lambda: "new description",
    "tools": lambda: [],
    "hooks": lambda: [],
    "tags": lambda: ["new-tag"],
    "context_queue": lambda: ContextQueue(limit=5),
    "context_pool": lambda: ContextPool(limit=5),
}


class TestImmutability:
    @pytest.mark.parametrize("attr", sorted(NEW_VALUES))
    async def test_attribute_is_read_only_while_running(self, attr: str) -> None:
        outcome: dict[str, Any] = {}

        @tool()
        async def mutate() -> None:
            me = current_agent()
            assert me is not None
            outcome["running"] = me.is_running
            before = getattr(me, attr)
            try:
                setattr(me, attr, NEW_VALUES[attr]())
            except SafeExecutionError:
                outcome["error"] = True
            outcome["unchanged"] = getattr(me, attr) == before

        agent = Agent("worker", "desc", [mutate], tags=["old-tag"])
        await agent.put(Turn("mutate"))
        await drain(agent)
        assert outcome == {"running": True, "error": True, "unchanged": True}
        assert AgentRegistry.get("worker") is agent

    async def test_attributes_are_writable_after_running(self) -> None:
        echo = make_echo()

        @tool()
        async def extra() -> None:
            return None

        agent = Agent("worker", "desc", [echo])
        await agent.put(Turn("echo", kwargs={"x": 1}))
        await drain(agent)

        agent.description = "changed"
        agent.tools = [echo, extra]
        agent.tags = ["t1", "t2"]
        cq, pool = ContextQueue(limit=5), ContextPool(limit=5)
        agent.context_queue = cq
        agent.context_pool = pool

        @agent.before_turn
        async def noop(a: Agent) -> None:
            return None

        agent.hooks = []
        agent.name = "renamed"

        assert agent.description == "changed"
        assert agent.tools == [echo, extra]
        assert agent.tags == frozenset({"t1", "t2"})
        assert agent.context_queue is cq
        assert agent.context_pool is pool
        assert agent.hooks == []
        assert agent.name == "renamed"
        # The registry follows the rename.
        assert AgentRegistry.get("renamed") is agent
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.get("worker")
        # The new tool can be used now.
        await agent.put(Turn("extra"))
        assert await values_of(agent) == [None]

    async def test_tool_setter_still_validates(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])

        async def plain() -> None:
            return None

        with pytest.raises(TypeError):
            agent.tools = [plain]  # type: ignore[list-item]

    async def test_rename_to_a_taken_name_is_refused(self) -> None:
        echo = make_echo()
        a = Agent("a", "desc", [echo])
        b = Agent("b", "desc", [echo])
        with pytest.raises(ValueError):
            b.name = "a"
        assert b.name == "b"
        assert AgentRegistry.get("a") is a
        assert AgentRegistry.get("b") is b

    async def test_rename_does_not_unregister_another_agent_holding_the_old_name(self) -> None:
        echo = make_echo()
        old = Agent("x", "desc", [echo])
        AgentRegistry.unregister("x")
        current = Agent("x", "desc", [echo])
        old.name = "y"
        assert AgentRegistry.get("y") is old
        # The agent now registered as "x" is a different one; it must stay reachable.
        assert AgentRegistry.get("x") is current

    async def test_rename_of_an_unregistered_agent_does_not_fail_halfway(self) -> None:
        agent = Agent("x", "desc", [make_echo()])
        AgentRegistry.unregister("x")
        try:
            agent.name = "y"
        except Exception:
            # Refusing is acceptable only if nothing changed.
            assert agent.name == "x"
            assert AgentRegistry.all() == []
        else:
            assert agent.name == "y"
            assert AgentRegistry.get("y") is agent

    def test_string_tags_are_type_error(self) -> None:
        echo = make_echo()
        with pytest.raises(TypeError):
            Agent("worker", "desc", [echo], tags="oops")
        agent = Agent("worker", "desc", [echo], tags=["ok"])
        with pytest.raises(TypeError):
            agent.tags = "oops"  # type: ignore[assignment]
        assert agent.tags == frozenset({"ok"})


# --------------------------------------------------------------------------- messaging


class TestSend:
    async def test_send_puts_on_the_other_agents_queue(self) -> None:
        echo = make_echo()
        alice = Agent("alice", "sender", [echo])
        bob = Agent("bob", "receiver", [echo])
        puts: list[tuple[Agent, Turn]] = []

        @bob.after_put
        async def bob_got(a: Agent, turn: Turn) -> None:
            puts.append((a, turn))

        turn = Turn("echo", kwargs={"x": 42})
        await alice.send("bob", turn)
        assert bob.queue == [turn]
        assert alice.queue == []
        assert puts == [(bob, turn)]
        assert await values_of(bob) == [42]

    async def test_send_to_unknown_agent(self) -> None:
        alice = Agent("alice", "sender", [make_echo()])
        with pytest.raises(UnregisteredAgentError):
            await alice.send("nobody", Turn("echo"))
        with pytest.raises(LookupError):
            await alice.send("nobody", Turn("echo"))

    async def test_send_turn_with_a_tool_the_receiver_lacks(self) -> None:
        echo = make_echo()

        @tool()
        async def other() -> None:
            return None

        alice = Agent("alice", "sender", [echo, other])
        bob = Agent("bob", "receiver", [echo])
        with pytest.raises(ValueError):
            await alice.send("bob", Turn(other))
        assert bob.queue == []

    async def test_send_turn_is_deprecated_but_works(self) -> None:
        echo = make_echo()
        alice = Agent("alice", "sender", [echo])
        bob = Agent("bob", "receiver", [echo])
        turn = Turn("echo", kwargs={"x": 1})
        with pytest.warns(DeprecationWarning, match="send"):
            await alice.send_turn("bob", turn)
        assert bob.queue == [turn]

    async def test_send_turn_to_unknown_agent_still_raises(self) -> None:
        alice = Agent("alice", "sender", [make_echo()])
        with (
            pytest.warns(DeprecationWarning),
            pytest.raises(UnregisteredAgentError),
        ):
            await alice.send_turn("nobody", Turn("echo"))


# --------------------------------------------------------------------------- branch


class TestBranch:
    async def test_child_inherits_everything(self) -> None:
        echo = make_echo()
        parent = Agent("parent", "Echoes", [echo], tags=["team"])

        @parent.before_turn
        async def before_turn(a: Agent) -> None:
            return None

        original = Turn("echo", kwargs={"x": "queued"}, timeout=5)

        @original.on_complete
        async def turn_done(turn: Turn, reason: StopReason) -> None:
            return None

        await parent.put(original)
        await parent.context_queue.append(ContextItem(content="history"))
        await parent.context_pool.add(ContextItem(id="d", description="doc", content=1))

        child = parent.branch("child")
        assert AgentRegistry.get("child") is child
        assert child.name == "child"
        assert child.description == "Echoes"
        assert child.tools == [echo]
        assert child.tags == frozenset({"team"})
        assert child.hooks == [before_turn]
        assert child.hooks is not parent.hooks
        # Copies of the queued turns.
        assert len(child) == 1
        copy = child.queue[0]
        assert copy is not original
        assert copy.tool is echo
        assert copy.kwargs == {"x": "queued"}
        assert copy.kwargs is not original.kwargs
        assert copy.timeout == 5
        assert copy.hooks == original.hooks
        # Snapshots of the context, owned by the child.
        assert child.context_queue is not parent.context_queue
        assert child.context_pool is not parent.context_pool
        assert child.context_queue.items == parent.context_queue.items
        assert child.context_pool.items == parent.context_pool.items
        assert child.context_queue.limit == parent.context_queue.limit
        assert child.context_queue.owner == "child"
        assert child.context_pool.owner == "child"
        assert parent.context_queue.owner == "parent"

    async def test_overrides(self) -> None:
        echo = make_echo()

        @tool()
        async def other() -> str:
            return "other"

        parent = Agent("parent", "desc", [echo, other])

        @parent.before_turn
        async def before_turn(a: Agent) -> None:
            return None

        await parent.put(Turn("other"))

        child = parent.branch("child", tools=[other], hooks=[], description="only other")
        assert child.tools == [other]
        assert child.hooks == []
        assert child.description == "only other"
        assert [t.tool_name for t in child.queue] == ["other"]
        assert len(parent) == 1
        assert parent.hooks == [before_turn]

    async def test_tools_lacking_a_queued_turns_tool_are_refused(self) -> None:
        # Before: the child silently lost the queued turns of the tools it was not given.
        echo = make_echo()

        @tool()
        async def other() -> str:
            return "other"

        @tool()
        async def third() -> str:
            return "third"

        parent = Agent("parent", "desc", [echo, other, third])
        await parent.put(Turn("echo", kwargs={"x": 1}))
        await parent.put(Turn("other"))
        await parent.put(Turn("third"))

        with pytest.raises(ValueError, match="does not accept tool 'echo', 'third'") as info:
            parent.branch("child", tools=(t for t in [other]))
        assert "'child'" in str(info.value) and "tools=" in str(info.value)
        # Nothing was created: the name is free, the parent is as it was.
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.get("child")
        assert [t.tool_name for t in parent.queue] == ["echo", "other", "third"]
        # A generator of tools is read once, and is enough when it holds every queued tool.
        child = parent.branch("child", tools=(t for t in [third, echo, other]))
        assert [t.tool_name for t in child.queue] == ["echo", "other", "third"]
        assert child.tools == [third, echo, other]
        # Without queued turns, any subset goes.
        assert Agent("empty", "d", [echo, other]).branch("empty-2", tools=[other]).tools == [other]

    async def test_a_branch_given_something_else_than_tools_still_gets_the_type_error(
        self,
    ) -> None:
        echo = make_echo()
        parent = Agent("parent", "desc", [echo])
        await parent.put(Turn("echo", kwargs={"x": 1}))
        for wrong in ("echo", 5):
            with pytest.raises(TypeError, match="tools must be a list of tools"):
                parent.branch("child", tools=wrong)  # type: ignore[arg-type]

    async def test_duplicate_branch_name_is_value_error(self) -> None:
        parent = Agent("parent", "desc", [make_echo()])
        with pytest.raises(ValueError):
            parent.branch("parent")

    async def test_child_and_parent_are_independent(self) -> None:
        @tool()
        async def remember(text: str) -> ContextItem:
            return ContextItem(content=text)

        @tool()
        async def store(key: str) -> ContextItem:
            return ContextItem(id=key, description=key, content=key)

        parent = Agent("parent", "desc", [remember, store])
        await parent.put(Turn("remember", kwargs={"text": "shared"}))
        await parent.put(Turn("store", kwargs={"key": "shared"}))

        child = parent.branch("child")
        child_values = await values_of(child)
        assert child_values == []  # both values were routed into the child's context
        # Running the child left the parent's queue and context untouched.
        assert len(parent) == 2
        assert len(parent.context_queue) == 0
        assert len(parent.context_pool) == 0
        assert [i.content for i in child.context_queue.items] == ["shared"]
        assert "shared" in child.context_pool

        await parent.put(Turn("remember", kwargs={"text": "parent only"}))
        await values_of(parent)
        assert [i.content for i in parent.context_queue.items] == ["shared", "parent only"]
        assert [i.content for i in child.context_queue.items] == ["shared"]
        assert len(child) == 0

    async def test_branch_snapshot_of_context_diverges(self) -> None:
        parent = Agent("parent", "desc", [make_echo()])
        await parent.context_queue.append(ContextItem(content="before"))
        child = parent.branch("child")
        await parent.context_queue.append(ContextItem(content="parent later"))
        await child.context_queue.append(ContextItem(content="child later"))
        await child.context_pool.add(ContextItem(id="c", description="child doc"))
        assert [i.content for i in parent.context_queue] == ["before", "parent later"]
        assert [i.content for i in child.context_queue] == ["before", "child later"]
        assert "c" not in parent.context_pool

    async def test_inherited_hooks_fire_for_the_child(self) -> None:
        parent = Agent("parent", "desc", [make_echo()])
        seen: list[str] = []

        @parent.before_turn
        async def before_turn(a: Agent) -> None:
            seen.append(a.name)

        await parent.put(Turn("echo", kwargs={"x": 1}))
        child = parent.branch("child")
        await drain(child)
        assert seen == ["child"]


# --------------------------------------------------------------------------- pause / resume


class TestPause:
    def test_pause_and_resume_state(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        assert agent.is_paused is False
        agent.pause()
        assert agent.is_paused is True
        agent.pause()
        assert agent.is_paused is True
        agent.resume()
        assert agent.is_paused is False
        agent.resume()
        assert agent.is_paused is False

    async def test_paused_agent_waits_until_resumed(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        events: list[str] = []

        @agent.on_pause
        async def paused(a: Agent) -> None:
            events.append("pause")

        @agent.on_resume
        async def resumed(a: Agent) -> None:
            events.append("resume")

        @agent.before_turn
        async def before(a: Agent) -> None:
            events.append("before_turn")

        for i in range(2):
            await agent.put(Turn("echo", kwargs={"x": i}))
        agent.pause()
        seen: list[Any] = []

        async def consume() -> None:
            async for _turn, value in agent.run():
                seen.append(value)

        task = asyncio.create_task(consume())

        async def resume_later() -> None:
            await asyncio.sleep(0.05)
            events.append("calling resume")
            agent.resume()

        resumer = asyncio.create_task(resume_later())
        await asyncio.sleep(0.02)
        assert seen == []
        assert agent.is_running
        assert agent.is_paused
        assert events == ["pause"]
        assert len(agent) == 2
        await asyncio.wait_for(asyncio.gather(task, resumer), 1)
        assert seen == [0, 1]
        assert events == ["pause", "calling resume", "resume", "before_turn", "before_turn"]
        assert not agent.is_paused

    async def test_pause_from_inside_a_tool_stops_before_the_next_turn(self) -> None:
        @tool()
        async def step(n: int) -> int:
            if n == 1:
                me = current_agent()
                assert me is not None
                me.pause()
            return n

        agent = Agent("worker", "desc", [step])
        pauses: list[Agent] = []
        resumes: list[Agent] = []

        @agent.on_pause
        async def paused(a: Agent) -> None:
            pauses.append(a)

        @agent.on_resume
        async def resumed(a: Agent) -> None:
            resumes.append(a)

        for n in (1, 2, 3):
            await agent.put(Turn("step", kwargs={"n": n}))
        seen: list[int] = []

        async def consume() -> None:
            async for _turn, value in agent.run():
                seen.append(value)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        assert seen == [1]
        assert agent.is_paused
        assert agent.is_running
        assert [t.kwargs["n"] for t in agent.queue] == [2, 3]
        assert pauses == [agent]
        assert resumes == []

        agent.resume()
        await asyncio.wait_for(task, 1)
        assert seen == [1, 2, 3]
        assert resumes == [agent]
        assert pauses == [agent]

    async def test_cancelled_while_paused(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        turn = Turn("echo", kwargs={"x": 1})
        await agent.put(turn)
        agent.pause()
        task = asyncio.create_task(values_of(agent))
        await asyncio.sleep(0.02)
        assert agent.is_running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not agent.is_running
        assert agent.queue == [turn]
        assert turn.metadata.stop_reason is None
        agent.resume()
        assert await asyncio.wait_for(values_of(agent), 1) == [1]

    async def test_pause_persists_into_the_next_run(self) -> None:
        @tool()
        async def halt() -> str:
            me = current_agent()
            assert me is not None
            me.pause()
            return "halted"

        echo = make_echo()
        agent = Agent("worker", "desc", [halt, echo])
        await agent.put(Turn("halt"))
        # The last turn paused the agent: the run ends normally, the agent stays paused.
        assert await values_of(agent) == ["halted"]
        assert agent.is_paused
        await agent.put(Turn("echo", kwargs={"x": "later"}))
        task = asyncio.create_task(values_of(agent))
        await asyncio.sleep(0.02)
        assert not task.done()
        agent.resume()
        assert await asyncio.wait_for(task, 1) == ["later"]

    async def test_resume_before_the_gate_means_no_wait(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        await agent.put(Turn("echo", kwargs={"x": 1}))
        agent.pause()
        agent.resume()
        assert await asyncio.wait_for(values_of(agent), 1) == [1]


# --------------------------------------------------------------------------- hooks


class TestAgentHooks:
    async def test_every_agent_hook_with_args_in_order(self) -> None:
        returned: dict[str, Turn] = {}

        @tool()
        async def first() -> Turn:
            log.append(("tool", "first"))
            returned["turn"] = Turn("second")
            return returned["turn"]

        @tool()
        async def second() -> str:
            log.append(("tool", "second"))
            return "done"

        agent = Agent("worker", "desc", [first, second])
        log: list[tuple[Any, ...]] = []

        @agent.on_run_start
        async def run_start(a: Agent) -> None:
            log.append(("run_start", a))

        @agent.on_run_end
        async def run_end(a: Agent, exc: BaseException | None) -> None:
            log.append(("run_end", a, exc))

        @agent.before_turn
        async def before_turn(a: Agent) -> None:
            log.append(("before_turn", a, len(a)))

        @agent.after_turn
        async def after_turn(a: Agent, turn: Turn) -> None:
            log.append(("after_turn", a, turn))

        @agent.on_turn_value
        async def on_value(a: Agent, turn: Turn, value: Any) -> None:
            log.append(("value", a, turn, value, len(a)))

        @agent.before_put
        async def before_put(a: Agent, turn: Turn) -> None:
            log.append(("before_put", a, turn, turn in a.queue))

        @agent.after_put
        async def after_put(a: Agent, turn: Turn) -> None:
            log.append(("after_put", a, turn, turn in a.queue))

        @agent.on_complete
        async def complete(turn: Turn, reason: StopReason) -> None:
            log.append(("complete", turn, reason))

        t1 = Turn("first")
        await agent.put(t1)
        async for turn, value in agent.run():
            log.append(("consumer", turn, value))
        t2 = returned["turn"]
        assert log == [
            ("before_put", agent, t1, False),
            ("after_put", agent, t1, True),
            ("run_start", agent),
            ("before_turn", agent, 1),
            ("tool", "first"),
            ("complete", t1, StopReason.COMPLETED),
            ("before_put", agent, t2, False),
            ("after_put", agent, t2, True),
            ("value", agent, t1, t2, 1),
            ("after_turn", agent, t1),
            ("before_turn", agent, 1),
            ("tool", "second"),
            ("complete", t2, StopReason.COMPLETED),
            ("value", agent, t2, "done", 0),
            ("consumer", t2, "done"),
            ("after_turn", agent, t2),
            ("run_end", agent, None),
        ]

    async def test_streaming_turn_hook_order(self) -> None:
        @tool()
        async def stream():
            yield "a"
            yield "b"

        agent = Agent("worker", "desc", [stream])
        log: list[Any] = []

        @agent.before_turn
        async def before_turn(a: Agent) -> None:
            log.append("before_turn")

        @agent.on_turn_value
        async def on_value(a: Agent, turn: Turn, value: Any) -> None:
            log.append(f"value {value}")

        @agent.after_turn
        async def after_turn(a: Agent, turn: Turn) -> None:
            log.append("after_turn")

        await agent.put(Turn("stream"))
        async for _turn, value in agent.run():
            log.append(f"consumer {value}")
        assert log == [
            "before_turn",
            "value a",
            "consumer a",
            "value b",
            "consumer b",
            "after_turn",
        ]

    async def test_hooks_given_to_the_constructor(self) -> None:
        probe = Agent("probe", "desc", [make_echo()])
        seen: list[str] = []

        @probe.before_turn
        async def shared_before(a: Agent) -> None:
            seen.append(a.name)

        agent = Agent("worker", "desc", probe.tools, hooks=[shared_before])
        await agent.put(Turn("echo"))
        await drain(agent)
        assert seen == ["worker"]

    async def test_before_put_veto(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        after: list[Turn] = []

        @agent.before_put
        async def refuse(a: Agent, turn: Turn) -> None:
            if turn.kwargs.get("x") == "bad":
                raise PermissionError("refused")

        @agent.after_put
        async def after_put(a: Agent, turn: Turn) -> None:
            after.append(turn)

        good = Turn("echo", kwargs={"x": "good"})
        await agent.put(good)
        with pytest.raises(PermissionError):
            await agent.put(Turn("echo", kwargs={"x": "bad"}))
        assert agent.queue == [good]
        assert after == [good]

    async def test_agent_turn_hooks_fire_for_every_turn(self) -> None:
        @tool()
        async def work(mode: str) -> str:
            if mode == "fail":
                raise RuntimeError("failed on purpose")
            if mode == "slow":
                await asyncio.sleep(1)
            return mode

        agent = Agent("worker", "desc", [work])
        log: list[tuple[Any, ...]] = []

        @agent.on_error
        async def on_error(turn: Turn, exc: BaseException) -> None:
            log.append(("error", turn, exc))

        @agent.on_timeout
        async def on_timeout(turn: Turn) -> None:
            log.append(("timeout", turn))

        @agent.on_complete
        async def on_complete(turn: Turn, reason: StopReason) -> None:
            log.append(("complete", turn, reason))

        ok1 = Turn("work", kwargs={"mode": "ok"})
        bad = Turn("work", kwargs={"mode": "fail"})
        slow = Turn("work", kwargs={"mode": "slow"}, timeout=0.05)
        ok2 = Turn("work", kwargs={"mode": "ok again"})
        for t in (ok1, bad, slow, ok2):
            await agent.put(t)

        with pytest.raises(RuntimeError) as failure:
            await drain(agent)
        with pytest.raises(TurnTimeoutError):
            await drain(agent)
        assert await values_of(agent) == ["ok again"]

        assert log == [
            ("complete", ok1, StopReason.COMPLETED),
            ("error", bad, failure.value),
            ("complete", bad, StopReason.ERROR),
            ("timeout", slow),
            ("complete", slow, StopReason.TIMEOUT),
            ("complete", ok2, StopReason.COMPLETED),
        ]

    async def test_turn_hooks_fire_before_agent_turn_hooks(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        order: list[str] = []

        @agent.on_complete
        async def agent_complete(turn: Turn, reason: StopReason) -> None:
            order.append("agent")

        turn = Turn("echo", kwargs={"x": 1})

        @turn.on_complete
        async def turn_complete(turn: Turn, reason: StopReason) -> None:
            order.append("turn")

        await agent.put(turn)
        await drain(agent)
        assert order == ["turn", "agent"]

    async def test_hook_on_both_turn_and_agent_fires_once(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        calls: list[StopReason] = []

        @agent.on_complete
        async def complete(turn: Turn, reason: StopReason) -> None:
            calls.append(reason)

        turn = Turn("echo")
        turn.hooks.append(complete)
        await agent.put(turn)
        await drain(agent)
        assert calls == [StopReason.COMPLETED]

    async def test_agent_hook_listed_twice_fires_once(self) -> None:
        agent = Agent("worker", "desc", [make_echo()])
        calls: list[Agent] = []

        @agent.before_turn
        async def before(a: Agent) -> None:
            calls.append(a)

        agent.hooks.append(before)
        await agent.put(Turn("echo"))
        await drain(agent)
        assert calls == [agent]


# --------------------------------------------------------------------------- current turn


class TestCurrentTurn:
    async def test_current_turn_during_and_between_turns(self) -> None:
        inside: list[tuple[Any, Any, Any]] = []

        @tool()
        async def look() -> str:
            me = current_agent()
            assert me is not None
            inside.append((me, me.current_turn, current_turn()))
            return "looked"

        agent = Agent("worker", "desc", [look])
        between: list[Any] = []

        @agent.before_turn
        async def before(a: Agent) -> None:
            between.append(a.current_turn)

        t1, t2 = Turn("look"), Turn("look")
        await agent.put(t1)
        await agent.put(t2)
        in_consumer = [agent.current_turn async for _ in agent.run()]
        assert inside == [(agent, t1, t1), (agent, t2, t2)]
        assert between == [None, None]
        # A coroutine turn is over by the time its value is yielded.
        assert in_consumer == [None, None]
        assert agent.current_turn is None

    async def test_current_turn_while_streaming(self) -> None:
        @tool()
        async def stream():
            yield 1
            yield 2

        agent = Agent("worker", "desc", [stream])
        turn = Turn("stream")
        await agent.put(turn)
        in_consumer = [(agent.current_turn, current_agent()) async for _ in agent.run()]
        # The streaming turn is in flight while its values are consumed, but the consumer
        # itself does not run inside the agent.
        assert in_consumer == [(turn, None), (turn, None)]
        assert agent.current_turn is None

    async def test_current_turn_is_none_after_an_error(self) -> None:
        @tool()
        async def boom() -> None:
            raise ValueError("x")

        agent = Agent("worker", "desc", [boom])
        await agent.put(Turn("boom"))
        with pytest.raises(ValueError):
            await drain(agent)
        assert agent.current_turn is None


# --------------------------------------------------------------------------- registry


class TestAgentRegistry:
    def test_get_and_all(self) -> None:
        echo = make_echo()
        a = Agent("a", "desc", [echo])
        b = Agent("b", "desc", [echo])
        assert AgentRegistry.get("a") is a
        assert AgentRegistry.get("b") is b
        assert AgentRegistry.all() == [a, b]

    def test_get_unknown(self) -> None:
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.get("ghost")
        with pytest.raises(LookupError):
            AgentRegistry.get("ghost")

    def test_unregister(self) -> None:
        echo = make_echo()
        a = Agent("a", "desc", [echo])
        b = Agent("b", "desc", [echo])
        AgentRegistry.unregister("a")
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.get("a")
        assert AgentRegistry.all() == [b]
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.unregister("a")
        # The name is free again.
        again = Agent("a", "desc", [echo])
        assert again is not a
        assert AgentRegistry.get("a") is again

    def test_clear(self) -> None:
        echo = make_echo()
        Agent("a", "desc", [echo])
        Agent("b", "desc", [echo])
        AgentRegistry.clear()
        assert AgentRegistry.all() == []
        with pytest.raises(UnregisteredAgentError):
            AgentRegistry.get("a")
        Agent("a", "desc", [echo])
        assert [x.name for x in AgentRegistry.all()] == ["a"]


async def test_requeue_puts_a_turn_back_first_and_reset_forgets_the_state() -> None:
    from pygents import ContextItem, SafeExecutionError

    @tool()
    async def rq_step(x: int) -> int:
        return x

    @tool()
    async def rq_other(x: int) -> int:
        return x

    agent = Agent("requeue_reset", "re-queues", [rq_step])
    seen: list[Any] = []

    @agent.after_put
    async def counted(*args: Any) -> None:
        seen.append(args)

    await agent.put(Turn(rq_step, kwargs={"x": 1}))
    agent.requeue(Turn(rq_step, kwargs={"x": 0}))
    assert [t.kwargs["x"] for t in agent.turns] == [0, 1]
    assert len(seen) == 1  # requeue fires no put hook
    with pytest.raises(ValueError, match="does not accept tool"):
        agent.requeue(Turn(rq_other, kwargs={"x": 2}))
    with pytest.raises(TypeError):
        agent.requeue("not a turn")  # type: ignore[arg-type]

    await agent.context_queue.append(ContextItem(content="note"))
    await agent.context_pool.add(ContextItem(id="k", description="d", content="v"))
    agent.pause()
    agent.reset()
    assert len(agent) == 0 and not agent.turns
    assert len(agent.context_queue) == 0 and len(agent.context_pool) == 0
    assert not agent.is_paused

    @tool()
    async def rq_resets(x: int) -> int:
        me = current_agent()
        assert me is not None
        with pytest.raises(SafeExecutionError, match="running"):
            me.reset()
        return x

    runner = Agent("requeue_reset_running", "runs", [rq_resets])
    await runner.put(Turn(rq_resets, kwargs={"x": 5}))
    assert [v async for _t, v in runner.run()] == [5]


async def test_a_chain_checks_every_returned_turn_against_the_agents_tools() -> None:
    # The run loop remembers the last tool it accepted for a returned Turn; a returned turn of
    # any other tool is still looked up, and refused when the agent does not have it.
    @tool()
    async def outsider(x: int) -> int:
        return x

    @tool()
    async def hop(left: int) -> Any:
        if left > 0:
            return Turn(hop, kwargs={"left": left - 1})
        return Turn(outsider, kwargs={"x": 7})

    agent = Agent("chain_checks", "hops", [hop])
    await agent.put(Turn(hop, kwargs={"left": 2}))
    ran: list[int] = []

    @agent.after_turn
    async def record(a: Agent, turn: Turn) -> None:
        ran.append(turn.kwargs["left"])

    with pytest.raises(ValueError, match="does not accept tool 'outsider'"):
        async for _turn, _value in agent.run():
            pass
    assert ran == [2, 1]  # the third hop's turn raised as it routed its outsider
    assert not agent.turns

    # Given the tool, the same chain runs it: the lookup, not the memory, decided.
    both = Agent("chain_checks_both", "hops", [hop, outsider])
    await both.put(Turn(hop, kwargs={"left": 2}))
    assert [value async for _turn, value in both.run()] == [7]


async def test_put_without_hooks_checks_what_it_enqueues() -> None:
    @tool()
    async def own_step(x: int) -> int:
        return x

    @tool()
    async def foreign_step(x: int) -> int:
        return x

    class MarkedTurn(Turn[int]):
        __slots__ = ()

    agent = Agent("put_checks", "checks puts", [own_step])
    with pytest.raises(TypeError, match="put\\(\\) takes a Turn, got str"):
        await agent.put("own_step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not accept tool 'foreign_step'"):
        await agent.put(Turn(foreign_step, kwargs={"x": 1}))
    await agent.put(MarkedTurn(own_step, kwargs={"x": 2}))  # a Turn subclass is a Turn
    await agent.put(Turn(own_step, kwargs={"x": 3}))
    assert [(type(t).__name__, t.kwargs["x"]) for t in agent.turns] == [
        ("MarkedTurn", 2),
        ("Turn", 3),
    ]
    assert [value async for _turn, value in agent.run()] == [2, 3]
