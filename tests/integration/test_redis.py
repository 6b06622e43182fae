"""pygents.redis in one process against a real redis-server: store, worker, routing, failures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis_server import redis_server

from loopback import free_port
from pygents import (
    Agent,
    AgentRegistry,
    CheckpointStoreError,
    SerializationError,
    Turn,
    current_agent,
    current_turn,
    tool,
)
from pygents.redis import GROUP, LeaseLostError, RedisQueue, RedisStore, RedisWorker
from pygents.redis._queue import encode_turn
from pygents.store import Checkpoint, CheckpointStore


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    yield r
    await r.aclose()


async def wait_for(predicate: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def saved_state(client: aioredis.Redis, name: str, namespace: str = "t") -> dict[str, Any]:
    """The agent state of ``name``'s last checkpoint in Redis (there must be one)."""
    saved = await RedisStore(client, namespace=namespace).load(name)
    assert saved is not None
    state: dict[str, Any] = json.loads(saved.data)["state"]
    return state


async def close_during_a_turn(
    client: aioredis.Redis, agent: Agent, tool_name: str, started: asyncio.Event
) -> tuple[RedisWorker, RedisQueue, asyncio.Task[None]]:
    """Worker "one" serves ``agent``; a turn of ``tool_name`` is sent and, once it has started
    (``started``), ``aclose()`` begins: returned as a task, the agent already being released."""
    name = agent.name
    queue = RedisQueue(client, namespace="t")
    one = RedisWorker(
        [agent], client, namespace="t", name="one", lease_ttl=0.5, prometheus_registry=False
    )
    await one.start()
    await wait_for(lambda: one.owned == [name])
    await queue.send(name, Turn(tool_name))
    await wait_for(started.is_set)
    closing = asyncio.create_task(one.aclose())
    await wait_for(lambda: name in one._owned and one._owned[name].leaving)
    return one, queue, closing


async def test_the_store_keeps_the_highest_seq(client: aioredis.Redis) -> None:
    store = RedisStore(client, namespace="t")
    assert isinstance(store, CheckpointStore)
    assert await store.load("a") is None
    await store.save(Checkpoint("a", 2, b'{"x":2}', 1.5))
    await store.save(Checkpoint("a", 1, b'{"x":1}', 1.0))  # late and older: ignored
    saved = await store.load("a")
    assert saved == Checkpoint("a", 2, b'{"x":2}', 1.5)
    await store.save(Checkpoint("b", 1, b"{}", 2.0))
    assert await store.agents() == ["a", "b"]
    await store.delete("a")
    assert await store.load("a") is None and await store.agents() == ["b"]
    await store.aclose()


async def test_a_save_fenced_by_another_workers_lease_changes_nothing(
    client: aioredis.Redis,
) -> None:
    store = RedisStore(client, namespace="t")
    await client.set("t:{a}:lease", "w2")
    with pytest.raises(LeaseLostError, match="no longer holds the lease of agent 'a'"):
        await store.save_fenced(Checkpoint("a", 1, b"{}", 1.0), worker="w1")
    assert await store.load("a") is None
    assert await store.save_fenced(Checkpoint("a", 1, b"{}", 1.0), worker="w2")


async def test_a_worker_runs_sent_turns_in_order_and_routes_send(
    client: aioredis.Redis,
) -> None:
    seen: list[tuple[str, int]] = []

    @tool()
    async def step(n: int) -> Turn | None:
        me = current_agent()
        assert me is not None
        seen.append((me.name, n))
        if n % 5 == 4:
            await me.send("b", Turn("echo", kwargs={"n": n}))  # to an agent via Redis
            return Turn("step", kwargs={"n": -n})  # a tool-returned turn: stays here
        return None

    @tool()
    async def echo(n: int) -> None:
        seen.append(("b", n))

    a = Agent("a", "steps", [step])
    Agent("b", "echoes", [echo])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [a, AgentRegistry.get("b")],
        client,
        namespace="t",
        name="w1",
        lease_ttl=2.0,
        prometheus_registry=False,
    ) as worker:
        for n in range(20):
            await queue.send("a", Turn("step", kwargs={"n": n}))
        await wait_for(lambda: len(seen) >= 20 + 4 + 4)
        assert worker.owned == ["a", "b"]
    steps = [n for name, n in seen if name == "a" and n >= 0]
    assert steps == list(range(20))
    assert sorted(n for name, n in seen if name == "a" and n < 0) == [-19, -14, -9, -4]
    assert sorted(n for name, n in seen if name == "b") == [4, 9, 14, 19]
    # Everything handed over was acknowledged and removed from the streams.
    assert await queue.depth("a") == 0 and await queue.depth("b") == 0
    state = await saved_state(client, "a")
    assert state["queue"] == [] and state["current_turn"] is None


async def test_a_failing_turn_is_retried_then_dead_lettered(client: aioredis.Redis) -> None:
    attempts: list[int] = []

    @tool()
    async def flaky(n: int) -> None:
        turn = current_turn()
        assert turn is not None
        attempts.append(turn.metadata.attempt)
        raise RuntimeError(f"boom {n}")

    @tool()
    async def fine() -> None:
        attempts.append(0)

    agent = Agent("f", "fails", [flaky, fine])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", lease_ttl=2.0, max_attempts=3, prometheus_registry=False
    ) as worker:
        await queue.send("f", Turn("flaky", kwargs={"n": 7}))
        await queue.send("f", Turn("fine"))
        await wait_for(lambda: len(attempts) == 4)
        await wait_for(lambda: worker.stats()["dead_letters"] == 1)
        assert worker.stats()["redeliveries"] == 2
    assert attempts == [1, 2, 3, 0]  # retried at the head: order kept
    (letter,) = await queue.dead_letters()
    assert (letter.agent, letter.error_type, letter.error, letter.attempts) == (
        "f",
        "RuntimeError",
        "boom 7",
        3,
    )
    assert json.loads(letter.turn)["kwargs"] == {"n": 7}


