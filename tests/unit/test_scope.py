"""Execution scopes: opened and closed in pairs, current exactly during each step."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import pytest

import pygents
from pygents import (
    Agent,
    ExecutionScope,
    StopReason,
    ToolHook,
    Turn,
    TurnHook,
    TurnTimeoutError,
    add_scope,
    hook,
    remove_scope,
    tool,
)

CURRENT: ContextVar[str | None] = ContextVar("test_scope_current", default=None)


class Recorder(ExecutionScope):
    """Names each execution, makes the name current, and logs every call."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.open: set[str] = set()
        self._n = 0

    def _name(self, what: str) -> str:
        self._n += 1
        name = f"{what}#{self._n}"
        self.open.add(name)
        return name

    def open_run(self, agent: Any) -> str:
        name = self._name(f"run:{agent.name}")
        self.log.append(("open", name))
        return name

    def close_run(self, agent: Any, state: str, error: BaseException | None) -> None:
        self.open.discard(state)
        self.log.append(("close", state, type(error).__name__ if error else None))

    def open_turn(self, turn: Any, agent: Any) -> str:
        name = self._name(f"turn:{turn.tool_name}")
        self.log.append(("open", name, agent.name if agent else None))
        return name

    def close_turn(self, turn: Any, state: str, error: BaseException | None) -> None:
        self.open.discard(state)
        reason = turn.metadata.stop_reason
        self.log.append(("close", state, reason.value, type(error).__name__ if error else None))

    def open_call(self, tool: Any, turn: Any, args: Any, kwargs: Any) -> str:
        name = self._name(f"call:{tool.metadata.name}")
        self.log.append(("open", name, "turn" if turn is not None else "direct", tuple(args)))
        return name

    def close_call(self, tool: Any, state: str, result: Any, error: BaseException | None) -> None:
        self.open.discard(state)
        self.log.append(("close", state, result, type(error).__name__ if error else None))

    def attach(self, state: str) -> Any:
        return CURRENT.set(state)

    def detach(self, token: Any) -> None:
        CURRENT.reset(token)

    def closed(self, prefix: str) -> list[tuple[Any, ...]]:
        return [e for e in self.log if e[0] == "close" and e[1].startswith(prefix)]


@pytest.fixture
def scope() -> Iterator[Recorder]:
    recorder = Recorder()
    add_scope(recorder)
    yield recorder
    remove_scope(recorder)
    assert CURRENT.get() is None
    assert not recorder.open, f"never closed: {recorder.open}"


async def drain(agent: Agent) -> list[Any]:
    return [value async for _turn, value in agent.run()]


def test_registration() -> None:
    recorder = Recorder()
    assert recorder not in pygents.scopes()
    add_scope(recorder)
    add_scope(recorder)  # again: no effect
    assert pygents.scopes().count(recorder) == 1
    remove_scope(recorder)
    remove_scope(recorder)
    assert recorder not in pygents.scopes()
    with pytest.raises(TypeError, match="ExecutionScope"):
        add_scope(object())  # type: ignore[arg-type]


async def test_coroutine_tool_runs_with_its_turn_and_call_current(scope: Recorder) -> None:
    seen: list[str | None] = []

    @tool()
    async def step(n: int) -> int:
        seen.append(CURRENT.get())
        await asyncio.sleep(0)
        seen.append(CURRENT.get())  # still current after a suspension
        return n * 2

    agent = Agent("a", "d", [step])
    await agent.put(Turn(step, kwargs={"n": 2}))
    between: list[str | None] = []
    async for _turn, value in agent.run():
        between.append(CURRENT.get())  # the consumer sees nothing of ours
        assert value == 4
    assert between == [None]
    assert seen[0] is not None and seen[0].startswith("call:step") and seen[0] == seen[1]
    assert [e[:2] for e in scope.log if e[0] == "open"] == [
        ("open", "run:a#1"),
        ("open", "turn:step#2"),
        ("open", "call:step#3"),
    ]
    assert scope.closed("call") == [("close", "call:step#3", 4, None)]
    assert scope.closed("turn") == [("close", "turn:step#2", "completed", None)]
    assert scope.closed("run") == [("close", "run:a#1", None)]
    # Innermost first.
    closes = [e[1] for e in scope.log if e[0] == "close"]
    assert closes == ["call:step#3", "turn:step#2", "run:a#1"]


