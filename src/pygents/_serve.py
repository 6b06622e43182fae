"""``Service``: agents served as long-lived workers, checkpointed into a store, stoppable.

Each served agent gets a task of its own that waits for turns, runs each *busy period* (from
the first queued turn until the queue is empty, at most ``batch`` turns) as one
``Agent.run()``, and goes back to waiting. A tool error or timeout ends that ``run()`` (the
turn keeps its stop reason, its hooks fired); the error policy says whether to go on. With a
store, the agent's state is saved after every turn, at the start of every busy period and on
every put from outside the agent, and restored on start.

The service attaches through global agent hooks (``AFTER_TURN`` and ``ON_PAUSE``, and
``AFTER_PUT`` when a store is used), registered while a service runs, and an agent queue that
remembers the turn it last handed out; ``run()`` itself is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import _checkpoint
from ._current import current_turn
from ._enums import AgentHook, StopReason
from ._hooks import AsyncHook, HookRegistry
from ._registry import AgentRegistryBase
from ._turn import Turn
from ._types import AgentState
from .errors import (
    CheckpointStoreError,
    SafeExecutionError,
    SerializationError,
    is_collection,
    short_repr,
)
from .store import CheckpointStore

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["ErrorPolicy", "Service", "serve"]

# The service sits above the agent (the agent knows nothing of it): its own code types
# against what it uses of one; its public signatures name the agent class.
_Served = AgentState

_log = logging.getLogger("pygents")
_COMPLETED = StopReason.COMPLETED

#: Decides, after a turn failed (error or timeout), whether the service goes on: called with
#: the agent, the failed turn (None when the error came from a hook between turns) and the
#: exception; returns (or resolves to) True to keep serving, False to stop.
ErrorPolicy = Callable[[Any, Turn | None, Exception], bool | Awaitable[bool]]


class _TrackingQueue(deque[Turn]):
    """A served agent's queue: remembers the turn the run loop last took (the one in flight)."""

    taken: Turn | None = None

    def popleft(self) -> Turn:
        turn = super().popleft()
        self.taken = turn
        return turn


# -- the global hooks, registered while any service runs -------------------------------------


async def pygents_service_after_turn(agent: Any, turn: Turn) -> None:
    """Checkpoint a served agent after each turn; end its busy period when asked to."""
    service = getattr(agent, "_service", None)
    if service is not None:
        await service._after_turn(agent)


async def pygents_service_after_put(agent: Any, turn: Turn) -> None:
    """Checkpoint a served agent when a turn comes from outside it."""
    service = getattr(agent, "_service", None)
    if service is not None:
        await service._after_put(agent, turn)


async def pygents_service_on_pause(agent: Any) -> None:
    """Stop a served agent at its gate when its service stops (or is done draining)."""
    service = getattr(agent, "_service", None)
    if service is not None:
        service._on_pause(agent)


_AFTER_TURN = AsyncHook(
    pygents_service_after_turn, (AgentHook.AFTER_TURN,), lock=False, fixed_kwargs={}, is_global=True
)
_AFTER_PUT = AsyncHook(
    pygents_service_after_put, (AgentHook.AFTER_PUT,), lock=False, fixed_kwargs={}, is_global=True
)
_ON_PAUSE = AsyncHook(
    pygents_service_on_pause, (AgentHook.ON_PAUSE,), lock=False, fixed_kwargs={}, is_global=True
)
_users = {"turn": 0, "put": 0}


def _ensure_registered(durable: bool) -> None:
    """Register the hooks this service needs (again, if a registry reset removed them)."""
    for h, needed in ((_AFTER_TURN, True), (_ON_PAUSE, True), (_AFTER_PUT, durable)):
        if needed and HookRegistry.lookup(h.metadata.name) is not h:
            HookRegistry.register(h, library=True)


def _release(durable: bool) -> None:
    for key, hooks, used in (
        ("turn", (_AFTER_TURN, _ON_PAUSE), True),
        ("put", (_AFTER_PUT,), durable),
    ):
        if not used:
            continue
        _users[key] -= 1
        for h in hooks:
            if not _users[key] and HookRegistry.lookup(h.metadata.name) is h:
                HookRegistry.unregister(h)


# -- the service -----------------------------------------------------------------------------


