"""``RedisWorker``: serve a set of agents from many processes, one owner per agent (a lease).

Per agent, Redis holds: a stream (its inbox), a lease (the owning worker's id, expiring), a
checkpoint (``RedisStore``). A worker keeps about ``ceil(agents / live workers)`` leases,
renewing them every ``lease_ttl / 3``; each owned agent runs in a ``pygents.Service`` of its
own, checkpointed into Redis. Giving an agent up (rebalancing, a lost lease, ``aclose()``) runs
as a task of its own, which waits for the agent's turn in flight: the worker's leases, that
agent's too unless lost, are renewed meanwhile, so a long turn costs no lease. The worker reads
the owned agents' streams with one consumer group (``XREADGROUP``) and hands each turn to its
agent: the checkpoint that holds the turn and the acknowledgement (``XACK`` + ``XDEL``) of its
entry are one atomic script, fenced by the lease, so a turn is either still in the stream or in
the agent's checkpoint, never both or neither. When a lease expires (its worker died), another
worker takes the agent over: it restores the checkpoint (the turn in flight first, one attempt
higher), claims the entries the dead worker had read but not handed over (``XAUTOCLAIM``), and
serves on. A worker that lost an agent's lease while alive, or gave the agent up, may still
read entries of its stream (a read begun before): the owner claims those from the group
(``XCLAIM``, fenced by its lease) every lease round and before it hands over any entry it reads
after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from pygents import (
    Agent,
    AgentRegistry,
    HookRegistry,
    SendRouter,
    Service,
    Turn,
    TurnHook,
    current_agent,
    hook,
    set_send_router,
)
from pygents.errors import SerializationError, is_collection, short_repr
from pygents.store import CHECKPOINT_FORMAT as FORMAT
from pygents.store import Checkpoint

from . import _scripts
from ._keys import GROUP, Keys, check_count, check_name, check_seconds
from ._queue import ENTRY_FIELD, RedisQueue, decode_fields, encode_turn
from ._store import LeaseLostError, RedisStore, connect
from ._telemetry import Telemetry

__all__ = ["RedisWorker"]

_log = logging.getLogger("pygents.redis")
_TAKEOVERS = "pygents.redis.takeovers"
_REDELIVERIES = "pygents.redis.redeliveries"
_DEAD = "pygents.redis.dead_letters"
_CLAIM_COUNT = 1000  # most entries claimed from one other consumer at a time


@dataclass(eq=False)
class _Owned:
    """One agent this worker holds the lease of."""

    agent: Any
    service: Service | None = None
    ready: bool = False  # its stream is read (after restore and claiming)
    leaving: bool = False  # being released (a task of its own): no new turns, lease renewed
    lost: bool = False  # its lease is another worker's (not renewed, not given back)
    handed: list[tuple[str, Turn]] = field(default_factory=list)  # entries put, not yet acked
    dead: list[str] | None = None  # a dead letter for the next checkpoint
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)  # one checkpoint at a time
    watch: asyncio.Task[None] | None = None


class _FencedStore:
    """The ``CheckpointStore`` a worker's per-agent service saves into.

    Every save is fenced by the lease and carries the acknowledgement of the stream entries
    whose turns the checkpoint now holds, and a pending dead letter, in one atomic step.
    """

    def __init__(self, worker: RedisWorker, owned: _Owned) -> None:
        self._worker = worker
        self._owned = owned

    async def save(self, checkpoint: Checkpoint) -> None:
        owned = self._owned
        # Taken before the first await: the checkpoint was encoded just now, so every turn
        # put by then (enqueued_time set) is in it.
        acked = [(i, t) for i, t in owned.handed if t.metadata.enqueued_time is not None]
        dead = owned.dead  # the turn it names is out of this checkpoint
        worker = self._worker
        # One save at a time: two overlapping saves (a turn's end, a put handed over) both
        # carried the pending dead letter, written twice. The one that writes it clears it.
        async with owned.saving:
            if dead is not None and owned.dead is not dead:
                dead = None  # written by the save before this one
            await worker.store.save_fenced(
                checkpoint,
                worker=worker.name,
                acks=[i for i, _ in acked],
                dead_letter=dead or (),
            )
            if dead is not None and owned.dead is dead:
                owned.dead = None
                worker.telemetry.count(_DEAD, owned.agent.name)
        if acked:
            done = {id(t) for _, t in acked}
            owned.handed = [(i, t) for i, t in owned.handed if id(t) not in done]

    async def load(self, agent: str) -> Checkpoint | None:
        return await self._worker.store.load(agent)

    async def delete(self, agent: str) -> None:
        await self._worker.store.delete(agent)

    async def agents(self) -> list[str]:
        return await self._worker.store.agents()

    async def aclose(self) -> None:
        """The worker closes the shared store."""


#: The shortest lease a worker takes (seconds).
_LEAST_TTL = 0.01


def _holds(agent: Any, turn: Turn) -> bool:
    """Whether ``turn`` is ``agent``'s: queued, in flight, or run already."""
    return (
        turn.metadata.start_time is not None
        or agent.current_turn is turn
        or any(t is turn for t in agent.turns)
    )