async def test_streaming_tool_is_current_only_during_its_steps(scope: Recorder) -> None:
    inside: list[str | None] = []

    @tool()
    async def counting(n: int):
        for i in range(n):
            inside.append(CURRENT.get())
            await asyncio.sleep(0)
            yield i

    agent = Agent("s", "d", [counting])
    await agent.put(Turn(counting, kwargs={"n": 3}))
    consumer: list[str | None] = []
    async for _turn, _value in agent.run():
        consumer.append(CURRENT.get())
    assert consumer == [None, None, None]
    assert len(set(inside)) == 1 and inside[0] is not None and inside[0].startswith("call:")
    assert scope.closed("call")[0][2] == [0, 1, 2]


class TurnOnly(Recorder):
    """A recorder whose turn state is all a turn's tool call needs (as the telemetry bridge)."""

    attach_turn_calls = False

    def attach(self, state: str) -> Any:
        self.log.append(("attach", state))
        return super().attach(state)


@pytest.mark.parametrize("kind", ["coroutine", "stream", "hooked coroutine", "hooked stream"])
async def test_a_turn_call_is_not_attached_when_the_scope_says_so(kind: str) -> None:
    """``attach_turn_calls = False``: a turn's tool call is opened and closed, never attached
    (the turn's state is current around its steps); a direct call's state still is."""
    recorder = TurnOnly()
    add_scope(recorder)
    try:
        inside: list[str | None] = []

        if kind.endswith("stream"):

            @tool()
            async def work(n: int):
                for i in range(n):
                    inside.append(CURRENT.get())
                    await asyncio.sleep(0)
                    yield i

        else:

            @tool()
            async def work(n: int) -> int:
                inside.append(CURRENT.get())
                await asyncio.sleep(0)
                inside.append(CURRENT.get())
                return n

        turn = Turn(work, kwargs={"n": 2})
        if kind.startswith("hooked"):

            async def noted(t: Any) -> None:
                pass

            turn.hooks.append(hook(TurnHook.BEFORE_RUN)(noted))  # the hooked path
        agent = Agent("t", "d", [work])
        await agent.put(turn)
        await drain(agent)

        (turn_state,) = [e[1] for e in recorder.log if e[0] == "open" and "turn:" in e[1]]
        (call_state,) = [e[1] for e in recorder.log if e[0] == "open" and "call:" in e[1]]
        assert inside and set(inside) == {turn_state}  # the turn's state, current throughout
        attached = {e[1] for e in recorder.log if e[0] == "attach"}
        assert turn_state in attached and call_state not in attached
        assert recorder.closed("call")[0][2] == ([0, 1] if kind.endswith("stream") else 2)

        # A direct call (no turn) is attached as before.
        recorder.log.clear()
        if kind.endswith("stream"):
            assert [v async for v in work(n=1)] == [0]
        else:
            assert await work(n=1) == 1
        (direct,) = [e[1] for e in recorder.log if e[0] == "open"]
        assert ("attach", direct) in recorder.log
        assert inside[-1] == direct
    finally:
        remove_scope(recorder)
    assert CURRENT.get() is None and not recorder.open


async def test_a_turn_call_is_attached_when_any_scope_opened_for_it_asks(scope: Recorder) -> None:
    quiet = TurnOnly()
    add_scope(quiet)
    try:

        @tool()
        async def work() -> str | None:
            return CURRENT.get()

        agent = Agent("both", "d", [work])
        await agent.put(Turn(work))
        (value,) = await drain(agent)
        (call_state,) = [e[1] for e in quiet.log if e[0] == "open" and "call:" in e[1]]
        # Both scopes' call states were attached: the later one (quiet's) is current.
        assert value == call_state and ("attach", call_state) in quiet.log
    finally:
        remove_scope(quiet)


async def test_turn_hooks_run_with_the_turn_current(scope: Recorder) -> None:
    seen: dict[str, str | None] = {}

    @tool()
    async def work() -> int:
        return 1

    @hook([TurnHook.BEFORE_RUN, TurnHook.AFTER_RUN, TurnHook.ON_COMPLETE])
    async def turn_hooks(turn: Turn, *args: Any) -> None:
        seen[f"turn{sum(k.startswith('turn') for k in seen)}"] = CURRENT.get()

    @hook(ToolHook.BEFORE_INVOKE)
    async def tool_hook(*args: Any, **kwargs: Any) -> None:
        seen["tool"] = CURRENT.get()

    await Turn(work).returning()
    assert set(seen) == {"turn0", "turn1", "turn2", "tool"}
    assert all(v is not None and v.startswith("turn:work") for k, v in seen.items() if k != "tool")
    assert seen["tool"] is not None and seen["tool"].startswith("call:work")