async def test_a_turn_is_dead_lettered_once_when_checkpoints_overlap(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checkpoint after the last attempt carries the dead letter; the puts of turns
    # delivered meanwhile checkpoint too, and one that overlapped it wrote the dead letter a
    # second time (two identical entries: a replay would run the turn twice). A slow Redis
    # (every checkpoint 50 ms) makes the overlap certain.
    ran: list[str] = []

    @tool()
    async def flaky() -> None:
        ran.append("flaky")
        raise RuntimeError("boom")

    @tool()
    async def fine(n: int) -> None:
        ran.append(f"fine {n}")

    agent = Agent("f", "fails", [flaky, fine])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", lease_ttl=1.5, max_attempts=3, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: worker.owned == ["f"])
        save_fenced = worker.store.save_fenced

        async def slow_save(checkpoint: Checkpoint, **kwargs: Any) -> None:
            await asyncio.sleep(0.05)
            await save_fenced(checkpoint, **kwargs)

        monkeypatch.setattr(worker.store, "save_fenced", slow_save)
        await queue.send("f", Turn("flaky"))
        for n in range(10):  # delivered one by one while the attempts run
            await queue.send("f", Turn("fine", kwargs={"n": n}))
            await asyncio.sleep(0.02)
        await wait_for(lambda: len(ran) == 13)
        await asyncio.sleep(0.3)  # a second dead letter would be written by now
        assert worker.stats()["dead_letters"] == 1
    assert ran.count("flaky") == 3
    assert len(await queue.dead_letters()) == 1


async def test_a_closing_worker_gives_its_leases_back(client: aioredis.Redis) -> None:
    runs: list[tuple[str, int]] = []

    @tool()
    async def work(n: int) -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, n))

    agents = [Agent(f"g{i}", "works", [work]) for i in range(4)]
    queue = RedisQueue(client, namespace="t")
    one = RedisWorker(
        agents, client, namespace="t", name="one", lease_ttl=2.0, prometheus_registry=False
    )
    await one.start()
    with pytest.raises(ValueError, match="one RedisWorker per process"):
        await RedisWorker(
            agents, client, namespace="t", name="x", prometheus_registry=False
        ).start()
    await wait_for(lambda: len(one.owned) == 4)
    for n in range(5):
        for a in agents:
            await queue.send(a.name, Turn("work", kwargs={"n": n}))
    await wait_for(lambda: len(runs) == 20)
    await one.aclose()
    assert await client.keys("t:*:lease") == [] and await client.keys("t:*:owner") == []
    # The next worker finds clean leases: no takeover, the checkpoints carry on.
    async with RedisWorker(
        agents, client, namespace="t", name="two", lease_ttl=2.0, prometheus_registry=False
    ) as two:
        await wait_for(lambda: len(two.owned) == 4)
        for a in agents:
            await queue.send(a.name, Turn("work", kwargs={"n": 5}))
        await wait_for(lambda: len(runs) == 24)
        assert two.stats()["takeovers"] == 0
    for a in agents:
        assert [n for name, n in runs if name == a.name] == list(range(6))


def test_import_pygents_does_not_import_redis() -> None:
    import subprocess
    import sys

    code = "import pygents, sys; assert not {'redis', 'pygents.redis'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_the_worker_metrics_reach_a_prometheus_registry(client: aioredis.Redis) -> None:
    from prometheus_client import CollectorRegistry

    @tool()
    async def slow(n: int) -> None:
        await asyncio.sleep(0.05)

    agent = Agent("m", "measured", [slow])
    registry = CollectorRegistry()
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", lease_ttl=2.0, prefetch=2, prometheus_registry=registry
    ) as worker:
        await wait_for(lambda: worker.owned == ["m"])
        for n in range(20):
            await queue.send("m", Turn("slow", kwargs={"n": n}))
        await wait_for(
            lambda: (
                (registry.get_sample_value("pygents_redis_queue_depth", {"agent": "m"}) or 0) > 0
            )
        )
        assert registry.get_sample_value("pygents_redis_leases_held") == 1.0
        # Counters start at 0 for every agent served, so a rate sees their first event.
        assert registry.get_sample_value("pygents_redis_dead_letters_total", {"agent": "m"}) == 0
        assert registry.get_sample_value("pygents_redis_takeovers_total", {"agent": "m"}) == 0
    assert registry.get_sample_value("pygents_redis_leases_held") is None  # unregistered


class LosesACancellation(aioredis.Redis):
    """A client that loses the cancellation of a task running one given command.

    redis-py sends a command through ``asyncio.wait_for()`` when the connection has a socket
    timeout (5 s by default in redis-py 8); on Python 3.11, a task cancelled just as the send
    completes gets the command's result and no ``CancelledError`` (fixed in 3.12). This client
    does that on every Python, for the next ``command`` after ``arm()``: it calls ``then``
    (which cancels the task), lets the command finish, and returns its result.
    """

    command = ""
    then: Callable[[], object] | None = None
    lost: list[asyncio.Task[Any]]

    def arm(self, command: str, then: Callable[[], object]) -> None:
        self.command, self.then, self.lost = command, then, []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] != self.command:
            return await super().execute_command(*args, **options)
        self.command = ""
        task = asyncio.current_task()
        assert task is not None
        sending = asyncio.ensure_future(super().execute_command(*args, **options))
        assert self.then is not None
        self.then()
        try:
            return await asyncio.shield(sending)
        except asyncio.CancelledError:
            self.lost.append(task)  # the task stays cancelling, as wait_for() leaves it
            return await sending


@pytest.mark.parametrize(
    "command",
    [
        "TIME",  # the lease loop's round starts with it
        "XREADGROUP",  # the reader waits in it
    ],
)
async def test_a_worker_stops_when_a_loop_loses_its_cancellation(
    redis_url: str, command: str
) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("c", "works", [work])
    client = LosesACancellation.from_url(redis_url)
    await client.flushdb()
    queue = RedisQueue(client, namespace="t")
    worker = RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=1.0, prometheus_registry=False
    )
    await worker.start()
    closing: list[asyncio.Task[None]] = []
    try:
        await wait_for(lambda: worker.owned == ["c"])
        await queue.send("c", Turn("work", kwargs={"n": 1}))
        await wait_for(lambda: runs == [1])
        # aclose() starts while the loop is in the command, and cancels it there.
        client.arm(command, lambda: closing.append(asyncio.create_task(worker.aclose())))
        await wait_for(lambda: bool(closing))
        try:
            async with asyncio.timeout(10):
                await closing[0]
        except TimeoutError:
            pytest.fail("aclose() did not end: a loop serves on after losing its cancellation")
        assert [t.get_name() for t in client.lost] == [
            f"pygents redis {'leases' if command == 'TIME' else 'reader'} w1"
        ]
    finally:
        for task in worker._tasks:  # a loop still running (the bug): its next cancel is not lost
            task.cancel()
        await client.aclose()
    # Stopped as usual: the lease given back, the turn's checkpoint kept.
    check = aioredis.Redis.from_url(redis_url)
    assert await check.keys("t:*:lease") == []
    assert (await saved_state(check, "c"))["current_turn"] is None
    await check.aclose()