class RedisWorker:
    """Serve ``agents`` together with other worker processes, coordinated through Redis.

    Every worker is built with the same agents (the same code); each agent is served by one
    worker at a time. Send turns with ``RedisQueue.send()`` from anywhere, or
    ``agent.send()`` from a tool (a worker routes it through Redis); a turn a tool returns
    stays with its agent.

    Args:
        agents: the agents of the deployment (registered ``Agent`` objects, unique names).
        redis: a ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        namespace: the prefix of every key.
        name: this worker's id (consumer name, lease value); default ``host-pid``.
        lease_ttl: seconds a lease lives unless renewed (every ``lease_ttl / 3``); a dead
            worker's agents are taken over after at most this long.
        max_attempts: runs of one turn (failed runs and runs cut by a lost worker) before it
            goes to the dead-letter stream.
        prefetch: most turns handed to one agent's local queue ahead of its run.
        batch: most turns per ``invoke_agent`` span (see ``Service``).
        route_sends: route ``Agent.send()`` to these agents through Redis
            (``pygents.set_send_router``) while the worker runs.
        tracer_provider / meter_provider: None for the global ones; False for none.
        prometheus_registry: where the worker's Prometheus metrics go: None for
            ``prometheus_client.REGISTRY``, a ``CollectorRegistry``, or False.

    Raises:
        TypeError: ``agents`` is not a list of registered agents, or an argument has the
            wrong type (``namespace`` and ``name`` are strings, ``lease_ttl`` a number,
            ``max_attempts``, ``prefetch`` and ``batch`` ints, ``route_sends`` a bool).
        ValueError: names repeat, a name is empty, or a number is out of range
            (``lease_ttl`` finite and at least 0.01 s; ``max_attempts``, ``prefetch``,
            ``batch`` >= 1).
    """

    def __init__(
        self,
        agents: Iterable[Agent],
        redis: aioredis.Redis | str,
        *,
        namespace: str = "pygents",
        name: str | None = None,
        lease_ttl: float = 10.0,
        max_attempts: int = 3,
        prefetch: int = 16,
        batch: int = 100,
        route_sends: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prometheus_registry: Any = None,
    ) -> None:
        # Every argument is checked before connecting: a mistake costs no client.
        given: Any = agents  # checked: callers may pass anything
        if not is_collection(given) or isinstance(given, Agent):  # an agent iterates turns
            raise TypeError(
                f"RedisWorker takes a list of agents, got {short_repr(agents)}: pass "
                f"RedisWorker([agent, ...], redis)"
            )
        self._agents: dict[str, Any] = {}
        for agent in agents:
            agent_name = getattr(agent, "name", None)
            try:
                registered = AgentRegistry.get(agent_name) if isinstance(agent_name, str) else None
            except LookupError:
                registered = None
            if registered is not agent or not isinstance(agent_name, str):
                raise TypeError(f"RedisWorker serves registered agents, got {short_repr(agent)}")
            self._agents[agent_name] = agent
        if not self._agents:
            raise ValueError("RedisWorker needs at least one agent")
        check_name(namespace, "RedisWorker namespace")
        if name is not None:
            check_name(name, "RedisWorker name")
        # A lease renewed every lease_ttl / 3 must outlive a few Redis round trips: below
        # 10 ms a worker loses its own leases faster than it can renew them (and spins).
        lease_ttl = check_seconds(lease_ttl, "RedisWorker lease_ttl", least=_LEAST_TTL)
        check_count(max_attempts, "RedisWorker max_attempts")
        check_count(prefetch, "RedisWorker prefetch")
        check_count(batch, "RedisWorker batch")  # as Service(batch=...)
        if route_sends is not True and route_sends is not False:
            raise TypeError(
                f"RedisWorker route_sends must be True or False, got {short_repr(route_sends)}"
            )
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._redis, self._owns_client = connect(redis)
        self.keys = Keys(namespace)
        self.telemetry = Telemetry(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            prometheus_registry=prometheus_registry,
            client_id=self.name,
            metrics=True,
        )
        # Every counter starts at 0 for every agent this worker may serve: a series born at 1
        # would hide its first event from rate() and increase() (and from the dashboards).
        for agent_name in self._agents:
            for counter in (_TAKEOVERS, _REDELIVERIES, _DEAD):
                self.telemetry.count(counter, agent_name, 0.0)
        self.store = RedisStore(self._redis, namespace=namespace)
        self.queue = RedisQueue(self._redis, namespace=namespace, _telemetry=self.telemetry)
        self._ttl_ms = max(1, int(lease_ttl * 1000))
        self._tick = lease_ttl / 3
        self._max_attempts = max_attempts
        self._prefetch = prefetch
        self._batch = batch
        self._route = route_sends
        self._owned: dict[str, _Owned] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._releases: set[asyncio.Task[None]] = set()
        self._renewed = 0.0  # loop time of the last renewal of the leases held
        self._renew = self._redis.register_script(_scripts.RENEW)
        self._release_script = self._redis.register_script(_scripts.RELEASE)
        self._claim_script = self._redis.register_script(_scripts.CLAIM)
        self._previous_router: SendRouter | None = None
        self._started = False
        self._closing = False
        self._stopped = asyncio.Event()

    def __repr__(self) -> str:
        return f"RedisWorker({self.name!r}, agents={len(self._agents)}, owned={len(self._owned)})"

    # -- public ------------------------------------------------------------------------------

    @property
    def owned(self) -> list[str]:
        """Names of the agents this worker holds the lease of, sorted."""
        return sorted(self._owned)

    def stats(self) -> dict[str, Any]:
        """The worker's counters: leases held, takeovers, redeliveries, dead letters (totals)."""
        counts = self.telemetry.counts
        return {
            "worker": self.name,
            "leases_held": len(self._owned),
            "takeovers": sum(counts[_TAKEOVERS].values()),
            "redeliveries": sum(counts[_REDELIVERIES].values()),
            "dead_letters": sum(counts[_DEAD].values()),
        }

    async def start(self) -> None:
        """Join the workers, route sends, and start taking leases in the background."""
        if self._started:
            raise RuntimeError(f"{self!r} was started already; make a new RedisWorker")
        for other in _WORKERS:
            shared = sorted(set(other._agents) & set(self._agents))
            if shared:
                raise ValueError(
                    f"{self!r} would serve agents {shared[:3]} that {other!r} serves in this "
                    f"process: run one RedisWorker per process (each builds its own agents)"
                )
        self._started = True
        try:
            for agent_name in self._agents:
                await self.queue.ensure_group(agent_name)
            await self._redis.script_load(_scripts.CLAIM)
            await self._heartbeat()
        except BaseException:
            self._started = False  # Redis unreachable: start() may be tried again
            raise
        if self._route:
            self._previous_router = set_send_router(self._route_send)
        _WORKERS.add(self)
        _register_failed_hook()
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name=f"pygents redis leases {self.name}"),
            asyncio.create_task(self._read_loop(), name=f"pygents redis reader {self.name}"),
        ]

    async def serve_forever(self) -> None:
        """Start if needed and serve until ``aclose()`` or cancellation (then close).

        While Redis cannot be reached, starting is retried (logged, every 0.5 s to 5 s), as
        a running worker retries: a worker may start before Redis does. ``start()`` itself
        raises the client's error.
        """
        delay = 0.5
        while not self._started:
            if self._closing:
                await self._stopped.wait()
                return
            try:
                await self.start()
            except (RedisError, OSError) as exc:
                _log.warning(
                    "pygents.redis: worker %s cannot reach Redis (%s: %s); retrying in %.1f s",
                    self.name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(2 * delay, 5.0)
        try:
            await self._stopped.wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop: finish each turn in flight, checkpoint, give the leases back (idempotent).

        The leases are renewed until every agent's turn in flight has ended and its lease
        was given back: a turn longer than ``lease_ttl`` is not taken over and run again.
        """
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        try:
            # No new work: the reader and the lease loop (acquisitions, rebalancing) stop.
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for name in list(self._owned):
                self._leave(name)
            await self._renew_until_released()
            with contextlib.suppress(RedisError):
                await self._redis.zrem(self.keys.workers, self.name)
        finally:
            if self._started:
                if self._route:
                    set_send_router(self._previous_router)
                _WORKERS.discard(self)
                failed = _FAILED_HOOK
                if (
                    not _WORKERS
                    and failed is not None
                    and HookRegistry.lookup(failed.metadata.name) is failed
                ):
                    HookRegistry.unregister(failed)
            self.telemetry.close()
            if self._owns_client:
                with contextlib.suppress(RedisError):
                    await self._redis.aclose()
            self._stopped.set()

    async def __aenter__(self) -> RedisWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sends, failures ---------------------------------------------------------------------

    async def _route_send(self, sender: Any, name: str, turn: Turn) -> bool:
        if name not in self._agents:
            return False
        await self.queue.send(name, turn)
        return True

    def _on_failed(self, owned: _Owned, turn: Turn, exception: BaseException | None) -> None:
        """A turn of an owned agent failed: queue it again, or dead-letter it at max_attempts."""
        agent = owned.agent
        attempt = turn.metadata.attempt
        if attempt < self._max_attempts:
            data = turn.to_dict()
            data.pop("output", None)
            retry = Turn.from_dict(data)
            retry.metadata.attempt = attempt + 1
            agent.requeue(retry)  # in the checkpoint the service saves next
            self.telemetry.count(_REDELIVERIES, agent.name)
            return
        error_type = "TurnTimeoutError" if exception is None else type(exception).__name__
        owned.dead = self._dead_letter(agent.name, turn.to_dict(), error_type, str(exception))

    def _dead_letter(
        self, agent: str, turn: dict[str, Any], error_type: str, error: str
    ) -> list[str]:
        turn.pop("output", None)
        attempts = int(turn.get("metadata", {}).get("attempt", 1))
        return [
            "agent",
            agent,
            "turn",
            json.dumps(turn, separators=(",", ":")),
            "error_type",
            error_type,
            "error",
            error[:2000],
            "attempts",
            str(attempts),
            "worker",
            self.name,
            "at",
            repr(time.time()),
        ]

    # -- leases ------------------------------------------------------------------------------

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _heartbeat(self) -> int:
        now = await self._now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {self.name: now})
            pipe.zremrangebyscore(self.keys.workers, 0, now - 10 * self._ttl_ms)
            pipe.zcount(self.keys.workers, now - self._ttl_ms, "+inf")
            *_, live = await pipe.execute()
        return max(1, int(live))

    # Both loops end when cancelled, and also by themselves at their next round once the worker
    # is closing: aclose() cannot count on the cancellation arriving. redis-py sends a command
    # through asyncio.wait_for() when the connection has a socket timeout (5 s by default in
    # redis-py 8), and on Python 3.11 wait_for() hands the command's result to a task that was
    # cancelled just as the send completed, and drops the cancellation (fixed in 3.12, where
    # wait_for() is built on asyncio.timeout()). A loop that stopped only on CancelledError then
    # served on, and aclose() waited for it forever.

    async def _lease_loop(self) -> None:
        first = True
        while not self._closing:
            try:
                live = await self._heartbeat()
                if first:  # let workers started together see each other before taking leases
                    first = False
                    await asyncio.sleep(self._tick)
                    live = await self._heartbeat()
                await self._renew_all()
                target = math.ceil(len(self._agents) / live)
                # Agents being released still hold their lease (renewed above) until their
                # turn in flight ends; they are not counted, and not released twice.
                staying = sorted(n for n, o in self._owned.items() if not o.leaving)
                extra = len(staying) - target
                if extra > 0 and not self._closing:
                    for name in staying[-extra:]:
                        self._leave(name)
                elif extra < 0:
                    await self._acquire_some(-extra)
                await self._measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep trying; the leases may expire
                _log.warning("pygents.redis: worker %s: lease round failed: %s", self.name, exc)
            await asyncio.sleep(self._tick)

    async def _renew_all(self) -> None:
        """Renew every lease held, those of agents being released included; release the lost.

        Never waits for a turn: a release runs as a task of its own (``_leave``).
        """
        self._renewed = asyncio.get_running_loop().time()
        held = [(n, o) for n, o in self._owned.items() if not o.lost]
        if not held:
            return
        lost = await self._renew(
            keys=[self.keys.lease(n) for n, _ in held], args=[self.name, self._ttl_ms]
        )
        for index in lost:
            name, owned = held[int(index) - 1]
            if self._owned.get(name) is not owned:
                continue  # released meanwhile: its lease was given back
            owned.lost = True
            _log.warning("pygents.redis: worker %s lost the lease of %r", self.name, name)
            self._leave(name, give_back=False)

    async def _renew_until_released(self) -> None:
        """While closing: renew the leases every round until every release has ended.

        Cancelled, it cancels the releases (each agent's turn in flight is interrupted, queued
        again and checkpointed, as when a ``Service`` is cancelled) and waits for them.
        """
        try:
            while self._releases:
                try:
                    await self._renew_all()
                except Exception as exc:  # Redis down: the leases may expire
                    _log.warning(
                        "pygents.redis: worker %s: lease renewal failed: %s", self.name, exc
                    )
                if self._releases:
                    await asyncio.wait(set(self._releases), timeout=self._tick)
        except asyncio.CancelledError:
            releases = list(self._releases)
            for task in releases:
                task.cancel()
            await asyncio.gather(*releases, return_exceptions=True)
            raise

    async def _acquire_some(self, wanted: int) -> None:
        """Take up to ``wanted`` free agents, renewing every lease held once a round meanwhile.

        Taking an agent costs a few Redis round trips (and hands over what it had pending); a
        loaded worker taking many (at its start, at a takeover) can spend longer than a lease
        on them, and the leases it took first would expire under it.
        """
        names = sorted(self._agents)
        start = sum(self.name.encode()) % len(names)  # spread workers over the names
        for name in names[start:] + names[:start]:
            if wanted <= 0 or self._closing:
                return
            if name in self._owned:
                continue
            if await self._redis.set(self.keys.lease(name), self.name, nx=True, px=self._ttl_ms):
                try:
                    await self._acquire(name)
                    wanted -= 1
                except Exception as exc:
                    _log.error("pygents.redis: worker %s cannot serve %r: %s", self.name, name, exc)
                    self._leave(name)  # what it started stops; then the lease is given back
            await self._renew_if_due()

    async def _renew_if_due(self) -> None:
        """Renew the leases held if a lease round has passed since they last were."""
        if asyncio.get_running_loop().time() - self._renewed >= self._tick:
            await self._renew_all()

    async def _acquire(self, name: str) -> None:
        agent = self._agents[name]
        owned = self._owned[name] = _Owned(agent)
        previous = await self._redis.set(self.keys.owner(name), self.name, get=True)
        if previous is not None and decode(previous) != self.name:
            self.telemetry.count(_TAKEOVERS, name)
        # The local object holds nothing of value: the checkpoint is the agent's state.
        agent.reset()
        await self._settle_in_flight(owned)
        service = owned.service = Service(
            [agent], store=_FencedStore(self, owned), on_error="continue", batch=self._batch
        )
        await service.start()
        owned.watch = asyncio.create_task(self._watch(name, service), name=f"pygents watch {name}")
        # Redis may have lost the group since this worker (or the queue) made it.
        if await self.queue.ensure_group(name, check=True):
            _log.warning(
                "pygents.redis: worker %s: the stream of %r had no consumer group (Redis lost "
                "its data?); created it again",
                self.name,
                name,
            )
        # Entries read by an earlier owner and never handed over: first, in stream order.
        stream = self.keys.stream(name)
        cursor = "0-0"
        while True:
            cursor_raw, entries, *_ = await self._redis.xautoclaim(
                stream, GROUP, self.name, min_idle_time=0, start_id=cursor, count=500
            )
            for entry_id, fields in entries:
                if fields is None:
                    continue
                await self._deliver(owned, decode(entry_id), fields, delivery=2)
                await self._renew_if_due()  # many entries handed over, one by one
            cursor = decode(cursor_raw)
            if cursor == "0-0":
                break
        owned.ready = True

    async def _settle_in_flight(self, owned: _Owned) -> None:
        """The turn a lost worker was running: count it re-delivered, or dead-letter it."""
        name = owned.agent.name
        saved = await self.store.load(name)
        if saved is None:
            return
        try:
            document = json.loads(saved.data)
            current = document["state"]["current_turn"]
        except (ValueError, KeyError, TypeError):
            return  # Service.start() reports a bad checkpoint
        if current is None or document.get("format") != FORMAT:
            return
        attempt = int(current.get("metadata", {}).get("attempt", 1)) + 1
        if attempt <= self._max_attempts:
            self.telemetry.count(_REDELIVERIES, name)
            return
        current.setdefault("metadata", {})["attempt"] = attempt - 1
        document["state"]["current_turn"] = None
        document["seq"] = saved.seq + 1
        data = json.dumps(document, separators=(",", ":")).encode()
        await self.store.save_fenced(
            Checkpoint(name, saved.seq + 1, data, time.time()),
            worker=self.name,
            dead_letter=self._dead_letter(
                name, current, "WorkerLost", f"the worker running it was lost {attempt - 1} times"
            ),
        )
        self.telemetry.count(_DEAD, name)

    async def _watch(self, name: str, service: Service) -> None:
        """A service that stopped by itself (a checkpoint failed): let its lease expire."""
        # Shielded: cancelling this watch (a release) must not cancel the service's turns.
        waiting = asyncio.ensure_future(service.wait_stopped())
        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
        with contextlib.suppress(Exception):
            await asyncio.shield(waiting)
        owned = self._owned.get(name)
        if owned is not None and owned.service is service and not owned.leaving:
            _log.error(
                "pygents.redis: worker %s stopped serving %r; its lease expires", self.name, name
            )
            owned.watch = None
            self._leave(name, give_back=False)

    def _leave(self, name: str, *, give_back: bool = True) -> None:
        """Start releasing an agent, in a task of its own (once per agent).

        The agent takes no new turns; its turn in flight ends and is checkpointed; then the
        agent is dropped and, with ``give_back``, its lease deleted. Until then the lease loop
        (or ``aclose()``) renews the lease: nothing waits for the turn but this task.
        """
        owned = self._owned.get(name)
        if owned is None or owned.leaving:
            return
        owned.leaving = True
        if owned.watch is not None and owned.watch is not asyncio.current_task():
            owned.watch.cancel()
        task = asyncio.create_task(
            self._release(name, owned, give_back=give_back), name=f"pygents release {name}"
        )
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, name: str, owned: _Owned, *, give_back: bool) -> None:
        service = owned.service
        try:
            if service is not None:
                await service.aclose()
        except LeaseLostError:
            pass
        except Exception as exc:
            _log.warning("pygents.redis: worker %s: agent %r stopped with %s", self.name, name, exc)
        finally:
            if self._owned.get(name) is owned:
                del self._owned[name]
            if not owned.agent.is_running:
                owned.agent.reset()  # the next owner restores it from the checkpoint
            self.telemetry.depths.pop(name, None)
        if give_back and not owned.lost:
            try:
                await self._release_script(
                    keys=[self.keys.lease(name), self.keys.owner(name)], args=[self.name]
                )
            except RedisError as exc:  # it expires instead
                _log.warning(
                    "pygents.redis: worker %s: giving back the lease of %r failed: %s",
                    self.name,
                    name,
                    exc,
                )

    async def _measure(self) -> None:
        names = list(self._owned)
        self.telemetry.leases = len(names)
        if not names:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for n in names:
                pipe.xlen(self.keys.stream(n))
            lengths = await pipe.execute()
        for n, length in zip(names, lengths, strict=True):
            owned = self._owned.get(n)
            if owned is not None:
                self.telemetry.depths[n] = int(length) + len(owned.agent)

    # -- reading and handing over ------------------------------------------------------------

    async def _read_loop(self) -> None:
        """Read and hand over until closing; an unexpected error is logged, then reading goes on.

        Nothing that goes wrong in one round stops the loop: a loop that died would leave
        every agent of this worker unserved while their leases are still renewed.
        """
        loop = asyncio.get_running_loop()
        sweep_at = 0.0
        while not self._closing:  # see _lease_loop: a cancellation can be lost
            try:
                sweep = loop.time() >= sweep_at  # once a lease round: what other consumers left
                if sweep:
                    sweep_at = loop.time() + self._tick
                await self._read_round(sweep)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Entries of this round may be left pending under this worker, which claims
                # only other consumers' entries: giving the agents up hands them to the next
                # owner (maybe this worker again, at its next lease round), which claims all.
                _log.exception(
                    "pygents.redis: worker %s: reading failed; it gives its agents up and "
                    "reads on in %.3g s",
                    self.name,
                    self._tick,
                )
                for name in [n for n, o in self._owned.items() if o.ready]:
                    self._leave(name)
                await asyncio.sleep(self._tick)

    async def _read_round(self, sweep: bool) -> None:
        """Read the owned agents' streams once, hand the entries over (``sweep``: claim first)."""
        prefetch = self._prefetch
        if sweep:
            await self._hand_over(list(self._owned), {})
        names = [
            n
            for n, o in self._owned.items()
            if o.ready and not o.leaving and len(o.agent) < prefetch
        ]
        if not names:
            await asyncio.sleep(0.02)
            return
        streams: dict[Any, Any] = {self.keys.stream(n): ">" for n in names}
        try:
            response = await self._redis.xreadgroup(
                GROUP,
                self.name,
                streams,
                count=prefetch,
                block=200,
            )
        except RedisError as exc:
            _log.warning("pygents.redis: worker %s: read failed: %s", self.name, exc)
            if not (_no_group(exc) and await self._regroup(names)):
                await asyncio.sleep(self._tick)
            return
        batches: Any = response or ()
        read = {
            decode(stream_raw).split(":{", 1)[1].rsplit("}:", 1)[0]: entries
            for stream_raw, entries in batches
        }
        if read:
            await self._hand_over(list(read), read)

    async def _regroup(self, names: list[str]) -> bool:
        """Create the consumer group of these agents' streams again (Redis lost its data).

        What Redis lost stays lost (the entries, the checkpoints, the pending lists); the
        agents are served on from what is left. Returns whether it worked.
        """
        try:
            for name in names:
                await self.queue.ensure_group(name, check=True)
        except RedisError as exc:
            _log.warning(
                "pygents.redis: worker %s: creating consumer groups failed: %s", self.name, exc
            )
            return False
        _log.warning(
            "pygents.redis: worker %s: created the consumer group of %s again (Redis lost "
            "its data?)",
            self.name,
            names,
        )
        return True

    async def _hand_over(self, names: list[str], read: dict[str, Any]) -> None:
        """Hand over the entries just read and, first, those other consumers left pending.

        Another consumer's entries in an agent's stream were read by a worker as it lost the
        agent's lease or gave the agent up (its read had begun before), after the owner's
        claim at acquisition. Claimed right after this worker's own read, they are all the
        entries read before the ones it got, so the agent gets every entry in stream order.
        The read entries of an agent this worker no longer serves are left pending: its next
        owner claims them.
        """
        names = [n for n in names if self._serves(n)]
        if not names:
            return
        try:
            claimed = await self._claim(names)
        except RedisError as exc:  # claimed at a later round; the read entries go on
            _log.warning("pygents.redis: worker %s: claim failed: %s", self.name, exc)
            if _no_group(exc):
                await self._regroup(names)
            claimed = {}
        for name in names:
            found = claimed.get(name, [])
            if found is None:
                continue  # the lease is another worker's: it claims the read entries
            entries = [(i, f, 2) for i, f in found] + [(i, f, 1) for i, f in read.get(name, ())]
            if found:
                entries.sort(key=lambda e: _entry_order(e[0]))
            for entry_id, fields, delivery in entries:
                owned = self._owned.get(name)
                if owned is None or owned.leaving:
                    break  # left pending: the next owner claims it
                await self._deliver(owned, decode(entry_id), fields, delivery=delivery)

    def _serves(self, name: str) -> bool:
        owned = self._owned.get(name)
        return owned is not None and owned.ready and not owned.leaving

    async def _claim(self, names: list[str]) -> dict[str, list[tuple[Any, Any]] | None]:
        """Move to this worker the entries other consumers left pending in these streams.

        One round trip: a script per agent (``_scripts.CLAIM``), fenced by its lease. Returns
        each agent's entries claimed, or None for an agent whose lease is not this worker's.
        """
        sha = self._claim_script.sha
        for _ in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for n in names:
                    pipe.evalsha(
                        sha,
                        2,
                        self.keys.lease(n),
                        self.keys.stream(n),
                        self.name,
                        GROUP,
                        _CLAIM_COUNT,
                    )
                results = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                break
            await self._redis.script_load(_scripts.CLAIM)  # Redis restarted: load it again
        claimed: dict[str, list[tuple[Any, Any]] | None] = {}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, Exception):
                raise result
            if not isinstance(result, list):
                claimed[name] = None
                continue
            claimed[name] = [(i, dict(zip(f[::2], f[1::2], strict=True))) for i, f in result]
        return claimed

    async def _deliver(self, owned: _Owned, entry_id: str, raw: Any, delivery: int) -> None:
        """Hand one stream entry's turn to its agent (checkpointed and acked in one step).

        ``delivery``: 1 for an entry read from the stream, 2 for one claimed from another
        worker (counted as a redelivery).
        """
        agent = owned.agent
        if delivery > 1:
            self.telemetry.count(_REDELIVERIES, agent.name)
        undecodable: Exception | None = None
        try:
            fields = decode_fields(raw)
        except Exception as exc:  # bytes that are not UTF-8: dead-lettered below
            fields, undecodable = {}, exc
        incoming: dict[str, str] = {
            k: fields[k] for k in ("traceparent", "tracestate") if k in fields
        }
        carrier: dict[str, str] = {}
        stream = self.keys.stream(agent.name)
        with self.telemetry.process_span(stream, agent.name, incoming, carrier, entry_id, delivery):
            try:
                if undecodable is not None:
                    raise undecodable
                turn = Turn.from_dict(json.loads(fields["turn"]))
                if not any(t is turn.tool for t in agent.tools):
                    raise ValueError(
                        f"agent {agent.name!r} does not accept tool {turn.tool_name!r}"
                    )
            except Exception as exc:  # a message no worker can run: straight to the dead letters
                await self._poison(owned, entry_id, raw, exc)
                return
            if carrier or incoming:
                turn.metadata.trace_context = carrier or incoming
            owned.handed.append((entry_id, turn))
            try:
                await agent.put(turn)
            except Exception as exc:
                if turn.metadata.enqueued_time is not None and not _holds(agent, turn):
                    # Queued, then the checkpoint of the put failed and the service took the
                    # turn out again. A turn that cannot be checkpointed (decoded JSON that
                    # cannot be written back: NaN, too deep) no worker can run: dead-lettered.
                    # Else (the store failed; the service stops) the entry stays pending for
                    # the agent's next owner; no checkpoint of this worker may acknowledge it.
                    owned.handed = [(i, t) for i, t in owned.handed if t is not turn]
                    if isinstance(exc, SerializationError):
                        try:
                            encode_turn(turn)
                        except SerializationError as unsaveable:
                            await self._poison(owned, entry_id, raw, unsaveable)
                            return
                    _log.warning(
                        "pygents.redis: worker %s: %s of %r was not checkpointed (%s); left "
                        "in the stream",
                        self.name,
                        entry_id,
                        agent.name,
                        exc,
                    )
                    return
                if turn.metadata.enqueued_time is not None:
                    # Queued, then an after_put hook failed: the turn is the agent's now, and
                    # its next checkpoint acknowledges the entry.
                    _log.warning(
                        "pygents.redis: worker %s: an after_put hook of %r failed on %s: %s",
                        self.name,
                        agent.name,
                        entry_id,
                        exc,
                    )
                    return
                # Refused (a before_put hook raised): no worker would take it.
                owned.handed = [(i, t) for i, t in owned.handed if t is not turn]
                await self._poison(owned, entry_id, raw, exc)

    async def _poison(self, owned: _Owned, entry_id: str, raw: Any, exc: Exception) -> None:
        """Dead-letter one entry with ``exc`` and acknowledge it: no worker can run it.

        The dead letter's ``turn`` is the entry's ``turn`` field as it is in the stream (bytes
        that are not UTF-8 too); its other fields are kept as ``entry.<name>``.
        """
        name = owned.agent.name
        _log.warning(
            "pygents.redis: worker %s: dead-lettered %s of %r: %s: %s",
            self.name,
            entry_id,
            name,
            type(exc).__name__,
            exc,
        )
        stream = self.keys.stream(name)
        letter: list[Any] = self._dead_letter(name, {}, type(exc).__name__, str(exc))
        letter[3], others = _split_fields(raw, "turn")
        letter += others
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.dead, dict(zip(letter[::2], letter[1::2], strict=True)))
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
        self.telemetry.count(_DEAD, name)