async def test_close_happens_even_when_a_user_hook_raises(scope: Recorder) -> None:
    @tool()
    async def work() -> int:
        return 1

    turn = Turn(work)

    @turn.on_complete
    async def broken(turn: Turn, reason: Any) -> None:
        raise RuntimeError("user hook")

    with pytest.raises(RuntimeError, match="user hook"):
        await turn.returning()
    assert scope.closed("turn") == [("close", "turn:work#1", "completed", None)]


async def test_a_vetoed_call_is_closed_with_the_veto(scope: Recorder) -> None:
    @tool()
    async def guarded(x: int) -> int:
        return x

    @guarded.before_invoke
    async def veto(x: int) -> None:
        raise ValueError("x must be positive")

    with pytest.raises(ValueError, match="positive"):
        await Turn(guarded, args=[-1]).returning()
    assert scope.closed("call") == [("close", "call:guarded#2", None, "ValueError")]
    assert scope.closed("turn") == [("close", "turn:guarded#1", "error", "ValueError")]


async def test_timeout_and_cancellation(scope: Recorder) -> None:
    @tool()
    async def slow() -> int:
        await asyncio.sleep(10)
        return 1

    with pytest.raises(TurnTimeoutError):
        await Turn(slow, timeout=0.01).returning()
    assert scope.closed("call")[-1][3] == "CancelledError"
    assert scope.closed("turn")[-1][2:] == ("timeout", "TurnTimeoutError")

    task = asyncio.create_task(Turn(slow).returning())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert scope.closed("turn")[-1][2:] == ("cancelled", "CancelledError")


async def test_early_break_and_aclose_of_a_stream(scope: Recorder) -> None:
    @tool()
    async def endless():
        i = 0
        while True:
            yield i
            i += 1

    stream = Turn(endless).yielding()
    async for value in stream:
        assert CURRENT.get() is None
        if value == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert scope.closed("turn") == [("close", "turn:endless#1", "cancelled", "GeneratorExit")]
    assert scope.closed("call")[0][2:] == ([0, 1, 2], "GeneratorExit")


async def test_recursion_and_interleaved_streams_get_one_state_each(scope: Recorder) -> None:
    @tool()
    async def fact(n: int) -> int:
        return 1 if n <= 1 else n * await fact(n - 1)

    assert await fact(4) == 24
    calls = [e for e in scope.log if e[0] == "open"]
    assert [e[3] for e in calls] == [(4,), (3,), (2,), (1,)]
    assert {e[2] for e in calls} == {"direct"}
    assert len(scope.closed("call:fact")) == 4

    @tool()
    async def letters(word: str):
        for ch in word:
            yield ch

    first, second = letters("ab"), letters("xy")
    got = [await first.__anext__(), await second.__anext__()]
    got += [await first.__anext__(), await second.__anext__()]
    for s in (first, second):
        with pytest.raises(StopAsyncIteration):
            await s.__anext__()
    assert got == ["a", "x", "b", "y"]
    results = sorted(e[2] for e in scope.closed("call:letters"))
    assert results == [["a", "b"], ["x", "y"]]


async def test_concurrent_agents_see_only_their_own_state(scope: Recorder) -> None:
    mismatches: list[tuple[str, str | None]] = []

    @tool()
    async def who(agent_name: str) -> str:
        for _ in range(3):
            current = CURRENT.get()
            if current is None or not current.startswith("call:who"):
                mismatches.append((agent_name, current))
            await asyncio.sleep(0)
        return agent_name

    agents = [Agent(f"c{i}", "d", [who]) for i in range(50)]
    for agent in agents:
        for _ in range(3):
            await agent.put(Turn(who, kwargs={"agent_name": agent.name}))
    results = await asyncio.gather(*(drain(a) for a in agents))
    assert results == [[a.name] * 3 for a in agents]
    assert mismatches == []
    assert len(scope.closed("turn")) == 150 and len(scope.closed("run")) == 50