@pytest.mark.parametrize("noticed", [False, True], ids=["close-first", "lease-round-first"])
async def test_a_worker_stops_when_its_lease_is_lost_during_the_turn_in_flight(
    client: aioredis.Redis, noticed: bool
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    @tool()
    async def slow() -> None:
        started.set()
        await finish.wait()

    agent = Agent("l", "slow", [slow])
    queue = RedisQueue(client, namespace="t")
    worker = RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=1.0, prometheus_registry=False
    )
    await worker.start()
    await wait_for(lambda: worker.owned == ["l"])
    await queue.send("l", Turn("slow"))
    await wait_for(started.is_set)
    # Another worker holds the lease now (this one stalled past it), and this one is asked to
    # stop while the turn is still running: before its lease round sees the loss (aclose()
    # releases the agent), or after (the round is releasing it when aclose() cancels it).
    await client.set(worker.keys.lease("l"), "w2")
    if noticed:
        await asyncio.sleep(1.0)  # three lease rounds
    closing = asyncio.create_task(worker.aclose())
    await asyncio.sleep(0.5)
    finish.set()
    async with asyncio.timeout(10):
        await closing
    assert await client.get(worker.keys.lease("l")) == b"w2"  # not given back: not its own
    # The checkpoint still holds the turn (a save after the lease was lost is refused), so the
    # next owner runs it.
    state = await saved_state(client, "l")
    held = [state["current_turn"], *state["queue"]]
    assert [t["tool_name"] for t in held if t is not None] == ["slow"]


async def test_a_worker_stops_when_redis_is_gone() -> None:
    started = asyncio.Event()

    @tool()
    async def work() -> None:
        started.set()

    agent = Agent("u", "works", [work])
    with redis_server() as url:
        worker = RedisWorker(
            [agent], url, namespace="t", name="w1", lease_ttl=1.0, prometheus_registry=False
        )
        await worker.start()
        await wait_for(lambda: worker.owned == ["u"])
        queue = RedisQueue(url, namespace="t")
        await queue.send("u", Turn("work"))
        await queue.aclose()
        await wait_for(started.is_set)
    # The server is stopped: no lease can be renewed or given back, no checkpoint written.
    async with asyncio.timeout(30):
        await worker.aclose()
    assert worker.owned == []


async def test_a_worker_started_before_redis_serves_once_redis_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # serve_forever() retries starting, as a running worker retries when Redis goes away
    # (it raised the client's ConnectionError and the process ended).
    ran: list[int] = []

    @tool()
    async def work(n: int) -> None:
        ran.append(n)

    agent = Agent("u", "works", [work])
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    worker = RedisWorker(
        [agent], url, namespace="t", name="w1", lease_ttl=1.0, prometheus_registry=False
    )
    serving = asyncio.create_task(worker.serve_forever())
    try:
        await wait_for(lambda: "cannot reach Redis" in caplog.text)
        assert not serving.done()
        with redis_server(port):
            queue = RedisQueue(url, namespace="t")
            await queue.send("u", Turn("work", kwargs={"n": 1}))
            await queue.aclose()
            await wait_for(lambda: ran == [1], within=20)
            await worker.aclose()
        await asyncio.wait_for(serving, 10)
    finally:
        serving.cancel()


async def read_as_ghost(
    client: aioredis.Redis, queue: RedisQueue, agent: str, read: list[Turn], later: list[Turn]
) -> None:
    """Append ``read`` to the agent's stream and read it as consumer ``ghost``, then ``later``.

    One transaction: no worker's blocked read is served in between, so the ``read`` entries
    are pending under ``ghost`` (a worker that read them as it lost or gave up the agent),
    and the ``later`` ones go to the owner's reader afterwards.
    """
    stream = queue.keys.stream(agent)
    async with client.pipeline(transaction=True) as pipe:
        for turn in read:
            pipe.xadd(stream, {"turn": encode_turn(turn)})
        pipe.xreadgroup(GROUP, "ghost", {stream: ">"}, count=100)
        for turn in later:
            pipe.xadd(stream, {"turn": encode_turn(turn)})
        await pipe.execute()


@pytest.mark.parametrize("later", [0, 2], ids=["alone", "before-later-turns"])
async def test_the_owner_runs_entries_left_pending_under_another_consumer(
    client: aioredis.Redis, later: int
) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("p", "works", [work])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await queue.send("p", Turn("work", kwargs={"n": 0}))
        await wait_for(lambda: runs == [0])  # the agent is served: its takeover claim is done
        await read_as_ghost(
            client,
            queue,
            "p",
            [Turn("work", kwargs={"n": n}) for n in (1, 2, 3)],
            [Turn("work", kwargs={"n": n}) for n in range(4, 4 + later)],
        )
        # Within a couple of lease rounds (0.2 s each), not at some later takeover.
        await wait_for(lambda: len(runs) == 4 + later, within=2.0)
        await asyncio.sleep(0.5)  # nothing runs twice
        assert worker.stats()["redeliveries"] == 3
    # In stream order: the claimed entries before the ones sent after them.
    assert runs == list(range(4 + later))
    assert (await client.xpending(queue.keys.stream("p"), GROUP))["pending"] == 0
    assert await queue.depth("p") == 0


