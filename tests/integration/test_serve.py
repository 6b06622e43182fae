"""Served agents: waiting for turns, failed turns, stopping (drain or not), cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentHook,
    AgentRegistry,
    HookRegistry,
    SafeExecutionError,
    Service,
    StopReason,
    Turn,
    current_agent,
    current_turn,
    hook,
    serve,
    tool,
)
from pygents.store import CheckpointStore, MemoryStore, SQLiteStore


async def eventually(check: Any) -> None:
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110  # polls what the agents' tasks produce
            await asyncio.sleep(0.001)


async def test_the_services_own_hooks_are_not_the_programs() -> None:
    @tool()
    async def work() -> None:
        pass

    agent = Agent("hooked", "d", [work])
    async with Service([agent], store=MemoryStore()):
        await agent.put(Turn(work))
        # The service fires its AFTER_TURN/ON_PAUSE/AFTER_PUT hooks, but a program asking
        # the registry for its hooks (COMPAT A7) finds only its own.
        assert HookRegistry.get_by_type(AgentHook.AFTER_TURN) is None
        assert HookRegistry.get_by_type(AgentHook.AFTER_PUT) is None
        assert HookRegistry.all() == []

        @hook(AgentHook.AFTER_TURN)
        async def mine(agent: Any, turn: Any) -> None:
            pass

        assert HookRegistry.get_by_type(AgentHook.AFTER_TURN) is mine
        assert HookRegistry.all() == [mine]


async def test_two_served_agents_exchange_1000_turns_with_send() -> None:
    seen: list[tuple[str, int]] = []

    @tool()
    async def ping(n: int) -> None:
        seen.append(("ping", n))
        if n < 1000:
            me = current_agent()
            assert me is not None
            await me.send("pong-agent", Turn("pong", kwargs={"n": n + 1}))

    @tool()
    async def pong(n: int) -> None:
        seen.append(("pong", n))
        if n < 1000:
            me = current_agent()
            assert me is not None
            await me.send("ping-agent", Turn("ping", kwargs={"n": n + 1}))

    a = Agent("ping-agent", "Pings", [ping])
    b = Agent("pong-agent", "Pongs", [pong])
    async with Service([a, b]) as service:
        # Both agents were started before there was any work: they wait, they do not return.
        await asyncio.sleep(0.01)
        assert service.is_serving and a.is_serving and b.is_serving
        await a.put(Turn("ping", kwargs={"n": 1}))
        await eventually(lambda: len(seen) == 1000)
        service.stop(drain=True)
        await service.wait_stopped()
    assert [n for _, n in seen] == list(range(1, 1001))
    assert len(a) == len(b) == 0
    assert not a.is_serving and not a.is_running


async def test_stop_mid_flight_keeps_unfinished_turns_queued_and_a_restart_completes_them() -> None:
    done: list[int] = []

    @tool()
    async def work(n: int) -> None:
        await asyncio.sleep(0.002)
        done.append(n)

    agent = Agent("worker", "Works", [work])
    for n in range(60):
        await agent.put(Turn("work", kwargs={"n": n}))
    service = Service([agent])
    await service.start()
    await eventually(lambda: len(done) >= 10)
    await service.aclose(drain=False)
    assert 10 <= len(done) < 60
    assert [t.kwargs["n"] for t in agent.turns] == list(range(len(done), 60))
    assert agent.current_turn is None

    async with Service([agent]) as again:
        await eventually(lambda: len(done) == 60)
        await again.aclose()
    assert done == list(range(60))
    assert len(agent) == 0


async def test_drain_finishes_everything_agents_send_each_other() -> None:
    done: list[str] = []

    @tool()
    async def relay(hops: int) -> Turn | None:
        done.append(f"relay{hops}")
        me = current_agent()
        assert me is not None
        if hops:
            await me.send("b", Turn("echo", kwargs={"hops": hops - 1}))
        return None

    @tool()
    async def echo(hops: int) -> None:
        done.append(f"echo{hops}")
        if hops:
            me = current_agent()
            assert me is not None
            await me.send("a", Turn("relay", kwargs={"hops": hops - 1}))

    a, b = Agent("a", "", [relay]), Agent("b", "", [echo])
    await a.put(Turn("relay", kwargs={"hops": 9}))
    service = Service([a, b])
    await service.start()
    await service.aclose(drain=True)
    assert len(done) == 10 and len(a) == len(b) == 0


async def test_a_failed_turn_fires_its_hooks_and_the_service_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []

    @tool()
    async def job(n: int) -> int:
        if n == 2:
            raise RuntimeError("boom")
        if n == 4:
            await asyncio.sleep(10)
        done.append(n)
        return n

    agent = Agent("jobs", "", [job])
    errors: list[StopReason | None] = []

    @agent.on_error
    async def failed(turn: Turn, exc: BaseException) -> None:
        errors.append(turn.metadata.stop_reason)

    @agent.on_timeout
    async def timed_out(turn: Turn) -> None:
        errors.append(turn.metadata.stop_reason)

    turns = [Turn("job", kwargs={"n": n}, timeout=0.05 if n == 4 else 5) for n in range(6)]
    for turn in turns:
        await agent.put(turn)
    with caplog.at_level(logging.WARNING, logger="pygents"):
        async with Service([agent]) as service:
            await eventually(lambda: len(done) == 4)
            await service.aclose()
    assert done == [0, 1, 3, 5]
    assert turns[2].metadata.stop_reason is StopReason.ERROR
    assert turns[4].metadata.stop_reason is StopReason.TIMEOUT
    assert errors == [StopReason.ERROR, StopReason.TIMEOUT]
    assert "turn of tool 'job' failed (RuntimeError: boom); serving on" in caplog.text


async def test_on_error_stop_ends_the_service_with_the_error_and_keeps_the_rest_queued() -> None:
    @tool()
    async def fragile(n: int) -> None:
        if n == 1:
            raise ValueError(f"bad {n}")

    agent = Agent("fragile", "", [fragile])
    for n in range(4):
        await agent.put(Turn("fragile", kwargs={"n": n}))
    with pytest.raises(ValueError, match="bad 1"):
        await Service([agent], on_error="stop").serve_forever()
    assert [t.kwargs["n"] for t in agent.turns] == [2, 3]


async def test_an_error_policy_sees_agent_turn_and_error() -> None:
    @tool()
    async def fragile(n: int) -> None:
        if n % 2:
            raise ValueError(f"odd {n}")

    agent = Agent("fragile", "", [fragile])
    for n in range(5):
        await agent.put(Turn("fragile", kwargs={"n": n}))
    calls: list[tuple[str, int, str]] = []

    async def policy(agent: Agent, turn: Turn | None, exc: Exception) -> bool:
        assert turn is not None
        calls.append((agent.name, turn.kwargs["n"], str(exc)))
        return turn.kwargs["n"] < 3  # the second failure stops the service

    with pytest.raises(ValueError, match="odd 3"):
        await Service([agent], on_error=policy).serve_forever()
    assert calls == [("fragile", 1, "odd 1"), ("fragile", 3, "odd 3")]
    assert [t.kwargs["n"] for t in agent.turns] == [4]


async def test_cancellation_queues_the_interrupted_turn_again_with_its_attempt() -> None:
    started = asyncio.Event()
    attempts: list[int] = []

    @tool()
    async def slow(n: int) -> None:
        turn = current_turn()
        assert turn is not None
        attempts.append(turn.metadata.attempt)
        if n == 1 and turn.metadata.attempt == 1:
            started.set()
            await asyncio.sleep(30)

    agent = Agent("slow", "", [slow])
    for n in range(3):
        await agent.put(Turn("slow", kwargs={"n": n}))
    task = asyncio.create_task(serve(agent))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t.kwargs["n"] for t in agent.turns] == [1, 2]
    assert agent.turns[0].metadata.attempt == 2
    assert not agent.is_serving and not agent.is_running

    service = Service([agent])
    await service.start()
    await service.aclose(drain=True)
    assert attempts == [1, 1, 2, 1]


async def test_a_service_whose_turn_swallows_the_cancellation_still_stops() -> None:
    # Python 3.11's asyncio.wait_for() (redis-py sends commands through it) hands a result to
    # a task cancelled just as the awaited operation ends, and drops the CancelledError.
    started = asyncio.Event()
    ran: list[int] = []

    @tool()
    async def stubborn(n: int) -> None:
        ran.append(n)
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # the lost cancellation
            await asyncio.sleep(0.2)

    agent = Agent("stubborn", "", [stubborn])
    for n in range(3):
        await agent.put(Turn("stubborn", kwargs={"n": n}))
    service = Service([agent])
    waiting = asyncio.create_task(service.serve_forever())
    await started.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):  # without the halt it served on: no end
            await waiting
    assert not service.is_serving and not agent.is_running
    assert ran == [0]  # the turn in flight ended; the rest stay queued
    assert [t.kwargs["n"] for t in agent.turns] == [1, 2]


async def test_stop_reaches_an_agent_paused_at_its_gate() -> None:
    @tool()
    async def step(n: int) -> None:
        if n == 0:
            me = current_agent()
            assert me is not None
            me.pause()

    agent = Agent("paused", "", [step])
    for n in range(3):
        await agent.put(Turn("step", kwargs={"n": n}))
    service = Service([agent])
    await service.start()
    await eventually(lambda: agent._resumed is not None)
    await asyncio.wait_for(service.aclose(), 5)
    assert agent.is_paused and [t.kwargs["n"] for t in agent.turns] == [1, 2]


class SlowStore(MemoryStore):
    """Each checkpoint takes a while, as with SQLite: a stop can land while one is written."""

    async def save(self, checkpoint: Any) -> None:
        await asyncio.sleep(0.01)
        await super().save(checkpoint)


def make_store(kind: str, tmp_path: Path) -> CheckpointStore | None:
    stores = {"memory": MemoryStore, "slow": SlowStore}
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "s.db")
    return stores[kind]() if kind in stores else None


@pytest.mark.parametrize("drain", [False, True], ids=["stop", "drain"])
@pytest.mark.parametrize("kind", ["none", "memory", "slow", "sqlite"])
async def test_a_paused_agent_with_a_queued_turn_stops_at_once(
    tmp_path: Path, kind: str, drain: bool
) -> None:
    # The stop lands as the busy period starts (its checkpoint being written), before the
    # run loop reaches the gate: it used to wait there for a resume() forever.
    ran: list[int] = []

    @tool()
    async def work(n: int) -> None:
        ran.append(n)

    agent = Agent("held", "", [work])
    store = make_store(kind, tmp_path)
    service = Service([agent], store=store)
    await service.start()
    agent.pause()
    await agent.put(Turn("work", kwargs={"n": 1}))
    await asyncio.wait_for(service.aclose(drain=drain), 5)
    # Draining does not wait for a paused agent: it stops at its gate, its turns queued.
    assert ran == [] and agent.is_paused and [t.kwargs["n"] for t in agent.turns] == [1]
    if store is not None:
        AgentRegistry.unregister("held")  # a restart: the turn was checkpointed
        again = Agent("held", "", [work])
        async with Service([again], store=store, restore=True) as service:
            assert again.is_paused and [t.kwargs["n"] for t in again.turns] == [1]
            again.resume()
            await service.aclose(drain=True)
        assert ran == [1] and again.turns == []
        await store.aclose()


async def test_a_stop_during_a_busy_periods_checkpoint_starts_no_turn() -> None:
    ran: list[int] = []

    @tool()
    async def work(n: int) -> None:
        ran.append(n)

    class HeldStore(MemoryStore):
        held = asyncio.Event()

        async def save(self, checkpoint: Any) -> None:
            await self.held.wait()
            await super().save(checkpoint)

    agent = Agent("late", "", [work])
    await agent.put(Turn("work", kwargs={"n": 1}))
    store = HeldStore()
    service = Service([agent], store=store)
    await service.start()
    await eventually(lambda: agent in service._busy)  # its first checkpoint is held
    service.stop()
    store.held.set()
    await asyncio.wait_for(service.wait_stopped(), 5)
    assert ran == [] and [t.kwargs["n"] for t in agent.turns] == [1]


async def test_draining_stops_an_agent_that_pauses_itself_at_its_gate() -> None:
    ran: list[int] = []

    @tool()
    async def step(n: int) -> None:
        ran.append(n)
        if n == 0:
            me = current_agent()
            assert me is not None
            me.pause()
            await me.send("helper", Turn("help", kwargs={"n": n}))

    @tool()
    async def help(n: int) -> None:
        ran.append(100 + n)
        await asyncio.sleep(0.01)  # still busy when the paused agent reaches its gate
        me = current_agent()
        assert me is not None
        await me.send("pauser", Turn("step", kwargs={"n": 7}))  # to a paused agent: kept

    pauser = Agent("pauser", "", [step])
    helper = Agent("helper", "", [help])
    for n in range(3):
        await pauser.put(Turn("step", kwargs={"n": n}))
    service = Service([pauser, helper])
    await service.start()
    await asyncio.wait_for(service.aclose(drain=True), 5)
    assert ran == [0, 100]  # the helper's turn was drained; the paused agent's were not
    assert pauser.is_paused and [t.kwargs["n"] for t in pauser.turns] == [1, 2, 7]
    assert not service.is_serving and helper.turns == []


async def test_draining_waits_for_a_paused_agent_resumed_meanwhile() -> None:
    ran: list[int] = []
    started = asyncio.Event()

    @tool()
    async def work(n: int) -> None:
        ran.append(n)

    @tool()
    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.05)

    held = Agent("held", "", [work])
    busy = Agent("busy", "", [slow])
    service = Service([held, busy])
    await service.start()
    held.pause()
    await held.put(Turn("work", kwargs={"n": 1}))
    await busy.put(Turn("slow"))
    await started.wait()
    closing = asyncio.create_task(service.aclose(drain=True))
    await asyncio.sleep(0.01)
    held.resume()  # while the drain still waits for the busy agent
    await asyncio.wait_for(closing, 5)
    assert ran == [1] and held.turns == []


async def test_batches_bound_each_run_and_order_is_kept() -> None:
    runs: list[int] = []
    done: list[int] = []

    @tool()
    async def item(n: int) -> None:
        done.append(n)

    agent = Agent("batched", "", [item])

    @agent.on_run_start
    async def started(agent: Agent) -> None:
        runs.append(len(done))

    for n in range(25):
        await agent.put(Turn("item", kwargs={"n": n}))
    service = Service([agent], batch=10)
    await service.start()
    await service.aclose(drain=True)
    assert done == list(range(25))
    assert runs == [0, 10, 20]


async def test_misuse_is_refused_clearly() -> None:
    @tool()
    async def noop() -> None:
        pass

    agent = Agent("one", "", [noop])
    with pytest.raises(ValueError, match="unique"):
        Service([agent, agent])
    with pytest.raises(ValueError, match="on_error"):
        Service([agent], on_error="retry")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch"):
        Service([agent], batch=0)
    for wrong in ("10", 2.0, True):  # as RedisWorker(batch=...)
        with pytest.raises(TypeError, match="batch must be an int >= 1"):
            Service([agent], batch=wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CheckpointStore"):
        Service([agent], store=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CheckpointStore instance, got <class"):
        Service([agent], store=MemoryStore)  # type: ignore[arg-type]  # the class
    await agent.put(Turn("noop"))  # an agent iterates its turns: once taken for the list
    with pytest.raises(TypeError, match=r"got the agent 'one' itself: pass Service\(\[agent\]\)"):
        Service(agent)  # type: ignore[arg-type]
    agent.reset()
    async with Service([agent]):
        with pytest.raises(SafeExecutionError, match="already running or served"):
            await Service([agent]).start()
    with pytest.raises(SafeExecutionError, match="started already"):
        service = Service([agent])
        await service.start()
        try:
            await service.start()
        finally:
            await service.aclose()


async def test_run_keeps_its_reference_semantics_after_serving() -> None:
    @tool()
    async def double(x: int) -> int:
        return 2 * x

    agent = Agent("doubler", "", [double])
    async with Service([agent]):
        pass
    await agent.put(Turn("double", kwargs={"x": 4}))
    assert [v async for _t, v in agent.run()] == [8]  # returns on an empty queue


async def test_a_failure_before_the_first_turn_is_retried_with_a_pause_not_a_spin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An on_run_start hook that raises fails every busy period before a turn is taken; with
    # on_error="continue" the service began the next one at once, forever (50,000 warnings
    # in 3 s, nothing else in the process ran, stop() never reached).
    calls: list[int] = []

    @tool()
    async def work(n: int) -> None:
        calls.append(n)

    agent = Agent("stuck", "", [work])

    @agent.on_run_start
    async def broken(agent: Agent) -> None:
        raise RuntimeError("hook bug")

    await agent.put(Turn("work", kwargs={"n": 1}))
    ticks = 0

    async def ticking() -> None:  # the rest of the program
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(ticking())
    caplog.set_level(logging.WARNING, logger="pygents")
    service = Service([agent])
    await service.start()
    await asyncio.sleep(0.6)
    failures = [r for r in caplog.records if "hook bug" in r.getMessage()]
    assert 2 <= len(failures) <= 8  # 0.05, 0.1, 0.2, 0.4 s apart
    assert ticks >= 20
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(service.aclose(), 5)
    assert asyncio.get_running_loop().time() - started < 1.0  # the wait ends at stop()
    ticker.cancel()
    assert calls == [] and [t.kwargs for t in agent.turns] == [{"n": 1}]


async def test_serving_an_agent_again_with_its_store_queues_nothing_twice() -> None:
    # The agent object holds what its last checkpoint holds: restoring that checkpoint into
    # it again queued every turn a second time ([2, 3] became [2, 3, 2, 3], all run).
    ran: list[int] = []

    @tool()
    async def work(n: int) -> None:
        ran.append(n)
        if n == 1:
            current = current_agent()
            assert current is not None
            current.pause()

    agent = Agent("again", "", [work])
    store = MemoryStore()
    async with Service([agent], store=store) as service:
        for n in (1, 2, 3):
            await agent.put(Turn("work", kwargs={"n": n}))
        await eventually(lambda: ran == [1] and agent.is_paused)
        await service.aclose()
    await agent.put(Turn("work", kwargs={"n": 4}))  # after the service: in memory only
    agent.resume()
    async with Service([agent], store=store) as service:
        assert [t.kwargs["n"] for t in agent.turns] == [2, 3, 4]
        await service.aclose(drain=True)
    assert ran == [1, 2, 3, 4]

    # After reset() (or in a new process) the store's state is what is restored.
    agent.reset()
    await store.delete("again")
    async with Service([agent], store=store) as service:
        agent.pause()
        await agent.put(Turn("work", kwargs={"n": 5}))
        await service.aclose()
    agent.reset()
    async with Service([agent], store=store) as service:
        assert [t.kwargs["n"] for t in agent.turns] == [5] and agent.is_paused
        await service.aclose()


async def test_a_pause_made_before_start_survives_the_restore() -> None:
    ran: list[int] = []

    @tool()
    async def work(n: int) -> None:
        ran.append(n)

    store = MemoryStore()
    agent = Agent("paused", "", [work])
    async with Service([agent], store=store) as service:
        await service.aclose()  # a checkpoint saying: not paused, nothing queued
    agent.reset()
    agent.pause()
    await agent.put(Turn("work", kwargs={"n": 1}))
    async with Service([agent], store=store) as service:
        await asyncio.sleep(0.05)
        assert agent.is_paused and ran == []
        await service.aclose()