async def test_a_raising_scope_is_removed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(ExecutionScope):
        def open_turn(self, turn: Any, agent: Any) -> Any:
            raise RuntimeError("scope bug")

    broken = Broken()
    add_scope(broken)
    try:

        @tool()
        async def fine() -> int:
            return 7

        with caplog.at_level(logging.ERROR, logger="pygents"):
            assert await Turn(fine).returning() == 7
            assert await Turn(fine).returning() == 7
        assert broken not in pygents.scopes()
        errors = [r for r in caplog.records if "open_turn" in r.getMessage()]
        assert len(errors) == 1
    finally:
        remove_scope(broken)


async def test_agent_hooks_run_with_the_run_current(scope: Recorder) -> None:
    from pygents import AgentHook

    seen: list[str | None] = []

    @hook([AgentHook.ON_RUN_START, AgentHook.BEFORE_TURN, AgentHook.ON_RUN_END])
    async def agent_hooks(agent: Agent, *args: Any) -> None:
        seen.append(CURRENT.get())

    @tool()
    async def work() -> int:
        return 1

    agent = Agent("h", "d", [work])
    await agent.put(Turn(work))
    await drain(agent)
    assert len(seen) == 3 and all(s == "run:h#1" for s in seen)


def test_stop_reason_enum_used_by_scopes() -> None:
    assert StopReason.TIMEOUT.value == "timeout"


async def test_a_timeout_in_an_agent_run_closes_the_call_with_the_cancellation(
    scope: Recorder,
) -> None:
    @tool()
    async def slow_in_run() -> int:
        await asyncio.sleep(10)
        return 1

    agent = Agent("scope_timeout", "times out", [slow_in_run])
    await agent.put(Turn(slow_in_run, timeout=0.01))
    with pytest.raises(TurnTimeoutError):
        await drain(agent)
    # The tool saw a cancellation (as when the turn runs on its own), its turn timed out.
    assert scope.closed("call")[-1][3] == "CancelledError"
    assert scope.closed("turn")[-1][2:] == ("timeout", "TurnTimeoutError")


@pytest.mark.parametrize("returns", [None, "token"])
async def test_attach_and_detach_pair_whatever_the_token(returns: str | None) -> None:
    seen: list[Any] = []

    class Tokens(ExecutionScope):
        def open_run(self, agent: Any) -> Any:
            return "run"

        def open_turn(self, turn: Any, agent: Any) -> Any:
            return "turn"

        def attach(self, state: Any) -> Any:
            seen.append(("attach", state))
            return returns

        def detach(self, token: Any) -> None:
            seen.append(("detach", token))

    tokens = Tokens()
    add_scope(tokens)
    try:

        @tool()
        async def paired(x: int) -> int:
            return x

        agent = Agent(f"scope_tokens_{returns}", "pairs", [paired])
        for i in range(2):
            await agent.put(Turn(paired, kwargs={"x": i}))
        assert await drain(agent) == [0, 1]
    finally:
        remove_scope(tokens)
    attaches = [e for e in seen if e[0] == "attach"]
    detaches = [e for e in seen if e[0] == "detach"]
    assert len(attaches) == len(detaches) == 1 + 2 + 2  # run; each turn; the run around 2 yields
    assert {e[1] for e in detaches} == {returns}


async def test_a_scope_whose_attach_raises_is_removed_and_never_detached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detached: list[Any] = []

    class BadAttach(ExecutionScope):
        def open_turn(self, turn: Any, agent: Any) -> Any:
            return "turn"

        def attach(self, state: Any) -> Any:
            raise RuntimeError("attach bug")

        def detach(self, token: Any) -> None:
            detached.append(token)

    bad = BadAttach()
    add_scope(bad)
    try:

        @tool()
        async def survives(x: int) -> int:
            return x

        agent = Agent("scope_bad_attach", "survives", [survives])
        await agent.put(Turn(survives, kwargs={"x": 3}))
        with caplog.at_level(logging.ERROR, logger="pygents"):
            assert await drain(agent) == [3]
        assert bad not in pygents.scopes()
        assert detached == []
        assert any("attach" in r.getMessage() for r in caplog.records)
    finally:
        remove_scope(bad)


class PutWatcher(ExecutionScope):
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def enqueue(self, agent: Agent, turn: Turn) -> None:
        producer = pygents.current_turn()
        self.log.append(
            (
                "enqueue",
                pygents.current_agent() is agent,
                len(agent),
                turn.kwargs,
                None if producer is None else producer.tool_name,
            )
        )