async def test_a_worker_that_lost_the_lease_claims_and_hands_over_nothing(
    client: aioredis.Redis,
) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("q", "works", [work])
    queue = RedisQueue(client, namespace="t")
    stream = queue.keys.stream("q")
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await queue.send("q", Turn("work", kwargs={"n": 0}))
        await wait_for(lambda: runs == [0])
        # w2 holds the lease now; w1 notices at its next lease round (within 0.2 s). Until
        # then its claims are refused by the fence, and what it reads it leaves to w2.
        await client.set(worker.keys.lease("q"), "w2", px=60_000)
        await read_as_ghost(
            client, queue, "q", [Turn("work", kwargs={"n": 1})], [Turn("work", kwargs={"n": 2})]
        )
        await wait_for(lambda: worker.owned == [])
        await asyncio.sleep(0.3)
    assert runs == [0]
    assert await client.xlen(stream) == 2  # both still there for w2
    pending = await client.xpending_range(stream, GROUP, "-", "+", 10)
    assert decode(pending[0]["consumer"]) == "ghost"  # n=1: not taken from the other reader
    assert {decode(p["consumer"]) for p in pending[1:]} <= {"w1"}  # n=2, if w1 read it


class HoldsARead(aioredis.Redis):
    """A client whose next ``XREADGROUP`` over a given stream blocks for 30 s (not 0.2 s).

    The reader then waits in Redis, over every stream of the agents it owned when the read
    began, while the worker gives one of those agents up and another worker takes it.
    """

    stream = ""
    holding = False
    returned: Any = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] != "XREADGROUP" or self.stream not in args:
            return await super().execute_command(*args, **options)
        self.stream = ""
        block = args.index(b"BLOCK")
        args = (*args[:block], b"BLOCK", 30_000, *args[block + 2 :])
        self.holding = True
        self.returned = await super().execute_command(*args, **options)
        return self.returned


@pytest.mark.timeout(60)
async def test_entries_read_by_a_worker_giving_an_agent_up_run_at_the_next_owner(
    redis_url: str, tmp_path: Any
) -> None:
    runs: list[tuple[str, int]] = []

    @tool()
    async def step(n: int) -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, n))

    @tool()
    async def tail(n: int) -> None: ...

    @tool()
    async def ping(n: int) -> None: ...

    names = [f"agent-{i:03d}" for i in range(4)]
    agents = [Agent(name, "works", [step, tail, ping]) for name in names]
    client = HoldsARead.from_url(redis_url)
    await client.flushdb()
    queue = RedisQueue(client, tracer_provider=False)
    moved = queue.keys.stream("agent-003")  # w0 gives agent-002 and agent-003 up to w1
    w0 = RedisWorker(agents, client, name="w0", lease_ttl=1.0, prometheus_registry=False)
    await w0.start()
    log = tmp_path / "w1.jsonl"
    try:
        for name in names:
            await queue.send(name, Turn("step", kwargs={"n": 0}))
        await wait_for(lambda: len(runs) == 4)  # w0 serves all four
        client.stream = moved
        await wait_for(lambda: client.holding)  # w0's reader waits in XREADGROUP
        async with worker_process(redis_url, log, "w1", 4, lease_ttl=1.0):
            deadline = asyncio.get_running_loop().time() + 30
            while await client.get(queue.keys.lease("agent-003")) != b"w1":
                assert asyncio.get_running_loop().time() < deadline, "w1 did not take agent-003"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # w1 has claimed what was pending (nothing) and reads
            assert "agent-003" not in w0.owned
            # The read w0 began while it owned agent-003 gets this turn: it was waiting first.
            sent = await queue.send("agent-003", Turn("step", kwargs={"n": 1}))
            await wait_for(lambda: client.returned is not None)
            assert [decode(s) for s, _ in client.returned] == [moved]
            assert [decode(i) for i, _ in client.returned[0][1]] == [sent]
            # w0 no longer serves agent-003 and leaves the entry; w1 claims and runs it.

            def ran() -> list[dict[str, Any]]:
                return [r for r in logged(log) if r["t"] == "step"]

            await wait_for(lambda: bool(ran()), within=5.0)
            await asyncio.sleep(0.5)
            assert [{k: v for k, v in r.items() if k != "ts"} for r in ran()] == [
                {"t": "step", "a": "agent-003", "n": 1, "at": 1, "w": "w1"}
            ]
            assert ("agent-003", 1) not in runs
            deadline = asyncio.get_running_loop().time() + 5
            while (await client.xpending(moved, GROUP))["pending"]:
                assert asyncio.get_running_loop().time() < deadline, "left pending"
                await asyncio.sleep(0.05)
    finally:
        await w0.aclose()
        await client.aclose()


def decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- a turn longer than the lease: releases do not stop renewals ---------------------------------

WORKER = __file__.rsplit("/", 1)[0] + "/redis_worker.py"


@contextlib.asynccontextmanager
async def worker_process(
    url: str, log: Any, name: str, agents: int, lease_ttl: float
) -> AsyncIterator[None]:
    """Another worker (``redis_worker.py``) serving ``agents`` agents, stopped with SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        url,
        str(log),
        name,
        str(agents),
        f"--lease-ttl={lease_ttl}",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_for(lambda: any(r["t"] == "ready" for r in logged(log)), within=30)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def logged(log: Any) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


async def watch_lease(client: aioredis.Redis, key: str, seen: list[Any]) -> None:
    """Append the lease's value every 20 ms (until cancelled)."""
    while True:
        seen.append(await client.get(key))
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_giving_an_agent_up_during_a_long_turn_keeps_the_other_leases(
    redis_url: str, tmp_path: Any
) -> None:
    runs: list[tuple[str, int]] = []
    started, finish = asyncio.Event(), asyncio.Event()

    @tool()
    async def step(n: int) -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, n))

    @tool()
    async def slow() -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, -1))
        started.set()
        await finish.wait()

    keep, move = "agent-000", "agent-001"  # w0 gives up the last of its names: agent-001
    agents = [Agent(n, "works", [step, slow]) for n in (keep, move)]
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    queue = RedisQueue(client, tracer_provider=False)
    w0 = RedisWorker(agents, client, name="w0", lease_ttl=0.5, prometheus_registry=False)
    await w0.start()
    log = tmp_path / "w1.jsonl"
    seen: list[Any] = []
    watching: asyncio.Task[None] | None = None
    try:
        await wait_for(lambda: w0.owned == [keep, move])
        await queue.send(keep, Turn("step", kwargs={"n": 0}))
        await queue.send(move, Turn("slow"))
        await wait_for(lambda: started.is_set() and (keep, 0) in runs)
        watching = asyncio.create_task(watch_lease(client, queue.keys.lease(keep), seen))
        # w1 joins: w0's share is one agent, and it gives agent-001 up while its turn runs.
        async with worker_process(redis_url, log, "w1", 2, 0.5):
            await wait_for(lambda: move in w0._owned and w0._owned[move].leaving, within=20)
            # The turn goes on for four leases; agent-000 is served here all along.
            for n in range(1, 21):
                await queue.send(keep, Turn("step", kwargs={"n": n}))
                await asyncio.sleep(0.1)
            await wait_for(lambda: [n for a, n in runs if a == keep] == list(range(21)))
            assert w0.owned == [keep, move]  # agent-001 still here, finishing its turn
            finish.set()
            deadline = asyncio.get_running_loop().time() + 10
            while await client.get(queue.keys.lease(move)) != b"w1":  # given back, then taken
                assert asyncio.get_running_loop().time() < deadline, "w1 did not take agent-001"
                await asyncio.sleep(0.05)
            assert w0.owned == [keep]
            await asyncio.sleep(0.5)
    finally:
        if watching is not None:
            watching.cancel()
        await w0.aclose()
        await client.aclose()
    assert seen and set(seen) == {b"w0"}  # agent-000's lease never expired
    assert [n for a, n in runs if a == keep] == list(range(21))  # each once, here, in order
    assert runs.count((move, -1)) == 1
    # w1 ran nothing: not the turn of agent-001 (still running here), nor agent-000's.
    assert [r for r in logged(log) if r["t"] in ("step", "slow")] == []