_WORKERS: set[RedisWorker] = set()


async def pygents_redis_turn_failed(turn: Turn, exception: BaseException | None = None) -> None:
    """Retry a failed turn of a worker's agent, or dead-letter it (a global turn hook)."""
    agent = current_agent()
    name = getattr(agent, "name", None)
    for worker in _WORKERS:
        owned = worker._owned.get(name or "")
        # An agent being released too: its last checkpoint keeps the retry (or writes the
        # dead letter). Not one whose lease is lost: the next owner runs the turn again.
        if owned is not None and owned.agent is agent and not owned.lost:
            worker._on_failed(owned, turn, exception)
            return


#: The global ON_ERROR/ON_TIMEOUT hook, made (registered) by the first worker to start.
_FAILED_HOOK: Any = None


def _register_failed_hook() -> None:
    global _FAILED_HOOK
    if _FAILED_HOOK is None:
        _FAILED_HOOK = hook([TurnHook.ON_ERROR, TurnHook.ON_TIMEOUT])(pygents_redis_turn_failed)
    elif HookRegistry.lookup(_FAILED_HOOK.metadata.name) is not _FAILED_HOOK:
        HookRegistry.register(_FAILED_HOOK)


def _no_group(exc: RedisError) -> bool:
    """Whether Redis refused a command for a missing stream or consumer group (data lost)."""
    return "NOGROUP" in str(exc)


def _split_fields(raw: Any, name: str) -> tuple[Any, list[Any]]:
    """A stream entry's field ``name`` (or ``""``), and its other fields.

    The others as ``[ENTRY_FIELD + key, value, ...]``; keys and values as Redis returned them
    (bytes that are not UTF-8 too).
    """
    try:
        items = dict(raw).items()
    except (TypeError, ValueError):
        return "", []
    value_of_name: Any = ""
    others: list[Any] = []
    for key, value in items:
        if key in (name, name.encode()):
            value_of_name = value
        else:
            prefix: Any = ENTRY_FIELD.encode() if isinstance(key, bytes) else ENTRY_FIELD
            others += [prefix + key, value]
    return value_of_name, others


def _entry_order(entry_id: Any) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as numbers, to sort by."""
    ms, _, seq = decode(entry_id).partition("-")
    return int(ms), int(seq or 0)


def decode(value: Any) -> str:
    """Bytes from Redis as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