async def test_enqueue_is_called_as_put_adds_the_turn_between_the_put_hooks() -> None:
    log: list[Any] = []
    watcher = PutWatcher(log)

    @tool()
    async def work(n: int) -> int:
        return n

    agent = Agent("watched_puts", "d", [work])

    @agent.before_put
    async def check(a: Agent, turn: Turn) -> None:
        log.append(("before_put", len(a)))
        if turn.kwargs["n"] < 0:
            raise ValueError("refused")

    @agent.after_put
    async def done(a: Agent, turn: Turn) -> None:
        log.append(("after_put", len(a)))

    add_scope(watcher)
    try:
        await agent.put(Turn(work, kwargs={"n": 1}))
        with pytest.raises(ValueError, match="refused"):
            await agent.put(Turn(work, kwargs={"n": -1}))  # vetoed: never added
        agent.requeue(Turn(work, kwargs={"n": 2}))  # a retry: no put, no call
        # Without any put hook too (the agent's are removed), and for a turn a tool returns.
        agent.hooks.clear()

        @tool()
        async def chain(n: int) -> Any:
            return Turn(work, kwargs={"n": n + 10})

        chained = Agent("watched_chain", "d", [chain, work])
        await chained.put(Turn(chain, kwargs={"n": 3}))
        values = [v async for _, v in chained.run()]
    finally:
        remove_scope(watcher)
    assert log == [
        ("before_put", 0),
        ("enqueue", True, 0, {"n": 1}, None),  # in the receiving agent's frame, before it is queued
        ("after_put", 1),
        ("before_put", 1),
        ("enqueue", True, 0, {"n": 3}, None),
        ("enqueue", True, 0, {"n": 13}, "chain"),  # routed: in the producing turn's frame
    ]
    assert values == [13]


class UnframedPutWatcher(PutWatcher):
    enqueue_in_frame = False


async def test_a_scope_that_reads_only_its_arguments_gets_the_put_in_the_callers_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # enqueue_in_frame False: a put made outside the agent's frame switches to it only for a
    # scope that asks (the default) or a put hook; current_turn() is the caller's either way.
    class BrokenFramed(ExecutionScope):
        def enqueue(self, agent: Agent, turn: Turn) -> None:
            raise RuntimeError("scope bug")

    @tool()
    async def job(n: int) -> int:
        return n

    agent = Agent("unframed_puts", "d", [job])
    log: list[Any] = []
    unframed = UnframedPutWatcher(log)
    broken = BrokenFramed()
    add_scope(unframed)
    try:
        await agent.put(Turn(job, kwargs={"n": 1}))  # no switch: the caller's frame
        framed = PutWatcher(log)
        add_scope(framed)
        try:
            await agent.put(Turn(job, kwargs={"n": 2}))  # one scope asks: both in the agent's
        finally:
            remove_scope(framed)
        await agent.put(Turn(job, kwargs={"n": 3}))
        add_scope(broken)  # asks, raises, and is removed: then no switch again
        with caplog.at_level(logging.ERROR, logger="pygents"):
            await agent.put(Turn(job, kwargs={"n": 4}))
        assert broken not in pygents.scopes()
        await agent.put(Turn(job, kwargs={"n": 5}))

        @agent.after_put
        async def noted(a: Agent, turn: Turn) -> None:
            log.append(("after_put", pygents.current_agent() is a))

        await agent.put(Turn(job, kwargs={"n": 6}))  # a put hook: the frame switches
        agent.hooks.clear()

        @tool()
        async def relay(n: int) -> int:
            await agent.put(Turn(job, kwargs={"n": n}))  # from another agent's turn
            return n

        sender = Agent("unframed_sender", "d", [relay])
        await sender.put(Turn(relay, kwargs={"n": 7}))
        assert [v async for _, v in sender.run()] == [7]
    finally:
        remove_scope(unframed)
        remove_scope(broken)
    assert log == [
        ("enqueue", False, 0, {"n": 1}, None),
        ("enqueue", True, 1, {"n": 2}, None),
        ("enqueue", True, 1, {"n": 2}, None),
        ("enqueue", False, 2, {"n": 3}, None),
        ("enqueue", True, 3, {"n": 4}, None),
        ("enqueue", False, 4, {"n": 5}, None),
        ("enqueue", True, 5, {"n": 6}, None),
        ("after_put", True),
        ("enqueue", False, 0, {"n": 7}, None),  # the relay turn, put on the sender
        ("enqueue", False, 6, {"n": 7}, "relay"),  # current_turn() is the sender's turn
    ]
    assert [v async for _, v in agent.run()] == [1, 2, 3, 4, 5, 6, 7]