@pytest.mark.timeout(60)
async def test_a_closing_worker_keeps_the_lease_of_a_turn_in_flight_until_it_ends(
    redis_url: str, tmp_path: Any
) -> None:
    runs: list[int] = []
    started, finish = asyncio.Event(), asyncio.Event()

    @tool()
    async def step(n: int) -> None:
        runs.append(n)

    @tool()
    async def slow() -> None:
        runs.append(-1)
        started.set()
        await finish.wait()

    name = "agent-000"
    agent = Agent(name, "works", [step, slow])
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    queue = RedisQueue(client, tracer_provider=False)
    w0 = RedisWorker([agent], client, name="w0", lease_ttl=0.5, prometheus_registry=False)
    await w0.start()
    log = tmp_path / "w1.jsonl"
    try:
        await wait_for(lambda: w0.owned == [name])
        await queue.send(name, Turn("slow"))
        await wait_for(started.is_set)
        # w1 is ready to take the agent the moment its lease is free.
        async with worker_process(redis_url, log, "w1", 1, 0.5):
            await asyncio.sleep(0.5)
            closing = asyncio.create_task(w0.aclose())
            await asyncio.sleep(1.5)  # three leases: still w0's, still running
            assert not closing.done()
            assert await client.get(queue.keys.lease(name)) == b"w0"
            finish.set()
            async with asyncio.timeout(10):
                await closing
            # The checkpoint holds the turn's completion: nothing in flight, nothing queued.
            state = await saved_state(client, name, namespace="pygents")
            assert state["current_turn"] is None and state["queue"] == []
            deadline = asyncio.get_running_loop().time() + 10
            while await client.get(queue.keys.lease(name)) != b"w1":  # given back, then taken
                assert asyncio.get_running_loop().time() < deadline, "w1 did not take the agent"
                await asyncio.sleep(0.05)
            await queue.send(name, Turn("step", kwargs={"n": 1}))
            await wait_for(lambda: any(r["t"] == "step" for r in logged(log)), within=10)
    finally:
        finish.set()
        await w0.aclose()
        await client.aclose()
    assert runs == [-1]  # the long turn ran once, here
    assert [(r["t"], r["w"]) for r in logged(log) if r["t"] in ("step", "slow")] == [("step", "w1")]


async def test_leases_lost_during_long_turns_do_not_stop_the_other_renewals(
    client: aioredis.Redis,
) -> None:
    runs: list[tuple[str, int]] = []
    started: list[str] = []
    finish = asyncio.Event()

    @tool()
    async def step(n: int) -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, n))

    @tool()
    async def slow() -> None:
        me = current_agent()
        assert me is not None
        started.append(me.name)
        await finish.wait()

    agents = [Agent(n, "works", [step, slow]) for n in ("k", "l1", "l2")]
    queue = RedisQueue(client, namespace="t")
    seen: list[Any] = []
    async with RedisWorker(
        agents, client, namespace="t", name="w1", lease_ttl=0.5, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: worker.owned == ["k", "l1", "l2"])
        await queue.send("l1", Turn("slow"))
        await queue.send("l2", Turn("slow"))
        await wait_for(lambda: sorted(started) == ["l1", "l2"])
        watching = asyncio.create_task(watch_lease(client, worker.keys.lease("k"), seen))
        try:
            # Both leases are another worker's now (this one stalled past them, say).
            for lost in ("l1", "l2"):
                await client.set(worker.keys.lease(lost), "w2", px=60_000)
            await wait_for(lambda: all(worker._owned[n].leaving for n in ("l1", "l2")))
            # The two turns go on for three leases; k's lease is renewed, k is served.
            for n in range(15):
                await queue.send("k", Turn("step", kwargs={"n": n}))
                await asyncio.sleep(0.1)
            await wait_for(lambda: len(runs) == 15)
            finish.set()
            await wait_for(lambda: worker.owned == ["k"])
            await asyncio.sleep(0.3)
        finally:
            finish.set()
            watching.cancel()
    assert seen and set(seen) == {b"w1"}
    assert runs == [("k", n) for n in range(15)]
    assert worker.stats()["takeovers"] == 0


async def test_a_turn_failing_as_its_worker_stops_is_retried_by_the_next(
    client: aioredis.Redis,
) -> None:
    attempts: list[int] = []
    started, finish = asyncio.Event(), asyncio.Event()

    @tool()
    async def flaky() -> None:
        turn = current_turn()
        assert turn is not None
        attempts.append(turn.metadata.attempt)
        if turn.metadata.attempt == 1:
            started.set()
            await finish.wait()
            raise RuntimeError("boom")

    agent = Agent("r", "fails once", [flaky])
    _, queue, closing = await close_during_a_turn(client, agent, "flaky", started)
    await asyncio.sleep(0.1)  # the agent's service is told to stop after this turn
    finish.set()
    async with asyncio.timeout(10):
        await closing
    assert attempts == [1]
    # Not dropped: the retry is in the last checkpoint, and the next worker runs it.
    state = await saved_state(client, "r")
    assert [t["metadata"]["attempt"] for t in state["queue"]] == [2]
    async with RedisWorker(
        [agent], client, namespace="t", name="two", lease_ttl=0.5, prometheus_registry=False
    ):
        await wait_for(lambda: attempts == [1, 2])
    assert await queue.dead_letters() == []


