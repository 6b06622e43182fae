"""Whole agents: a research flow, error / timeout / cancellation contracts, early exit, hook
failures, concurrency, fairness, long chains and agent-to-agent messaging."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest

from pygents import (
    Agent,
    ContextItem,
    ContextPool,
    ContextQueue,
    StopReason,
    Turn,
    TurnTimeoutError,
    current_agent,
    tool,
)

# --------------------------------------------------------------------------- research flow

CORPUS = {
    "tasks": ("asyncio tasks and cancellation", "Cancelling a task raises CancelledError."),
    "timeouts": ("asyncio timeouts and deadlines", "asyncio.timeout cancels the block."),
    "pasta": ("cooking pasta", "Boil the water first."),
}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower())) - {"and", "the", "a", "how", "do", "i"}


async def test_research_assistant_flow() -> None:
    seen_catalogues: list[str] = []

    @tool()
    async def gather(question: str):
        """Fetch every document, remember the question, then pick."""
        yield ContextItem(content=f"Q: {question}")
        for doc_id in CORPUS:
            yield Turn("fetch", kwargs={"doc_id": doc_id})
        yield Turn("pick", kwargs={"question": question})

    @tool()
    async def fetch(doc_id: str) -> ContextItem:
        await asyncio.sleep(0)
        description, text = CORPUS[doc_id]
        return ContextItem(id=doc_id, description=description, content=text)

    @tool()
    async def pick(question: str, pool: ContextPool) -> Turn:
        catalogue = pool.catalogue()
        seen_catalogues.append(catalogue)
        chosen = []
        for line in catalogue.splitlines():
            match = re.fullmatch(r"- \[(.+?)\] (.*)", line)
            assert match is not None, line
            if words(question) & words(match[2]):
                chosen.append(match[1])
        if not chosen:
            return Turn("give_up")
        return Turn("answer", kwargs={"question": question, "doc_ids": chosen})

    @tool()
    async def answer(question: str, doc_ids: list[str], pool: ContextPool, cq: ContextQueue) -> str:
        asked = [i.content for i in cq if str(i.content).startswith("Q:")]
        text = " ".join(pool[d].content for d in doc_ids)
        reply = f"{text} (from {', '.join(doc_ids)}; asked: {len(asked)})"
        await cq.append(ContextItem(content=f"A: {reply}"))
        return reply

    @tool()
    async def give_up(cq: ContextQueue) -> str:
        await cq.append(ContextItem(content="A: -"))
        return "nothing found"

    agent = Agent(
        "researcher",
        "Answers from a corpus",
        [gather, fetch, pick, answer, give_up],
        context_queue=ContextQueue(limit=10),
        context_pool=ContextPool(limit=10),
    )

    await agent.put(Turn("gather", kwargs={"question": "How do asyncio timeouts work?"}))
    trail = [(turn.tool_name, value) async for turn, value in agent.run()]

    # Everything but the answer was routed (turns enqueued, items stored), so only the
    # answer is yielded.
    assert [name for name, _ in trail] == ["answer"]
    assert seen_catalogues == [
        "- [tasks] asyncio tasks and cancellation\n"
        "- [timeouts] asyncio timeouts and deadlines\n"
        "- [pasta] cooking pasta"
    ]
    final = trail[-1][1]
    assert final == (
        "Cancelling a task raises CancelledError. asyncio.timeout cancels the block. "
        "(from tasks, timeouts; asked: 1)"
    )
    assert [i.id for i in agent.context_pool.items] == ["tasks", "timeouts", "pasta"]
    assert [i.content for i in agent.context_queue.items] == [
        "Q: How do asyncio timeouts work?",
        f"A: {final}",
    ]

    # A second question reuses the same context; an unrelated one gives up.
    await agent.put(Turn("gather", kwargs={"question": "Quantum chromodynamics?"}))
    trail = [(turn.tool_name, value) async for turn, value in agent.run()]
    assert trail[-1] == ("give_up", "nothing found")
    assert len(agent.context_pool) == 3
    assert [i.content for i in agent.context_queue.items][-2:] == [
        "Q: Quantum chromodynamics?",
        "A: -",
    ]
    assert len(agent) == 0
    assert not agent.is_running


# --------------------------------------------------------------------------- errors


async def test_tool_error_mid_queue_propagates_and_leaves_the_rest_queued() -> None:
    raised: list[Exception] = []

    @tool()
    async def work(n: int) -> int:
        await asyncio.sleep(0)
        if n == 1:
            raised.append(LookupError(f"no such record {n}"))
            raise raised[-1]
        return n * 10

    agent = Agent("clerk", "Processes records", [work])
    completes: list[tuple[Turn, StopReason]] = []

    @agent.on_complete
    async def complete(turn: Turn, reason: StopReason) -> None:
        completes.append((turn, reason))

    turns = [Turn("work", kwargs={"n": n}) for n in range(5)]
    for t in turns:
        await agent.put(t)

    seen: list[int] = []
    with pytest.raises(LookupError) as info:
        async for _turn, value in agent.run():
            seen.append(value)

    assert info.value is raised[0]
    notes = getattr(info.value, "__notes__", [])
    assert any("clerk" in note and "work" in note for note in notes), notes
    assert seen == [0]
    assert not agent.is_running
    assert agent.current_turn is None
    assert agent.queue == turns[2:]
    assert turns[1] not in agent.queue
    assert turns[1].metadata.stop_reason is StopReason.ERROR
    assert turns[0].metadata.stop_reason is StopReason.COMPLETED
    assert all(t.metadata.stop_reason is None for t in turns[2:])
    assert completes == [(turns[0], StopReason.COMPLETED), (turns[1], StopReason.ERROR)]

    rest = [(t, v) async for t, v in agent.run()]
    assert rest == [(turns[2], 20), (turns[3], 30), (turns[4], 40)]
    assert len(agent) == 0
    assert not agent.is_running


async def test_streaming_tool_error_propagates_with_note() -> None:
    failure = RuntimeError("stream broke")

    @tool()
    async def stream(fail: bool):
        yield 1
        if fail:
            raise failure
        yield 2

    agent = Agent("streamer", "Streams", [stream])
    bad, good = Turn("stream", kwargs={"fail": True}), Turn("stream", kwargs={"fail": False})
    await agent.put(bad)
    await agent.put(good)
    seen: list[int] = []
    with pytest.raises(RuntimeError) as info:
        async for _turn, value in agent.run():
            seen.append(value)
    assert info.value is failure
    assert any("streamer" in n for n in getattr(failure, "__notes__", []))
    assert seen == [1]
    assert bad.metadata.stop_reason is StopReason.ERROR
    assert agent.queue == [good]
    assert not agent.is_running
    assert [v async for _t, v in agent.run()] == [1, 2]


async def test_timeout_mid_queue_propagates_and_leaves_the_rest_queued() -> None:
    @tool()
    async def work(n: int) -> int:
        if n == 1:
            await asyncio.sleep(5)
        await asyncio.sleep(0)
        return n

    agent = Agent("clerk", "Processes records", [work])
    turns = [Turn("work", kwargs={"n": n}, timeout=0.05 if n == 1 else 5) for n in range(5)]
    for t in turns:
        await agent.put(t)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TurnTimeoutError) as info:
        async for _ in agent.run():
            pass
    assert loop.time() - started < 2
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0, "the timeout left the consumer task marked as cancelling"
    assert isinstance(info.value, TimeoutError)
    assert info.value.turn is turns[1]
    assert any("clerk" in n for n in getattr(info.value, "__notes__", []))
    assert turns[1].metadata.stop_reason is StopReason.TIMEOUT
    assert not agent.is_running
    assert agent.queue == turns[2:]

    assert [v async for _t, v in agent.run()] == [2, 3, 4]
    assert all(t.metadata.stop_reason is StopReason.COMPLETED for t in turns[2:])


async def test_nested_turn_timeout_makes_the_outer_turn_error() -> None:
    @tool()
    async def inner() -> None:
        await asyncio.sleep(5)

    @tool()
    async def outer() -> str:
        await Turn("inner", timeout=0.02).returning()
        return "unreachable"

    agent = Agent("nester", "Nests", [outer, inner])
    outer_turn = Turn("outer", timeout=5)
    await agent.put(outer_turn)
    with pytest.raises(TurnTimeoutError) as info:
        async for _ in agent.run():
            pass
    assert info.value.turn is not outer_turn
    assert info.value.turn.tool_name == "inner"
    assert outer_turn.metadata.stop_reason is StopReason.ERROR
    assert not agent.is_running


# --------------------------------------------------------------------------- cancellation


async def test_cancelling_the_consumer_task_cancels_the_turn() -> None:
    started = asyncio.Event()

    @tool()
    async def slow(n: int) -> int:
        if n == 0:
            started.set()
            await asyncio.sleep(10)
        return n

    agent = Agent("sleeper", "Sleeps", [slow])
    completes: list[tuple[Turn, StopReason]] = []

    @agent.on_complete
    async def complete(turn: Turn, reason: StopReason) -> None:
        completes.append((turn, reason))

    run_ends: list[Any] = []

    @agent.on_run_end
    async def run_end(a: Agent, exc: BaseException | None) -> None:
        run_ends.append(exc)

    turns = [Turn("slow", kwargs={"n": n}, timeout=30) for n in range(3)]
    for t in turns:
        await agent.put(t)

    async def consume() -> None:
        async for _ in agent.run():
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()

    assert turns[0].metadata.stop_reason is StopReason.CANCELLED
    assert completes == [(turns[0], StopReason.CANCELLED)]
    assert len(run_ends) == 1
    assert isinstance(run_ends[0], asyncio.CancelledError)
    assert not agent.is_running
    assert agent.current_turn is None
    assert agent.queue == turns[1:]

    assert [v async for _t, v in agent.run()] == [1, 2]


async def test_cancelling_during_a_streaming_turn() -> None:
    started = asyncio.Event()

    @tool()
    async def ticks():
        yield "first"
        started.set()
        await asyncio.sleep(10)
        yield "never"

    agent = Agent("ticker", "Ticks", [ticks])
    turn = Turn("ticks", timeout=30)
    await agent.put(turn)
    await agent.put(Turn("ticks", timeout=30))
    seen: list[str] = []

    async def consume() -> None:
        async for _t, value in agent.run():
            seen.append(value)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["first"]
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert not agent.is_running
    assert len(agent) == 1


async def test_early_break_with_aclosing_cancels_the_streaming_turn() -> None:
    @tool()
    async def ticks(n: int):
        for i in range(n):
            yield i

    invoked: list[Any] = []

    @ticks.after_invoke
    async def tool_done(values: list[int]) -> None:
        invoked.append(list(values))

    agent = Agent("ticker", "Ticks", [ticks])
    completes: list[StopReason] = []
    run_ends: list[Any] = []

    @agent.on_complete
    async def complete(turn: Turn, reason: StopReason) -> None:
        completes.append(reason)

    @agent.on_run_end
    async def run_end(a: Agent, exc: BaseException | None) -> None:
        run_ends.append(exc)

    first = Turn("ticks", kwargs={"n": 100})
    second = Turn("ticks", kwargs={"n": 2})
    after_runs: list[Any] = []

    @first.after_run
    async def first_ran(turn: Turn, output: Any) -> None:
        after_runs.append(output)

    await agent.put(first)
    await agent.put(second)

    async with contextlib.aclosing(agent.run()) as stream:
        async for _turn, value in stream:
            if value == 5:
                break
    assert not agent.is_running
    assert agent.current_turn is None
    assert first.metadata.stop_reason is StopReason.CANCELLED
    assert first.output == [0, 1, 2, 3, 4, 5]
    assert completes == [StopReason.CANCELLED]
    assert run_ends == [None]
    assert invoked == [[0, 1, 2, 3, 4, 5]]
    assert after_runs == []
    assert agent.queue == [second]

    assert [v async for _t, v in agent.run()] == [0, 1]
    assert invoked[-1] == [0, 1]


async def test_early_break_without_aclosing_is_cleaned_up_soon() -> None:
    @tool()
    async def ticks(n: int):
        for i in range(n):
            yield i

    agent = Agent("ticker", "Ticks", [ticks])
    first = Turn("ticks", kwargs={"n": 100})
    await agent.put(first)
    await agent.put(Turn("ticks", kwargs={"n": 1}))

    async for _turn, value in agent.run():
        if value == 3:
            break
    for _ in range(5):
        if not agent.is_running:
            break
        await asyncio.sleep(0)
    assert not agent.is_running
    assert first.metadata.stop_reason is StopReason.CANCELLED
    assert [v async for _t, v in agent.run()] == [0]


# --------------------------------------------------------------------------- hook failures


async def test_before_turn_veto_keeps_the_turn_queued() -> None:
    @tool()
    async def work(n: int) -> int:
        return n

    agent = Agent("guarded", "Guarded", [work])
    allow = {"count": 1}
    run_ends: list[Any] = []

    @agent.before_turn
    async def budget(a: Agent) -> None:
        if allow["count"] <= 0:
            raise PermissionError("budget exhausted")
        allow["count"] -= 1

    @agent.on_run_end
    async def run_end(a: Agent, exc: BaseException | None) -> None:
        run_ends.append(exc)

    turns = [Turn("work", kwargs={"n": n}) for n in range(3)]
    for t in turns:
        await agent.put(t)
    seen: list[int] = []
    with pytest.raises(PermissionError) as info:
        async for _t, value in agent.run():
            seen.append(value)
    assert seen == [0]
    assert agent.queue == turns[1:]
    assert turns[1].metadata.stop_reason is None
    assert not agent.is_running
    assert run_ends == [info.value]

    allow["count"] = 10
    assert [v async for _t, v in agent.run()] == [1, 2]


async def test_after_turn_hook_exception_propagates() -> None:
    @tool()
    async def work(n: int) -> int:
        return n

    agent = Agent("hooked", "Hooked", [work])

    @agent.after_turn
    async def explode(a: Agent, turn: Turn) -> None:
        raise ArithmeticError("after_turn failed")

    t0, t1 = Turn("work", kwargs={"n": 0}), Turn("work", kwargs={"n": 1})
    await agent.put(t0)
    await agent.put(t1)
    seen: list[int] = []
    with pytest.raises(ArithmeticError, match="after_turn failed"):
        async for _t, value in agent.run():
            seen.append(value)
    assert seen == [0]
    assert t0.metadata.stop_reason is StopReason.COMPLETED
    assert agent.queue == [t1]
    assert not agent.is_running


async def test_on_turn_value_hook_exception_propagates_before_the_value_is_yielded() -> None:
    @tool()
    async def work(n: int) -> int:
        return n

    agent = Agent("hooked", "Hooked", [work])

    @agent.on_turn_value
    async def explode(a: Agent, turn: Turn, value: Any) -> None:
        if value == 1:
            raise ArithmeticError("bad value")

    for n in range(3):
        await agent.put(Turn("work", kwargs={"n": n}))
    seen: list[int] = []
    with pytest.raises(ArithmeticError):
        async for _t, value in agent.run():
            seen.append(value)
    assert seen == [0]
    assert not agent.is_running
    assert len(agent) == 1


async def test_turn_after_run_hook_exception_makes_the_turn_error() -> None:
    @tool()
    async def work(n: int) -> int:
        return n

    agent = Agent("hooked", "Hooked", [work])
    failing = Turn("work", kwargs={"n": 0})
    later = Turn("work", kwargs={"n": 1})
    completes: list[StopReason] = []

    @failing.after_run
    async def explode(turn: Turn, output: Any) -> None:
        raise ArithmeticError("after_run failed")

    @failing.on_complete
    async def complete(turn: Turn, reason: StopReason) -> None:
        completes.append(reason)

    await agent.put(failing)
    await agent.put(later)
    with pytest.raises(ArithmeticError):
        async for _ in agent.run():
            pass
    assert failing.metadata.stop_reason is StopReason.ERROR
    assert completes == [StopReason.ERROR]
    assert agent.queue == [later]
    assert not agent.is_running


async def test_on_run_start_hook_exception_propagates() -> None:
    @tool()
    async def work() -> str:
        return "ran"

    agent = Agent("hooked", "Hooked", [work])

    @agent.on_run_start
    async def explode(a: Agent) -> None:
        raise ArithmeticError("start failed")

    await agent.put(Turn("work"))
    with pytest.raises(ArithmeticError):
        async for _ in agent.run():
            pass
    assert not agent.is_running
    assert len(agent) == 1


# --------------------------------------------------------------------------- concurrency


async def test_fifty_agents_run_concurrently() -> None:
    chain_length = 4
    starts_per_agent = 3
    wrong_agent: list[tuple[str, str | None]] = []

    @tool()
    async def step(owner: str, start: int, k: int) -> Turn:
        await asyncio.sleep(0)
        me = current_agent()
        if me is None or me.name != owner:
            wrong_agent.append((owner, None if me is None else me.name))
        if k < chain_length:
            return Turn("step", kwargs={"owner": owner, "start": start, "k": k + 1})
        return Turn("tail", kwargs={"owner": owner, "start": start})

    @tool()
    async def tail(owner: str, start: int):
        for part in ("head", "body"):
            await asyncio.sleep(0)
            me = current_agent()
            if me is None or me.name != owner:
                wrong_agent.append((owner, None if me is None else me.name))
            yield (owner, start, part)

    agents = [Agent(f"agent-{i}", "Steps", [step, tail]) for i in range(50)]
    for agent in agents:
        for start in range(starts_per_agent):
            await agent.put(Turn("step", kwargs={"owner": agent.name, "start": start, "k": 0}))

    async def collect(agent: Agent) -> list[Any]:
        return [v async for _t, v in agent.run() if not isinstance(v, Turn)]

    results = await asyncio.wait_for(asyncio.gather(*(collect(a) for a in agents)), 5)

    assert wrong_agent == []
    for agent, got in zip(agents, results, strict=True):
        assert got == [
            (agent.name, s, part) for s in range(starts_per_agent) for part in ("head", "body")
        ]
        assert not agent.is_running
        assert len(agent) == 0


async def test_concurrent_agents_interleave() -> None:
    order: list[str] = []

    @tool()
    async def mark(who: str) -> None:
        order.append(who)

    a = Agent("a", "Marks", [mark])
    b = Agent("b", "Marks", [mark])
    for _ in range(500):
        await a.put(Turn("mark", kwargs={"who": "a"}))
        await b.put(Turn("mark", kwargs={"who": "b"}))

    async def drain(agent: Agent) -> int:
        return sum([1 async for _ in agent.run()])

    counts = await asyncio.wait_for(asyncio.gather(drain(a), drain(b)), 5)
    assert counts == [500, 500]
    assert order.count("a") == 500
    assert order.count("b") == 500
    last_a = len(order) - 1 - order[::-1].index("a")
    first_b = order.index("b")
    assert first_b < last_a, "agent a ran all its turns before agent b started"


async def test_chain_of_a_thousand_returned_turns() -> None:
    @tool()
    async def countdown(n: int) -> int | Turn:
        if n == 0:
            return 0
        return Turn("countdown", kwargs={"n": n - 1})

    agent = Agent("counter", "Counts down", [countdown])
    await agent.put(Turn("countdown", kwargs={"n": 1000}))
    ran: list[int] = []

    @agent.on_turn_value
    async def seen(a: Agent, turn: Turn, value: object) -> None:
        ran.append(turn.kwargs["n"])

    pairs = [(t.kwargs["n"], v) async for t, v in agent.run()]
    # The 1,000 returned turns are routed (not yielded); ON_TURN_VALUE sees every value.
    assert pairs == [(0, 0)]
    assert ran == list(range(1000, -1, -1))
    assert len(agent) == 0


async def test_send_ping_pong_between_two_agents() -> None:
    rounds = 5
    log: list[tuple[str, str, int]] = []

    @tool()
    async def ping(n: int) -> str:
        me = current_agent()
        assert me is not None
        log.append((me.name, "ping", n))
        await me.send("bob", Turn("pong", kwargs={"n": n}))
        return f"ping {n}"

    @tool()
    async def pong(n: int) -> str:
        me = current_agent()
        assert me is not None
        log.append((me.name, "pong", n))
        if n + 1 < rounds:
            await me.send("alice", Turn("ping", kwargs={"n": n + 1}))
        return f"pong {n}"

    alice = Agent("alice", "Pings", [ping])
    bob = Agent("bob", "Pongs", [pong])
    await alice.put(Turn("ping", kwargs={"n": 0}))

    values: list[str] = []
    passes = 0
    while len(alice) or len(bob):
        passes += 1
        assert passes <= 2 * rounds + 2, "ping-pong did not settle"
        values += [v async for _t, v in alice.run()]
        values += [v async for _t, v in bob.run()]

    expected = []
    for n in range(rounds):
        expected += [f"ping {n}", f"pong {n}"]
    assert values == expected
    assert log == [
        (name, kind, n)
        for n in range(rounds)
        for name, kind in (("alice", "ping"), ("bob", "pong"))
    ]
    assert not alice.is_running
    assert not bob.is_running