class Service:
    """Serve agents until stopped: wait for turns, survive failed turns, checkpoint, restore.

    Usable as an async context manager (serving in the background inside the block) or with
    ``await service.serve_forever()``. ``Agent.run()`` is unchanged; this runs it once per
    busy period.

    Args:
        agents: the agents to serve (each served by at most one service at a time).
        store: where to checkpoint each agent after every turn and restore it from on start
            (``pygents.store.SQLiteStore``, ...); None for no durability.
        on_error: after a turn fails (error or timeout): ``"continue"`` (log a warning and
            serve on), ``"stop"`` (stop the service; ``serve_forever()`` raises the error), or
            an ``ErrorPolicy``.
        batch: the most turns one ``run()`` (one ``invoke_agent`` span) takes before the
            service starts the next, so no span outlives the work it describes.
        restore: restore each agent from its checkpoint on start (with a store).

    Raises:
        TypeError: ``agents`` is not a list of agents, an agent is not an ``Agent``,
            ``store`` is not a ``CheckpointStore``, or ``batch`` is not an int.
        ValueError: two agents share a name, ``on_error`` is unknown, ``batch`` < 1.
    """

    def __init__(
        self,
        agents: Iterable[Agent],
        *,
        store: CheckpointStore | None = None,
        on_error: Literal["continue", "stop"] | ErrorPolicy = "continue",
        batch: int = 100,
        restore: bool = True,
    ) -> None:
        given: Any = agents  # checked: callers may pass anything
        name = getattr(given, "name", None)
        if isinstance(name, str) and AgentRegistryBase._items.get(name) is given:
            raise TypeError(
                f"Service takes a list of agents, got the agent {name!r} itself: pass "
                f"Service([agent])"
            )
        if not is_collection(given):
            raise TypeError(
                f"Service takes a list of agents, got {short_repr(agents)}: pass "
                f"Service([agent, ...])"
            )
        self._agents: list[Agent] = list(agents)
        for agent in self._agents:
            name = getattr(agent, "name", None)
            if not isinstance(name, str) or AgentRegistryBase._items.get(name) is not agent:
                raise TypeError(f"Service serves registered agents, got {agent!r}")
        names = [a.name for a in self._agents]
        if len(set(names)) != len(names):
            raise ValueError(f"Service: agent names must be unique, got {names}")
        if store is not None and (
            isinstance(store, type)  # the class passes the protocol check: its methods exist
            or not isinstance(store, CheckpointStore)
        ):
            raise TypeError(f"Service store must be a CheckpointStore instance, got {store!r}")
        if on_error not in ("continue", "stop") and not callable(on_error):
            raise ValueError(
                f"Service on_error must be 'continue', 'stop' or a callable, got {on_error!r}"
            )
        if not isinstance(batch, int) or isinstance(batch, bool):
            raise TypeError(f"Service batch must be an int >= 1, got {short_repr(batch)}")
        if batch < 1:
            raise ValueError(f"Service batch must be an int >= 1, got {batch!r}")
        self._store = store
        self._on_error = on_error
        self._batch = batch
        self._restore = restore
        self._tasks: dict[_Served, asyncio.Task[None]] = {}
        self._seq: dict[_Served, int] = {}
        self._count: dict[_Served, int] = {}
        self._head: dict[_Served, bool] = {}
        self._busy: set[_Served] = set()
        self._idle_failures: dict[_Served, int] = {}  # failures in a row that took no turn
        self._gate_stops: set[_Served] = set()
        self._started = False
        self._finished = False
        self._halt = False
        self._draining = False
        self._error: BaseException | None = None
        self._fatal: BaseException | None = None

    def __repr__(self) -> str:
        state = "stopped" if self._finished else "serving" if self._started else "new"
        return f"Service(agents={[a.name for a in self._agents]!r}, store={self._store!r}, {state})"

    @property
    def agents(self) -> list[Agent]:
        """The served agents (a copy)."""
        return list(self._agents)

    @property
    def store(self) -> CheckpointStore | None:
        """The checkpoint store, or None."""
        return self._store

    @property
    def is_serving(self) -> bool:
        """True from ``start()`` until every agent's task has ended."""
        return self._started and not self._finished

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore each agent from the store (if any) and start serving in the background.

        Raises:
            SafeExecutionError: the service was started before, or an agent is running or
                served by another service.
            CheckpointError: a stored checkpoint cannot be restored (every checkpoint is
                read first: no agent was changed or started).
            CheckpointStoreError: the store failed.
        """
        if self._started:
            raise SafeExecutionError(f"{self!r} was started already; make a new Service")
        self._check_idle()
        if self._store is not None and self._restore:
            # All or nothing: every checkpoint is loaded and validated before any agent
            # changes, so a start() that raises leaves every agent as it was.
            where = repr(self._store)
            restored = []
            for agent in self._agents:
                saved = await self._load(agent)
                if saved is None:
                    continue
                if agent._checkpoint == (saved.seq, saved.saved_at):
                    # The checkpoint a service saved of this very agent: it holds that state
                    # (and whatever was put since); restoring it would queue its turns twice.
                    self._seq[agent] = saved.seq
                    continue
                restored.append((agent, saved.seq, _checkpoint.read(agent, saved, where)))
            self._check_idle()  # again: the loads awaited
            for agent, seq, state in restored:
                _checkpoint.apply(agent, state)
                self._seq[agent] = seq
        self._started = True
        durable = self._store is not None
        _users["turn"] += 1
        if durable:
            _users["put"] += 1
        _ensure_registered(durable)
        for agent in self._agents:
            agent._service = self
            agent._queue = _TrackingQueue(agent._queue)
            if agent._nonempty is None:
                agent._nonempty = asyncio.Event()
        for agent in self._agents:
            self._tasks[agent] = asyncio.create_task(
                self._serve(agent), name=f"pygents serve {agent.name}"
            )

    def _check_idle(self) -> None:
        for agent in self._agents:
            if agent._service is not None or agent.is_running:
                raise SafeExecutionError(
                    f"Agent {agent.name!r} is already running or served; stop it first"
                )

    async def _load(self, agent: _Served) -> Any:
        assert self._store is not None
        try:
            return await self._store.load(agent.name)
        except CheckpointStoreError:
            raise
        except Exception as exc:
            raise CheckpointStoreError(
                f"{self._store!r} failed to load agent {agent.name!r}: {exc}"
            ) from exc

    def stop(self, *, drain: bool = False) -> None:
        """Ask the service to stop; ``wait_stopped()`` waits for it.

        Args:
            drain: False: each agent finishes the turn in flight and stops; the turns still
                queued stay queued (and checkpointed). True: keep serving until every agent
                is idle with an empty queue (turns they send each other included) or paused,
                then stop. Either way a paused agent stops at its gate, its turns queued.
        """
        if drain and not self._halt:
            self._draining = True
            if self._started and self._drained():
                self._halt_all()
            else:
                self._wake_all()
        else:
            self._halt_all()

    def _halt_all(self) -> None:
        """Stop serving: no agent starts another turn; a paused agent stops at its gate."""
        self._halt = True
        current = asyncio.current_task()
        for agent in self._agents:
            # Paused inside run() with no turn taken (at its gate, or on the way there):
            # nothing is in flight, so cancelling run() loses nothing. An agent that gets
            # there later (or whose own task is stopping the service) is stopped by its
            # ON_PAUSE hook; one that is not paused ends its run after the turn in flight.
            if agent._paused and agent._running and getattr(agent._queue, "taken", 1) is None:
                task = self._tasks.get(agent)
                if task is not None and task is not current:
                    self._stop_at_gate(agent, task)
        self._wake_all()

    def _stop_at_gate(self, agent: _Served, task: asyncio.Task[None]) -> None:
        if not task.done() and agent not in self._gate_stops:
            self._gate_stops.add(agent)
            task.cancel()

    def _drained(self) -> bool:
        """Draining is done: every agent is idle with an empty queue, or paused between turns."""
        busy = self._busy
        return all(
            (agent not in busy and not agent._queue)
            or (agent._paused and getattr(agent._queue, "taken", 1) is None)
            for agent in self._agents
        )

    def _on_pause(self, agent: _Served) -> None:
        """The agent is entering its gate: stop it there if the service stops."""
        if self._draining and not self._halt and self._drained():
            self._halt_all()
        task = self._tasks.get(agent)
        if self._halt and task is asyncio.current_task() and task is not None:
            self._stop_at_gate(agent, task)

    async def wait_stopped(self) -> None:
        """Wait until every agent's task has ended; then detach the agents.

        If the waiting task is cancelled, the service is cancelled too: each agent's turn in
        flight is interrupted and queued again (``metadata.attempt`` one higher), the state
        checkpointed, and the ``CancelledError`` propagates.

        Raises:
            Exception: the error of a turn when ``on_error`` said to stop.
            CheckpointStoreError / SerializationError: a checkpoint could not be written.
        """
        tasks = list(self._tasks.values())
        try:
            if tasks:
                await asyncio.wait(tasks)
        except asyncio.CancelledError:
            await self._cancel()
            raise
        self._finish()
        for task in tasks:
            if not task.cancelled() and task.exception() is not None and self._error is None:
                self._error = task.exception()
        error = self._fatal or self._error
        if error is not None:
            raise error

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until ``stop()`` or cancellation; see ``wait_stopped``."""
        if not self._started:
            await self.start()
        await self.wait_stopped()

    async def aclose(self, *, drain: bool = False) -> None:
        """``stop(drain=drain)``, then ``wait_stopped()``."""
        if self._started and not self._finished:
            self.stop(drain=drain)
            await self.wait_stopped()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
        else:
            await self._cancel()

    async def _cancel(self) -> None:
        # Halted too: an agent's task whose cancellation is lost (its turn awaited something
        # that swallows it, such as Python 3.11's asyncio.wait_for(), which redis-py uses)
        # stops after that turn instead of serving on with nobody to stop it.
        self._halt = True
        self._wake_all()
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._finish()

    def _finish(self) -> None:
        if self._finished or not self._started:
            return
        self._finished = True
        for agent in self._agents:
            agent._service = None
            agent._queue = deque(agent._queue)
        _release(self._store is not None)

    def _wake_all(self) -> None:
        for agent in self._agents:
            if agent._nonempty is not None:
                agent._nonempty.set()

    # -- one agent ---------------------------------------------------------------------------

    async def _serve(self, agent: _Served) -> None:
        while not self._halt:
            if not agent._queue:
                self._busy.discard(agent)
                if self._draining and self._drained():
                    self._halt_all()
                    break
                event = agent._nonempty
                assert event is not None
                event.clear()
                if not agent._queue and not self._halt:
                    await event.wait()
                continue
            self._busy.add(agent)
            if not await self._busy_period(agent):
                break
        self._busy.discard(agent)
        self._head[agent] = False
        if self._fatal is None:
            await self._save(agent)
        else:
            await self._last_save(agent)

    async def _busy_period(self, agent: _Served) -> bool:
        """Run the queue once; False when the agent must stop serving."""
        _ensure_registered(self._store is not None)
        queue = agent._queue
        assert isinstance(queue, _TrackingQueue)
        queue.taken = None
        self._count[agent] = 0
        self._head[agent] = not agent._paused
        await self._save(agent)
        if self._halt:  # stopped while that checkpoint was written: no turn was taken
            return False
        try:
            async with aclosing(agent.run()) as stream:
                async for _pair in stream:
                    pass  # values reach on_turn_value hooks; a service has no consumer
        except asyncio.CancelledError:
            stopped_at_gate = agent in self._gate_stops and queue.taken is None
            await self._interrupted(agent, queue)
            if stopped_at_gate:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                return False
            raise
        except Exception as exc:
            self._head[agent] = False
            if self._fatal is not None:
                return False
            turn, queue.taken = queue.taken, None
            await self._save(agent)
            if not await self._failed(agent, turn, exc):
                return False
            if turn is None:
                # No turn was taken (a hook before the first turn raised, the agent was
                # running elsewhere): the next busy period would fail at once, forever.
                await self._back_off(agent)
            return not self._halt
        finally:
            self._head[agent] = False
        return not self._halt

    async def _back_off(self, agent: _Served) -> None:
        """Wait before serving ``agent`` again after a failure that took no turn.

        0.05 s, doubling to at most 5 s while such failures repeat (a turn taken resets
        it); ``stop()`` and a put end the wait early.
        """
        failures = self._idle_failures[agent] = self._idle_failures.get(agent, 0) + 1
        event = agent._nonempty
        assert event is not None
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(0.05 * 2 ** (failures - 1), 5.0))

    async def _interrupted(self, agent: _Served, queue: _TrackingQueue) -> None:
        """Cancelled: queue the interrupted turn again (one attempt more) and checkpoint."""
        turn, queue.taken = queue.taken, None
        if turn is not None and turn._stop_reason is not _COMPLETED:
            turn._attempt += 1
            agent._queue.appendleft(turn)
        self._head[agent] = False
        try:
            await self._save(agent)
        except Exception as exc:  # the cancellation goes on; the error is logged
            _log.error("pygents: agent %r: checkpoint on cancellation failed: %s", agent.name, exc)

    async def _failed(self, agent: _Served, turn: Turn | None, exc: Exception) -> bool:
        policy = self._on_error
        if policy == "continue":
            _log.warning(
                "pygents: agent %r: turn of tool %r failed (%s: %s); serving on",
                agent.name,
                None if turn is None else turn.tool_name,
                type(exc).__name__,
                exc,
            )
            return True
        verdict: Any = False
        if policy != "stop":
            assert callable(policy)
            try:
                verdict = policy(agent, turn, exc)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception as policy_error:
                exc = policy_error
                verdict = False
        if verdict:
            return True
        if self._error is None:
            self._error = exc
        self._halt_all()
        return False

    # -- hooks and checkpoints ---------------------------------------------------------------

    async def _after_turn(self, agent: _Served) -> None:
        self._idle_failures.pop(agent, None)
        queue = agent._queue
        if isinstance(queue, _TrackingQueue):
            queue.taken = None
        count = self._count[agent] = self._count.get(agent, 0) + 1
        leave = self._halt or count >= self._batch
        if leave and queue:
            # The run loop holds the old deque: emptied, it ends the run after this turn;
            # the turns (and any put from now on) are in the new one, in order.
            agent._queue = _TrackingQueue(queue)
            queue.clear()
        self._head[agent] = not leave and not agent._paused
        await self._save(agent)
        if self._halt and not leave and agent._queue is queue and queue:
            # Stopped while that checkpoint was written: end the run after this turn too.
            agent._queue = _TrackingQueue(queue)
            queue.clear()

    async def _after_put(self, agent: _Served, turn: Turn) -> None:
        queue = agent._queue
        taken = queue.taken if isinstance(queue, _TrackingQueue) else None
        if taken is not None and current_turn() is taken:
            return  # the agent's own turn: saved with that turn's end
        try:
            await self._save(agent, fatal=False)
        except Exception:
            # put() raises: the turn is not queued (not JSON, or the store failed, which also
            # stops the service, so no run takes the turn after this).
            try:
                agent._queue.remove(turn)
            except ValueError:
                pass
            raise

    async def _last_save(self, agent: _Served) -> None:
        """A checkpoint failed and stopped the service: try once more as the agent stops.

        A transient failure (a full disk freed, a database unlocked) then loses nothing the
        agent holds. A failure now is logged; the first one is what the service raises.
        """
        try:
            await self._save(agent, fatal=False)
        except Exception as exc:
            _log.error("pygents: agent %r: the last checkpoint failed too: %s", agent.name, exc)

    async def _save(self, agent: _Served, *, fatal: bool = True) -> None:
        """Checkpoint ``agent`` now; a failure stops the service and propagates.

        ``fatal``: a state that cannot be encoded stops the service too (a put refused for
        it does not). Saves go on after a failure stopped the service (a put from outside,
        the turn in flight ending, the last save): a put that returns is on disk whatever
        happened before.
        """
        store = self._store
        if store is None:
            return
        seq = self._seq[agent] = self._seq.get(agent, 0) + 1
        try:
            checkpoint = _checkpoint.encode(agent, seq, self._head.get(agent, False))
        except SerializationError as exc:
            if fatal:
                self._fail(exc)
            raise
        try:
            await store.save(checkpoint)
            agent._checkpoint = (checkpoint.seq, checkpoint.saved_at)
        except CheckpointStoreError as exc:
            self._fail(exc)
            raise
        except Exception as exc:
            wrapped = CheckpointStoreError(
                f"{store!r} failed to save agent {agent.name!r}: {type(exc).__name__}: {exc}"
            )
            wrapped.__cause__ = exc
            self._fail(wrapped)
            raise wrapped from exc

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            _log.error("pygents: %r stops: checkpoint failed: %s", self, exc)
        self._halt_all()


async def serve(
    *agents: Agent,
    store: CheckpointStore | None = None,
    on_error: Literal["continue", "stop"] | ErrorPolicy = "continue",
    batch: int = 100,
) -> None:
    """Serve ``agents`` until cancelled: ``Service(agents, ...).serve_forever()``.

    The one-line form for a worker's ``main()``: cancel its task (or press Ctrl-C under
    ``asyncio.run``) to stop; the turns in flight are queued again and checkpointed. Use
    ``Service`` to stop on request, with or without draining.
    """
    await Service(agents, store=store, on_error=on_error, batch=batch).serve_forever()