async def test_a_redis_that_never_answers_times_a_command_out() -> None:
    from pygents.redis._store import SOCKET_TIMEOUT, connect

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # takes every command, answers none

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # A client made from a URL gets redis-py 8's timeouts, whatever redis-py is installed.
        client, owned = connect(f"redis://127.0.0.1:{port}")
        kwargs = client.connection_pool.connection_kwargs
        assert owned and SOCKET_TIMEOUT == 5.0
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == SOCKET_TIMEOUT
        await client.aclose()
        # A timeout in the URL wins; a command then fails instead of waiting forever.
        store = RedisStore(f"redis://127.0.0.1:{port}?socket_timeout=0.3")
        started = asyncio.get_running_loop().time()
        with pytest.raises(CheckpointStoreError, match="Timeout reading") as failed:
            await store.load("a")
        assert isinstance(failed.value.__cause__, RedisError)
        assert asyncio.get_running_loop().time() - started < 4
        await store.aclose()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_cancelling_aclose_interrupts_the_turn_in_flight_and_the_next_worker_runs_it(
    client: aioredis.Redis,
) -> None:
    # aclose() waits for the turn in flight; cancelled meanwhile, it interrupts the turn, which
    # is queued again (one attempt more) and checkpointed, and stops the worker all the same.
    attempts: list[int] = []
    started = asyncio.Event()

    @tool()
    async def slow() -> str:
        turn = current_turn()
        assert turn is not None
        attempts.append(turn.metadata.attempt)
        if turn.metadata.attempt == 1:
            started.set()
            await asyncio.Event().wait()  # never ends by itself
        return "done"

    agent = Agent("c", "hangs once", [slow])
    one, queue, closing = await close_during_a_turn(client, agent, "slow", started)
    await asyncio.sleep(0.7)  # past a lease: aclose() renews it while it waits
    assert await client.get(one.keys.lease("c")) == b"one"
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await closing
    assert one.owned == [] and not agent.is_running
    async with asyncio.timeout(1):
        await one.aclose()  # stopped: a second call returns at once
    # Not lost: the interrupted turn is in the last checkpoint, queued again.
    state = await saved_state(client, "c")
    assert [(t["tool_name"], t["metadata"]["attempt"]) for t in state["queue"]] == [("slow", 2)]
    # The next worker (once the lease, not given back, expires) runs it to its end, once.
    async with RedisWorker(
        [agent], client, namespace="t", name="two", lease_ttl=0.5, prometheus_registry=False
    ):
        await wait_for(lambda: attempts == [1, 2])
        await asyncio.sleep(0.3)
    assert attempts == [1, 2]
    assert await queue.dead_letters() == []


class SlowClaims(aioredis.Redis):
    """A client whose ``XAUTOCLAIM`` (one per agent a worker takes) waits ``delay`` first:
    taking an agent that slowly is what a loaded worker sees (each of its Redis round trips
    waits for a busy event loop)."""

    delay = 0.0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] == "XAUTOCLAIM":
            await asyncio.sleep(self.delay)
        return await super().execute_command(*args, **options)


