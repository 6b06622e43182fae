"""Turn timeouts inside a run, on both of the run loop's paths.

An agent's first two bare turns (no hook, a plain coroutine tool) are stepped by hand and
their timeout is ``asyncio.timeout``; from the third on, in the same run or a later one, the
run loop awaits the tool directly and arms the turn's timeout only once the tool has suspended
(``pygents._turn_run.Watch``, the agent's). Each test runs with the turn under test first for
its agent and after three quick turns, and holds both to the same outcomes: the timeout counts
the tool's time only, each turn has its own, a tool that swallows the cancellation completes,
another cancellation wins over the timeout. The last tests run later one-turn runs, in other
tasks and on other event loops.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import weakref
from typing import Any

import pytest

from pygents import (
    Agent,
    ContextQueue,
    StopReason,
    ToolRegistry,
    Turn,
    TurnTimeoutError,
    current_turn,
    tool,
)


@pytest.fixture(autouse=True)
def _shared_tools(_isolated_registries: None) -> None:
    """The tools most tests run, registered for each test (the registries are per test)."""

    @tool()
    async def quick(n: int) -> int:
        return n

    @tool()
    async def nap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @tool()
    async def hang() -> None:
        await asyncio.sleep(10)


_agents = itertools.count()


def agent_with(*tools: Any) -> Agent:
    """An agent with the shared tools (``quick``, ``nap``, ``hang``) and ``tools``."""
    shared = [ToolRegistry.get(n) for n in ("quick", "nap", "hang")]
    return Agent(f"timeouts_{next(_agents)}", "times turns out", [*shared, *tools])


async def cancel_consumer_in_tool(agent: Agent, entered: asyncio.Event, after: float) -> None:
    """Drain ``agent`` in a task; cancel it ``after`` s into the tool that sets ``entered``."""

    async def consume() -> None:
        async for _ in agent.run():
            pass

    task = asyncio.create_task(consume())
    await entered.wait()
    await asyncio.sleep(after)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def put_warm(agent: Agent, warm: int) -> None:
    for n in range(warm):
        await agent.put(Turn("quick", kwargs={"n": n}))


async def test_a_later_turn_that_hangs_times_out_and_the_rest_stay_queued(warm: int) -> None:
    seen: list[BaseException] = []

    @tool()
    async def hang_seen() -> None:
        try:
            await asyncio.sleep(10)
        except BaseException as exc:
            seen.append(exc)
            raise

    agent = agent_with(hang_seen)
    await put_warm(agent, warm)
    stuck = Turn("hang_seen", timeout=0.05)
    await agent.put(stuck)
    await agent.put(Turn("quick", kwargs={"n": 99}))
    values = []
    started = asyncio.get_running_loop().time()
    with pytest.raises(TurnTimeoutError) as caught:
        async for _, value in agent.run():
            values.append(value)
    assert asyncio.get_running_loop().time() - started < 2
    assert values == list(range(warm))
    error = caught.value
    assert error.turn is stuck
    assert "timed out after 0.05s" in str(error)
    assert stuck.metadata.stop_reason is StopReason.TIMEOUT
    # As asyncio.timeout raises it: from a TimeoutError, raised from the tool's cancellation.
    assert isinstance(error.__cause__, TimeoutError)
    assert isinstance(error.__cause__.__cause__, asyncio.CancelledError)
    assert len(seen) == 1 and seen[0] is error.__cause__.__cause__
    assert [t.tool_name for t in agent.queue] == ["quick"]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timeout's cancellation is undone
    await asyncio.sleep(0.1)  # and nothing is left to cancel this task later


async def test_the_consumers_time_between_values_does_not_count(warm: int) -> None:
    @tool()
    async def brief() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    agent = agent_with(brief)
    await put_warm(agent, warm)
    for _ in range(4):
        await agent.put(Turn("brief", timeout=0.1))  # ten times what each needs
    values = []
    async for _, value in agent.run():
        values.append(value)
        await asyncio.sleep(0.15)  # longer than a turn's timeout, between turns
    assert values == [*range(warm), "ok", "ok", "ok", "ok"]


async def test_each_turn_has_its_own_timeout(warm: int) -> None:
    agent = agent_with()
    await put_warm(agent, warm)
    # Each takes most of its own timeout: a deadline left over from the one before would
    # cut the next one short.
    for _ in range(3):
        await agent.put(Turn("nap", kwargs={"seconds": 0.15}, timeout=0.4))
    values = [value async for _, value in agent.run()]
    assert values == [*range(warm), 0.15, 0.15, 0.15]


async def test_a_shorter_timeout_after_a_longer_one_still_applies(warm: int) -> None:
    agent = agent_with()
    await put_warm(agent, warm)
    await agent.put(Turn("nap", kwargs={"seconds": 0.01}, timeout=60))
    short = Turn("nap", kwargs={"seconds": 5}, timeout=0.05)
    await agent.put(short)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TurnTimeoutError) as caught:
        async for _ in agent.run():
            pass
    assert caught.value.turn is short
    assert asyncio.get_running_loop().time() - started < 2


async def test_a_tool_that_swallows_the_cancellation_completes(warm: int) -> None:
    @tool()
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "late"
        return "never"

    agent = agent_with(stubborn)
    await put_warm(agent, warm)
    turn = Turn("stubborn", timeout=0.05)
    await agent.put(turn)
    values = [value async for _, value in agent.run()]
    assert values == [*range(warm), "late"]
    assert turn.metadata.stop_reason is StopReason.COMPLETED
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.1)  # not cancelled later


async def test_another_cancellation_wins_over_the_timeout(warm: int) -> None:
    # The tool swallows the first cancellation (the caller's) and waits on; its timeout then
    # cancels it again: as with asyncio.timeout, the caller's cancellation propagates.
    entered = asyncio.Event()

    @tool()
    async def deaf() -> None:
        entered.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(10)

    agent = agent_with(deaf)
    await put_warm(agent, warm)
    turn = Turn("deaf", timeout=0.2)
    await agent.put(turn)
    await cancel_consumer_in_tool(agent, entered, after=0.0)
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    assert not agent.is_running


async def test_cancelling_the_consumer_during_a_turn_leaves_no_timer_behind(warm: int) -> None:
    entered = asyncio.Event()

    @tool()
    async def hang_entered() -> None:
        entered.set()
        await asyncio.sleep(10)

    agent = agent_with(hang_entered)
    await put_warm(agent, warm)
    turn = Turn("hang_entered", timeout=0.5)
    await agent.put(turn)
    # 0.05 s in, the tool has suspended: its timer is armed.
    await cancel_consumer_in_tool(agent, entered, after=0.05)
    assert turn.metadata.stop_reason is StopReason.CANCELLED
    await asyncio.sleep(0.6)  # past the turn's deadline: nothing fires at this task
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0


async def test_a_run_driven_from_several_tasks_times_out_in_the_task_of_the_turn(warm: int) -> None:
    agent = agent_with()
    await put_warm(agent, warm)
    await agent.put(Turn("hang", timeout=0.05))
    run = agent.run()
    for _ in range(warm):  # each value from a task of its own
        await asyncio.create_task(anext(run))  # type: ignore[arg-type]
    last = asyncio.create_task(anext(run))  # type: ignore[arg-type]
    with pytest.raises(TurnTimeoutError):
        await last
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0


async def test_concurrent_runs_time_out_their_own_turns(warm: int) -> None:
    agents = []
    for i in range(5):
        agent = agent_with()
        await put_warm(agent, warm)
        # Agent i's turns: two that finish, then one that times out (odd agents) or not.
        await agent.put(Turn("nap", kwargs={"seconds": 0.02}, timeout=0.3))
        await agent.put(Turn("nap", kwargs={"seconds": 0.02}, timeout=0.3))
        await agent.put(Turn("nap", kwargs={"seconds": 2 if i % 2 else 0.02}, timeout=0.3))
        agents.append(agent)

    async def consume(agent: Agent) -> list[Any]:
        return [value async for _, value in agent.run()]

    results = await asyncio.gather(*(consume(a) for a in agents), return_exceptions=True)
    for i, result in enumerate(results):
        if i % 2:
            assert isinstance(result, TurnTimeoutError), result
            assert result.turn.kwargs == {"seconds": 2}
        else:
            assert result == [*range(warm), 0.02, 0.02, 0.02]


async def test_a_turn_may_use_all_of_a_longer_timeout(warm: int) -> None:
    agent = agent_with()
    await put_warm(agent, warm)
    await agent.put(Turn("nap", kwargs={"seconds": 0.01}, timeout=0.05))
    await agent.put(Turn("nap", kwargs={"seconds": 0.3}, timeout=0.6))
    values = [value async for _, value in agent.run()]
    assert values == [*range(warm), 0.01, 0.3]


async def test_a_longer_timeout_after_a_shorter_one_expires_at_its_own_deadline(
    warm: int,
) -> None:
    # The later turn's deadline comes after the timer the earlier one left (one timer serves
    # the agent's turns): it must fire at the later deadline, neither earlier nor never.
    agent = agent_with()
    await put_warm(agent, warm)
    await agent.put(Turn("nap", kwargs={"seconds": 0.01}, timeout=0.05))
    longer = Turn("hang", timeout=0.3)
    await agent.put(longer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TurnTimeoutError) as caught:
        async for _ in agent.run():
            pass
    elapsed = loop.time() - started
    assert caught.value.turn is longer
    assert longer.metadata.stop_reason is StopReason.TIMEOUT
    assert 0.3 <= elapsed < 2


async def test_a_tool_called_through_its_invocation_keeps_its_hooks_inside_the_deadline(
    warm: int,
) -> None:
    # A tool the run loop cannot call bare (a hook, an injected context queue): its hooks
    # run inside the turn's deadline, see the turn as current, and get the injected queue.
    seen: list[Any] = []

    @tool()
    async def injected_nap(seconds: float, memory: ContextQueue | None = None) -> float:
        seen.append(("tool", current_turn(), memory))
        await asyncio.sleep(seconds)
        return seconds

    @injected_nap.before_invoke
    async def slow_before(seconds: float, memory: ContextQueue | None = None) -> None:
        seen.append(("before", current_turn(), memory))
        await asyncio.sleep(seconds)

    agent = agent_with(injected_nap)
    await put_warm(agent, warm)
    ok = Turn("injected_nap", kwargs={"seconds": 0.01}, timeout=1)
    slow = Turn("injected_nap", kwargs={"seconds": 5}, timeout=0.1)
    await agent.put(ok)
    await agent.put(slow)
    with pytest.raises(TurnTimeoutError) as caught:
        async for _ in agent.run():
            pass
    assert caught.value.turn is slow
    assert ok.metadata.stop_reason is StopReason.COMPLETED and ok.output == 0.01
    assert slow.metadata.stop_reason is StopReason.TIMEOUT
    queue = agent.context_queue
    assert seen == [("before", ok, queue), ("tool", ok, queue), ("before", slow, queue)]


async def test_an_error_raised_on_the_timeouts_cancellation_propagates_as_it_is(
    warm: int,
) -> None:
    # As with asyncio.timeout: only the cancellation itself becomes the timeout.
    @tool()
    async def messy() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    agent = agent_with(messy)
    await put_warm(agent, warm)
    turn = Turn("messy", timeout=0.05)
    await agent.put(turn)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        async for _ in agent.run():
            pass
    assert turn.metadata.stop_reason is StopReason.ERROR
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0
    await asyncio.sleep(0.1)


async def test_a_turn_run_by_another_task_before_the_watch_ran_times_out_there(
    warm: int,
) -> None:
    # One task runs a quick turn and hands the run to a task that was ready before the
    # event loop got back to the first one's watch: the hanging turn still times out in the
    # task running it, and nothing cancels the first.
    agent = agent_with()
    await put_warm(agent, warm)
    await agent.put(Turn("quick", kwargs={"n": 7}))
    await agent.put(Turn("hang", timeout=0.05))
    run = agent.run()
    for _ in range(warm):
        await anext(run)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the event loop runs what the turns so far scheduled
    other = asyncio.create_task(anext(run))  # type: ignore[arg-type]  # ready, not started
    _, value = await anext(run)  # type: ignore[misc]  # here, without yielding to the loop
    assert value == 7
    done, _ = await asyncio.wait({other}, timeout=5)  # not awaiting it: a cancel stays here
    assert other in done
    assert isinstance(other.exception(), TurnTimeoutError)
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0


# -- the watch is the agent's, kept from run to run ------------------------------------------


async def one_turn_runs_in_tasks(agent: Agent, runs: int) -> None:
    """``runs`` one-turn runs of ``quick``, each drained by a task of its own, now finished."""

    async def one(n: int) -> None:
        await agent.put(Turn("quick", kwargs={"n": n}))
        assert [value async for _, value in agent.run()] == [n]

    for n in range(runs):
        await asyncio.create_task(one(n))


async def test_a_one_turn_run_after_earlier_runs_times_out_in_its_own_task() -> None:
    # The earlier runs made the agent's watch, for tasks that have finished since; the
    # hanging turn is the first of its run and times out here, as asyncio.timeout would.
    agent = agent_with()
    await one_turn_runs_in_tasks(agent, 3)
    stuck = Turn("hang", timeout=0.05)
    await agent.put(stuck)
    await agent.put(Turn("quick", kwargs={"n": 99}))
    started = asyncio.get_running_loop().time()
    with pytest.raises(TurnTimeoutError) as caught:
        async for _ in agent.run():
            pass
    assert asyncio.get_running_loop().time() - started < 2
    assert caught.value.turn is stuck
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert stuck.metadata.stop_reason is StopReason.TIMEOUT
    assert [t.tool_name for t in agent.queue] == ["quick"]
    me = asyncio.current_task()
    assert me is not None and me.cancelling() == 0
    await asyncio.sleep(0.1)  # nothing is left to cancel this task later


async def test_time_between_runs_does_not_count() -> None:
    @tool()
    async def brief() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    agent = agent_with(brief)
    await one_turn_runs_in_tasks(agent, 3)
    for _ in range(4):
        await agent.put(Turn("brief", timeout=0.1))  # ten times what it needs
        assert [value async for _, value in agent.run()] == ["ok"]
        await asyncio.sleep(0.15)  # longer than the turn's timeout, between runs


def test_runs_on_a_new_event_loop_still_time_out() -> None:
    # asyncio.run twice: the second loop's turns get a watch of that loop (the first one's
    # is closed, and a timer cannot be scheduled on it).
    agent = agent_with()

    async def first() -> None:
        await one_turn_runs_in_tasks(agent, 3)

    async def second() -> None:
        await agent.put(Turn("quick", kwargs={"n": 5}))
        await agent.put(Turn("hang", timeout=0.05))
        values = []
        with pytest.raises(TurnTimeoutError):
            async for _, value in agent.run():
                values.append(value)
        assert values == [5]

    asyncio.run(first())
    asyncio.run(second())
    asyncio.run(second())  # a third loop, after a timeout on the second


async def test_the_agent_keeps_no_task_alive_after_its_runs() -> None:
    agent = agent_with()
    await one_turn_runs_in_tasks(agent, 3)
    # A turn that never suspends (the watch's callback finds nothing to time), then one
    # that does (its timer armed, then settled).
    for turn, expected in (
        (Turn("quick", kwargs={"n": 1}), 1),
        (Turn("nap", kwargs={"seconds": 0.01}), 0.01),
    ):

        async def consume(turn: Turn = turn) -> list[Any]:
            await agent.put(turn)
            return [value async for _, value in agent.run()]

        task = asyncio.create_task(consume())
        assert await task == [expected]
        gone = weakref.ref(task)
        del task
        await asyncio.sleep(0)  # the event loop runs what the run scheduled
        gc.collect()
        assert gone() is None