async def test_taking_many_agents_slowly_keeps_the_leases_already_taken(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Eight agents taken at 0.15 s each: 1.2 s, two leases of 0.6 s. The leases taken first
    # are renewed meanwhile; none expires, none is lost, nothing is taken twice.
    @tool()
    async def step() -> None: ...

    slow = SlowClaims.from_url(redis_url)
    slow.delay = 0.15
    names = [f"s{i}" for i in range(8)]
    agents = [Agent(n, "works", [step]) for n in names]
    seen: dict[str, list[Any]] = {n: [] for n in names}
    watching: list[asyncio.Task[None]] = []
    try:
        async with RedisWorker(
            agents, slow, namespace="slow", name="w1", lease_ttl=0.6, prometheus_registry=False
        ) as worker:
            keys = {n: worker.keys.lease(n) for n in names}
            watching = [asyncio.create_task(watch_lease(slow, keys[n], seen[n])) for n in names]
            await wait_for(lambda: worker.owned == names, within=10)
            await asyncio.sleep(0.7)  # one more lease: still all held
            assert worker.owned == names
            for n in names:
                taken = seen[n][[v is not None for v in seen[n]].index(True) :]
                assert set(taken) == {b"w1"}, (n, taken)  # never expired once taken
            assert worker.stats()["takeovers"] == 0
    finally:
        for task in watching:
            task.cancel()
        await slow.aclose()
    assert "lost the lease" not in caplog.text


@pytest.mark.parametrize("loss", ["restart", "flushall"])
async def test_a_worker_serves_again_after_redis_lost_its_data(loss: str) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("r", "works", [work])
    with contextlib.ExitStack() as servers:
        url = servers.enter_context(redis_server())
        worker = RedisWorker(
            [agent], url, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
        )
        queue = RedisQueue(url, namespace="t")
        await worker.start()
        try:
            await queue.send("r", Turn("work", kwargs={"n": 0}))
            await wait_for(lambda: runs == [0])
            if loss == "restart":  # no persistence: the same port, nothing in it
                servers.close()
                servers.enter_context(redis_server(int(url.rsplit(":", 1)[1].split("/")[0])))
            else:
                await queue.redis.flushall()
            # The queue still takes the group for made: this send makes a stream without it.
            for _ in range(50):
                with contextlib.suppress(RedisError):  # the old connection, once
                    await queue.send("r", Turn("work", kwargs={"n": 1}))
                    break
            await wait_for(lambda: runs == [0, 1])
            await queue.send("r", Turn("work", kwargs={"n": 2}))
            await wait_for(lambda: runs == [0, 1, 2])
        finally:
            await queue.aclose()
            async with asyncio.timeout(30):
                await worker.aclose()


async def test_a_stream_deleted_under_its_owner_is_read_again(client: aioredis.Redis) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("s", "works", [work])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await queue.send("s", Turn("work", kwargs={"n": 0}))
        await wait_for(lambda: runs == [0])
        await client.delete(queue.keys.stream("s"))  # its group too; the lease is kept
        await queue.send("s", Turn("work", kwargs={"n": 1}))
        await wait_for(lambda: runs == [0, 1])
        assert worker.owned == ["s"]
    assert await queue.depth("s") == 0


@pytest.mark.parametrize("path", ["read", "takeover"])
async def test_an_undecodable_entry_is_dead_lettered_and_serving_goes_on(
    client: aioredis.Redis, path: str
) -> None:
    runs: list[tuple[str, int]] = []

    @tool()
    async def work(n: int) -> None:
        me = current_agent()
        assert me is not None
        runs.append((me.name, n))

    agents = [Agent("a", "works", [work]), Agent("b", "works", [work])]
    queue = RedisQueue(client, namespace="t")
    await queue.ensure_group("a")
    stream = queue.keys.stream("a")
    await client.xadd(stream, {b"turn": b"\xff\xfe{", b"sent_at": b"1.0"})  # not UTF-8
    await queue.send("a", Turn("work", kwargs={"n": 1}))
    await queue.send("b", Turn("work", kwargs={"n": 2}))
    if path == "takeover":  # read by a worker that died: claimed as the agent is taken
        await client.xreadgroup(GROUP, "ghost", {stream: ">"})
    async with RedisWorker(
        agents, client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: sorted(runs) == [("a", 1), ("b", 2)])
        assert worker.stats()["dead_letters"] == 1
        await queue.send("a", Turn("work", kwargs={"n": 3}))
        await wait_for(lambda: len(runs) == 3)
    (letter,) = await queue.dead_letters()
    assert (letter.agent, letter.error_type, letter.turn) == (
        "a",
        "UnicodeDecodeError",
        "\\xff\\xfe{",
    )
    assert letter.fields == {"sent_at": "1.0"}  # the entry's other fields, kept
    ((_, fields),) = await client.xrange(queue.keys.dead)
    assert fields[b"turn"] == b"\xff\xfe{"  # kept as it was sent
    assert await queue.depth("a") == 0
    assert (await client.xpending(stream, GROUP))["pending"] == 0


async def test_an_entry_without_a_turn_keeps_its_fields_in_the_dead_letter(
    client: aioredis.Redis,
) -> None:
    # Another producer's message on the agent's stream: not a turn, dead-lettered; what it
    # carried is kept (it was deleted from the stream with nothing but an empty "turn").
    @tool()
    async def work(n: int) -> None:
        pass

    queue = RedisQueue(client, namespace="t")
    await queue.ensure_group("a")
    await client.xadd(queue.keys.stream("a"), {b"payload": b"order 17", b"blob": b"\xff\x00"})
    async with RedisWorker(
        [Agent("a", "works", [work])], client, namespace="t", name="w1", prometheus_registry=False
    ) as worker:
        await wait_for(lambda: worker.stats()["dead_letters"] == 1)
    (letter,) = await queue.dead_letters()
    assert (letter.agent, letter.error_type, letter.turn) == ("a", "UnicodeDecodeError", "")
    assert letter.fields == {"payload": "order 17", "blob": "\\xff\x00"}
    ((_, fields),) = await client.xrange(queue.keys.dead)
    assert fields[b"entry.blob"] == b"\xff\x00"  # the bytes as they were sent


@pytest.mark.parametrize("constant", ["NaN", "-Infinity"])
async def test_an_entry_that_cannot_be_checkpointed_is_dead_lettered(
    client: aioredis.Redis, constant: str
) -> None:
    # Python's json reads NaN and Infinity, a checkpoint cannot hold them: the put's
    # checkpoint fails, and the entry, which no worker could ever run, is dead-lettered
    # (it stayed pending forever, never run).
    runs: list[int] = []

    @tool()
    async def work(n: Any) -> None:
        runs.append(n)

    agent = Agent("a", "works", [work])
    queue = RedisQueue(client, namespace="t")
    await queue.ensure_group("a")
    stream = queue.keys.stream("a")
    raw = '{"tool_name":"work","kwargs":{"n":%s}}' % constant  # noqa: UP031
    await client.xadd(stream, {"turn": raw})
    await queue.send("a", Turn("work", kwargs={"n": 2}))
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: runs == [2] and worker.stats()["dead_letters"] == 1)
    (letter,) = await queue.dead_letters()
    assert (letter.error_type, letter.turn) == ("SerializationError", raw)
    assert "Out of range float values" in letter.error
    assert await queue.depth("a") == 0
    assert (await client.xpending(stream, GROUP))["pending"] == 0


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1: "one", "1": "uno"}, "has a key that is not a string: 1"),
        ([{"k": {None: 0}}], "has a key that is not a string: None"),
        (float("nan"), "Out of range float"),
        (_nested(100_000), "nested too deeply"),
    ],
    ids=["int-key", "none-key", "nan", "deep"],
)
async def test_send_refuses_what_would_not_arrive_as_it_was_sent(
    client: aioredis.Redis, value: Any, fragment: str
) -> None:
    @tool()
    async def take(v: Any) -> None: ...

    queue = RedisQueue(client, namespace="t")
    with pytest.raises(SerializationError, match="cannot be sent through Redis") as info:
        await queue.send("a", Turn("take", kwargs={"v": value}))
    assert fragment in str(info.value)
    assert await client.xlen(queue.keys.stream("a")) == 0


async def test_a_read_round_that_fails_is_logged_and_its_turns_still_run(
    client: aioredis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("e", "works", [work])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: worker.owned == ["e"] and worker._owned["e"].ready)
        hand_over = worker._hand_over
        failures: list[str] = []

        async def failing(names: list[str], read: dict[str, Any]) -> None:
            if read and not failures:
                failures.append("e")
                raise RuntimeError("a bug")  # after the entry was read: pending under w1
            await hand_over(names, read)

        monkeypatch.setattr(worker, "_hand_over", failing)
        await queue.send("e", Turn("work", kwargs={"n": 0}))
        await wait_for(lambda: failures == ["e"])
        await queue.send("e", Turn("work", kwargs={"n": 1}))
        await wait_for(lambda: runs == [0, 1])
    assert "reading failed" in caplog.text and "RuntimeError: a bug" in caplog.text
    assert (await client.xpending(queue.keys.stream("e"), GROUP))["pending"] == 0


async def test_a_turn_a_before_put_hook_refuses_is_dead_lettered(client: aioredis.Redis) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("h", "works", [work])

    @agent.before_put
    async def refuse(agent: Agent, turn: Turn) -> None:
        if turn.kwargs["n"] < 0:
            raise ValueError(f"refused {turn.kwargs['n']}")

    queue = RedisQueue(client, namespace="t")
    await queue.send("h", Turn("work", kwargs={"n": -1}))
    await queue.send("h", Turn("work", kwargs={"n": 1}))
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: runs == [1])
        await wait_for(lambda: worker.stats()["dead_letters"] == 1)
    (letter,) = await queue.dead_letters()
    assert (letter.agent, letter.error_type, letter.error) == ("h", "ValueError", "refused -1")
    assert json.loads(letter.turn)["kwargs"] == {"n": -1}
    stream = queue.keys.stream("h")
    assert await client.xlen(stream) == 0
    assert (await client.xpending(stream, GROUP))["pending"] == 0


async def test_a_turn_whose_after_put_hook_fails_runs_once_and_is_acknowledged(
    client: aioredis.Redis,
) -> None:
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("k", "works", [work])

    @agent.after_put
    async def fail(agent: Agent, turn: Turn) -> None:
        raise RuntimeError("after_put")

    queue = RedisQueue(client, namespace="t")
    await queue.send("k", Turn("work", kwargs={"n": 1}))
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ):
        await wait_for(lambda: runs == [1])
    assert await queue.dead_letters() == []
    stream = queue.keys.stream("k")
    assert await client.xlen(stream) == 0
    assert (await client.xpending(stream, GROUP))["pending"] == 0


async def test_an_entry_whose_checkpoint_failed_is_not_acknowledged_by_a_later_one(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The put's checkpoint fails once (Redis was briefly unreachable): the service takes the
    # turn out again and stops, and its last checkpoint (Redis answers again) must not
    # acknowledge the entry, which would then never run. It stays pending, and runs once
    # the agent is served again.
    runs: list[int] = []

    @tool()
    async def work(n: int) -> None:
        runs.append(n)

    agent = Agent("k", "works", [work])
    queue = RedisQueue(client, namespace="t")
    async with RedisWorker(
        [agent], client, namespace="t", name="w1", lease_ttl=0.6, prometheus_registry=False
    ) as worker:
        await wait_for(lambda: worker.owned == ["k"])
        save_fenced = worker.store.save_fenced
        failed: list[list[str]] = []

        async def failing_once(checkpoint: Checkpoint, **kwargs: Any) -> None:
            if kwargs.get("acks") and not failed:
                failed.append(kwargs["acks"])
                raise RedisError("Connection reset by peer")
            await save_fenced(checkpoint, **kwargs)

        monkeypatch.setattr(worker.store, "save_fenced", failing_once)
        await queue.send("k", Turn("work", kwargs={"n": 1}))
        await wait_for(lambda: runs == [1])  # after the service stopped, when served again
        await asyncio.sleep(0.3)
        assert runs == [1] and len(failed) == 1
    stream = queue.keys.stream("k")
    assert await client.xlen(stream) == 0
    assert (await client.xpending(stream, GROUP))["pending"] == 0


# -- argument checks: made before connecting, so no server is needed --------------------------

_NOWHERE = "redis://localhost:1"


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"lease_ttl": "x"}, TypeError, "lease_ttl must be a number of seconds > 0"),
        ({"lease_ttl": float("inf")}, ValueError, "lease_ttl must be a finite number"),
        ({"lease_ttl": 0}, ValueError, "lease_ttl must be a finite number of seconds > 0"),
        ({"lease_ttl": 0.0005}, ValueError, "lease_ttl must be at least 0.01 s"),
        ({"batch": 0}, ValueError, "batch must be an int >= 1"),
        ({"batch": "10"}, TypeError, "batch must be an int >= 1"),
        ({"max_attempts": "3"}, TypeError, "max_attempts must be an int >= 1"),
        ({"prefetch": 0}, ValueError, "prefetch must be an int >= 1"),
        ({"namespace": 5}, TypeError, "namespace must be a non-empty string"),
        ({"namespace": ""}, ValueError, "namespace must be a non-empty string"),
        ({"name": 5}, TypeError, "RedisWorker name must be a non-empty string"),
        ({"route_sends": "no"}, TypeError, "route_sends must be True or False"),
    ],
)
def test_worker_arguments_are_checked(kwargs: dict[str, Any], error: type, fragment: str):
    @tool()
    async def noop() -> None: ...

    agent = Agent("checked", "d", [noop])
    with pytest.raises(error, match=fragment):
        RedisWorker([agent], _NOWHERE, prometheus_registry=False, **kwargs)


@pytest.mark.parametrize("agents", [None, "checked", [5], "an agent"])
async def test_worker_agents_are_checked(agents: Any):
    if agents == "an agent":  # not a list: an agent iterates its (queued) turns

        @tool()
        async def noop() -> None: ...

        agents = Agent("lonely", "", [noop])
        await agents.put(Turn("noop"))
    expected = (
        "takes a list of" if isinstance(agents, Agent) else "(takes a list of|serves registered)"
    )
    with pytest.raises(TypeError, match=rf"RedisWorker {expected} agents"):
        RedisWorker(agents, _NOWHERE, prometheus_registry=False)


@pytest.mark.parametrize("cls", [RedisQueue, RedisStore])
def test_queue_and_store_namespaces_are_checked(cls: type):
    with pytest.raises(TypeError, match=rf"{cls.__name__} namespace must be a non-empty string"):
        cls(_NOWHERE, namespace=None)


@pytest.mark.parametrize(("name", "error"), [(None, TypeError), (5, TypeError), ("", ValueError)])
async def test_send_needs_an_agent_name(name: Any, error: type):
    @tool()
    async def noop() -> None: ...

    queue = RedisQueue(_NOWHERE)
    try:
        with pytest.raises(error, match=r"RedisQueue.send\(\): the agent name must be a non-empty"):
            await queue.send(name, Turn("noop"))
    finally:
        await queue.aclose()
