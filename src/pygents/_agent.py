"""Agents: a queue of turns, a set of tools, and the run loop that streams results."""

from __future__ import annotations

import asyncio
import warnings
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Iterable
from time import time
from typing import Any

from . import _scope, _serde
from ._context import ContextItem, ContextPool, ContextQueue
from ._current import FRAME
from ._enums import AgentHook, TurnHook
from ._hooks import DONE, HookPoint, fire, fire_global, normalize_tags
from ._registry import GLOBAL_BY_FAMILY, GLOBAL_BY_TYPE, AgentRegistry, ToolRegistry
from ._scope import SCOPES
from ._tool import Tool
from ._turn import Turn
from ._turn_run import run_returning, run_yielding
from .errors import SafeExecutionError, SerializationError

__all__ = ["DEFAULT_CONTEXT_QUEUE_LIMIT", "Agent"]

#: Limit of the context queue an agent creates when none is given.
DEFAULT_CONTEXT_QUEUE_LIMIT = 100
#: The run loop yields to the event loop after this many turns that never suspended,
#: so that other agents and timers get to run.
_BREATHE_EVERY = 64

_AGENT_GLOBALS = GLOBAL_BY_FAMILY[AgentHook]
# Per-type global hook lists (mutated in place by HookRegistry): the run loop tests the
# one of each event, so an event nobody listens to is not dispatched.
_G_BEFORE_TURN = GLOBAL_BY_TYPE[AgentHook.BEFORE_TURN]
_G_AFTER_TURN = GLOBAL_BY_TYPE[AgentHook.AFTER_TURN]
_G_TURN_VALUE = GLOBAL_BY_TYPE[AgentHook.ON_TURN_VALUE]
_G_BEFORE_PUT = GLOBAL_BY_TYPE[AgentHook.BEFORE_PUT]
_G_AFTER_PUT = GLOBAL_BY_TYPE[AgentHook.AFTER_PUT]
_ROUTED = (Turn, ContextItem)  # output types the run loop routes
_KEEP: Any = object()


def _note(exc: BaseException, agent: Agent, turn: Turn) -> None:
    exc.add_note(f"raised by {turn!r} run by agent {agent.name!r}")


def _copy_turn(turn: Turn) -> Turn:
    copy = Turn(turn.tool, turn.timeout, list(turn.args), dict(turn.kwargs), turn.tags)
    if turn._hooks:
        copy.hooks.extend(turn._hooks)
    if turn._trace_context is not None:
        copy._trace_context = dict(turn._trace_context)
    return copy


class Agent:
    """Runs a queue of turns with a fixed set of tools and streams ``(turn, value)`` pairs.

    Args:
        name: unique name; the agent registers itself in ``AgentRegistry``.
        description: what the agent does.
        tools: the tools its turns may use (the instances in ``ToolRegistry``).
        context_queue: its context window (default: a new ``ContextQueue(limit=100)``).
        context_pool: its keyed store (default: a new unbounded ``ContextPool()``).
        hooks: instance hooks to start with.
        tags: tags matched by tag-filtered global hooks.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: a tool is not the registered instance, or the name is taken.
    """

    before_turn = HookPoint["Agent"](AgentHook.BEFORE_TURN)
    after_turn = HookPoint["Agent"](AgentHook.AFTER_TURN)
    on_turn_value = HookPoint["Agent"](AgentHook.ON_TURN_VALUE)
    before_put = HookPoint["Agent"](AgentHook.BEFORE_PUT)
    after_put = HookPoint["Agent"](AgentHook.AFTER_PUT)
    on_pause = HookPoint["Agent"](AgentHook.ON_PAUSE)
    on_resume = HookPoint["Agent"](AgentHook.ON_RESUME)
    on_run_start = HookPoint["Agent"](AgentHook.ON_RUN_START)
    on_run_end = HookPoint["Agent"](AgentHook.ON_RUN_END)
    # Turn hooks set on the agent fire for every turn it runs.
    on_error = HookPoint["Agent"](TurnHook.ON_ERROR)
    on_timeout = HookPoint["Agent"](TurnHook.ON_TIMEOUT)
    on_complete = HookPoint["Agent"](TurnHook.ON_COMPLETE)

    def __init__(
        self,
        name: str,
        description: str,
        tools: Iterable[Tool],
        context_queue: ContextQueue | None = None,
        context_pool: ContextPool | None = None,
        hooks: Iterable[Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Agent name must be a non-empty string, got {name!r}")
        if not isinstance(description, str):
            raise TypeError(f"Agent description must be a string, got {description!r}")
        self._running = False
        self._name = name
        self._description = description
        self._tools = self._check_tools(tools)
        self._context_queue = self._check_context(context_queue, ContextQueue, "context_queue")
        self._context_pool = self._check_context(context_pool, ContextPool, "context_pool")
        self._hooks: list[Any] = list(hooks) if hooks is not None else []
        self._tags = normalize_tags(tags, f"Agent {name!r}")
        self._queue: deque[Turn] = deque()
        self._current_turn: Turn | None = None
        self._paused = False
        self._resumed: asyncio.Event | None = None
        self._nonempty: asyncio.Event | None = None
        AgentRegistry.register(self)

    # -- construction helpers ----------------------------------------------------------------

    def _check_tools(self, tools: Any) -> dict[str, Tool]:
        if isinstance(tools, str | bytes) or not isinstance(tools, Iterable):
            raise TypeError(f"Agent {self._name!r}: tools must be a list of tools, got {tools!r}")
        checked: dict[str, Tool] = {}
        for t in tools:
            name = getattr(getattr(t, "metadata", None), "name", None)
            if not isinstance(name, str):
                raise TypeError(
                    f"Agent {self._name!r}: {t!r} is not a tool; decorate it with @tool()"
                )
            registered = ToolRegistry._items.get(name)
            if registered is None or registered is not t:
                raise ValueError(
                    f"Agent {self._name!r}: tool {name!r} is not the instance registered in "
                    f"ToolRegistry; pass the decorated tool itself"
                )
            checked[name] = registered
        return checked

    def _check_context(self, value: Any, cls: type, what: str) -> Any:
        if value is None:
            value = (
                ContextQueue(DEFAULT_CONTEXT_QUEUE_LIMIT) if cls is ContextQueue else ContextPool()
            )
        elif not isinstance(value, cls):
            raise TypeError(f"Agent {self._name!r}: {what} must be a {cls.__name__}, got {value!r}")
        value._adopt(self._name)
        return value

    def _guard(self, name: str) -> None:
        if self._running:
            raise SafeExecutionError(
                f"Cannot change {name!r} of agent {self._name!r} while it is running"
            )

    # -- attributes (immutable while running) --------------------------------------------------

    @property
    def name(self) -> str:
        """The agent's unique name."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._guard("name")
        if not isinstance(value, str) or not value:
            raise TypeError(f"Agent name must be a non-empty string, got {value!r}")
        if value != self._name:
            old = self._name
            self._name = value
            try:
                AgentRegistry.register(self)
            except ValueError:
                self._name = old
                raise
            AgentRegistry.discard(old, self)
            for owned in (self._context_queue, self._context_pool):
                if owned._owner == old:
                    owned._owner = value

    @property
    def description(self) -> str:
        """What the agent does."""
        return self._description

    @description.setter
    def description(self, value: str) -> None:
        self._guard("description")
        if not isinstance(value, str):
            raise TypeError(f"Agent description must be a string, got {value!r}")
        self._description = value

    @property
    def tools(self) -> list[Tool]:
        """The agent's tools (a copy)."""
        return list(self._tools.values())

    @tools.setter
    def tools(self, value: Iterable[Tool]) -> None:
        self._guard("tools")
        self._tools = self._check_tools(value)

    @property
    def hooks(self) -> list[Any]:
        """The agent's instance hooks (the list itself; append to add one)."""
        return self._hooks

    @hooks.setter
    def hooks(self, value: Iterable[Any]) -> None:
        self._guard("hooks")
        self._hooks = list(value)

    @property
    def tags(self) -> frozenset[str]:
        """Tags matched by tag-filtered global hooks."""
        return self._tags

    @tags.setter
    def tags(self, value: Iterable[str]) -> None:
        self._guard("tags")
        self._tags = normalize_tags(value, f"Agent {self._name!r}")

    @property
    def context_queue(self) -> ContextQueue:
        """The agent's context window; tool parameters typed ``ContextQueue`` receive it."""
        queue: ContextQueue = self._context_queue
        return queue

    @context_queue.setter
    def context_queue(self, value: ContextQueue) -> None:
        self._guard("context_queue")
        self._context_queue = self._check_context(value, ContextQueue, "context_queue")

    @property
    def context_pool(self) -> ContextPool:
        """The agent's keyed store; tool parameters typed ``ContextPool`` receive it."""
        pool: ContextPool = self._context_pool
        return pool

    @context_pool.setter
    def context_pool(self, value: ContextPool) -> None:
        self._guard("context_pool")
        self._context_pool = self._check_context(value, ContextPool, "context_pool")

    @property
    def queue(self) -> list[Turn]:
        """The queued turns, next first (a copy)."""
        return list(self._queue)

    @property
    def current_turn(self) -> Turn | None:
        """The turn in flight, or None between turns."""
        return self._current_turn

    @property
    def is_running(self) -> bool:
        """True while ``run()`` is active."""
        return self._running

    @property
    def is_paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._paused

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"Agent({self._name!r}, queued={len(self._queue)}, running={self._running})"

    # -- hooks -----------------------------------------------------------------------------

    def _fire(self, hook_type: AgentHook, *args: Any) -> Awaitable[Any]:
        pending = fire(
            hook_type, (self._hooks,), GLOBAL_BY_TYPE[hook_type], self._tags, self, *args
        )
        if pending is DONE:
            return pending
        outer = FRAME.get()
        if outer[0] is self:
            return pending
        return self._in_frame(pending, outer)

    async def _in_frame(self, pending: Awaitable[Any], outer: tuple[Any, Any, Any]) -> Any:
        # Agent hooks run with current_agent() == this agent (context injection, telemetry);
        # current_turn() stays whatever turn is executing (e.g. the sender of send()).
        FRAME.set((self, outer[1], outer[2]))
        try:
            return await pending
        finally:
            FRAME.set(outer)

    # -- queue -----------------------------------------------------------------------------

    async def put(self, turn: Turn) -> None:
        """Enqueue ``turn``.

        Raises:
            TypeError: ``turn`` is not a ``Turn``.
            ValueError: the turn's tool is not one of this agent's tools.
        """
        if not isinstance(turn, Turn):
            raise TypeError(f"Agent {self._name!r}: put() takes a Turn, got {type(turn).__name__}")
        tool = turn._tool
        if self._tools.get(tool.metadata.name) is not tool:
            raise ValueError(
                f"Agent {self._name!r} has no tool {tool.metadata.name!r}; its tools are "
                f"{sorted(self._tools)}"
            )
        hooks = self._hooks
        if hooks or _G_BEFORE_PUT:
            await self._fire(AgentHook.BEFORE_PUT, turn)
        turn._enqueued = time()
        self._queue.append(turn)
        if self._nonempty is not None:
            self._nonempty.set()
        if hooks or _G_AFTER_PUT:
            await self._fire(AgentHook.AFTER_PUT, turn)

    async def pop(self) -> Turn:
        """Take the next turn off the queue, waiting until there is one."""
        while not self._queue:
            if self._nonempty is None:
                self._nonempty = asyncio.Event()
            self._nonempty.clear()
            await self._nonempty.wait()
        return self._queue.popleft()

    async def send(self, name: str, turn: Turn) -> None:
        """Put ``turn`` on the queue of the agent called ``name``.

        Raises:
            UnregisteredAgentError: no agent has that name.
        """
        await AgentRegistry.get(name).put(turn)

    async def send_turn(self, name: str, turn: Turn) -> None:
        """Deprecated alias of ``send()``."""
        warnings.warn(
            "Agent.send_turn() is deprecated; use Agent.send()", DeprecationWarning, stacklevel=2
        )
        await self.send(name, turn)

    # -- pause / resume ----------------------------------------------------------------------

    def pause(self) -> None:
        """Stop the run loop before its next turn, until ``resume()``."""
        self._paused = True

    def resume(self) -> None:
        """Release a paused run loop."""
        self._paused = False
        if self._resumed is not None:
            self._resumed.set()

    async def _gate(self) -> None:
        hooked = bool(self._hooks or _AGENT_GLOBALS)
        if hooked:
            await self._fire(AgentHook.ON_PAUSE)
        while self._paused:
            self._resumed = asyncio.Event()
            await self._resumed.wait()
        self._resumed = None
        if hooked:
            await self._fire(AgentHook.ON_RESUME)

    # -- the run loop ------------------------------------------------------------------------

    async def _deliver(self, turn: Turn, value: Any) -> None:
        """Route a value (a Turn or ContextItem), then fire ON_TURN_VALUE."""
        if isinstance(value, _ROUTED):
            await self._route(value, turn)
        if self._hooks:
            await self._fire(AgentHook.ON_TURN_VALUE, turn, value)
        elif _G_TURN_VALUE:
            # The run loop's frame is this agent's whenever a global agent hook exists.
            await fire_global(_G_TURN_VALUE, self._tags, self, turn, value)

    async def _route(self, value: Any, source: Turn) -> None:
        # Routing runs in the producing turn's frame, so put/append/add hooks see
        # current_turn() == the turn whose output is being routed.
        outer = FRAME.get()
        FRAME.set((self, source, source._tool))
        try:
            if isinstance(value, Turn):
                await self.put(value)
            elif value.id is None:
                await self._context_queue.append(value)
            else:
                await self._context_pool.add(value)
        finally:
            FRAME.set(outer)

    async def run(self) -> AsyncGenerator[tuple[Turn, Any], None]:
        """Run queued turns in order, yielding ``(turn, value)``; return when the queue is empty.

        A returned ``Turn`` is enqueued; a returned ``ContextItem`` goes to the context queue
        (no id) or the context pool (with id). A tool error or timeout propagates; the agent
        then stops running and every turn still queued stays queued.

        Raises:
            SafeExecutionError: the agent is already running.
        """
        if self._running:
            raise SafeExecutionError(f"Agent {self._name!r} is already running")
        self._running = True
        queue = self._queue
        hooks = self._hooks
        error: BaseException | None = None
        done = 0
        # Between turns, current_agent() is this agent; around each yield the consumer's
        # frame is put back, so code between iterations sees its own.
        outer = FRAME.get()
        mine = (self, None, None)
        # Execution scopes (a tracer's run span) are current during each step of the run,
        # hooks included, and detached around each yield like the frame.
        opened = _scope.open_run(self) if SCOPES else None
        tokens = _scope.attach(opened) if opened else None
        # With hooks or scopes, the frame between turns is this agent's (put back around
        # each yield); without, nobody looks at it, so it is not touched per turn.
        juggle = bool(hooks or _AGENT_GLOBALS or opened)
        if juggle:
            FRAME.set(mine)
        try:
            if hooks or _AGENT_GLOBALS:
                await self._fire(AgentHook.ON_RUN_START)
            while queue:
                if self._paused:
                    await self._gate()
                    if not queue:
                        break
                if hooks or _AGENT_GLOBALS:
                    if not juggle:
                        juggle = True
                        FRAME.set(mine)
                    if hooks or _G_BEFORE_TURN:
                        if hooks:
                            await self._fire(AgentHook.BEFORE_TURN)
                        else:  # the frame is this agent's (juggle)
                            await fire_global(_G_BEFORE_TURN, self._tags, self)
                        if not queue:
                            break
                turn = queue.popleft()
                self._current_turn = turn
                if turn._tool.is_generator:
                    stream = run_yielding(turn, self)
                    try:
                        while True:
                            try:
                                value = await stream.__anext__()
                            except StopAsyncIteration:
                                break
                            except Exception as exc:
                                _note(exc, self, turn)
                                raise
                            if hooks or _G_TURN_VALUE or isinstance(value, _ROUTED):
                                await self._deliver(turn, value)
                            if opened:
                                FRAME.set(outer)
                                _scope.detach(opened, tokens)  # type: ignore[arg-type]
                                tokens = None
                                try:
                                    yield turn, value
                                finally:
                                    FRAME.set(mine)
                                    tokens = _scope.attach(opened)
                            elif juggle:
                                FRAME.set(outer)
                                yield turn, value
                                FRAME.set(mine)
                            else:
                                yield turn, value
                    finally:
                        await stream.aclose()
                    self._current_turn = None
                else:
                    try:
                        value = await run_returning(turn, self)
                    except Exception as exc:
                        _note(exc, self, turn)
                        raise
                    self._current_turn = None
                    if hooks or _G_TURN_VALUE or isinstance(value, _ROUTED):
                        await self._deliver(turn, value)
                    if opened:
                        FRAME.set(outer)
                        _scope.detach(opened, tokens)  # type: ignore[arg-type]
                        tokens = None
                        try:
                            yield turn, value
                        finally:
                            FRAME.set(mine)
                            tokens = _scope.attach(opened)
                    elif juggle:
                        FRAME.set(outer)
                        yield turn, value
                        FRAME.set(mine)
                    else:
                        yield turn, value
                if hooks:
                    await self._fire(AgentHook.AFTER_TURN, turn)
                elif _G_AFTER_TURN:
                    await fire_global(_G_AFTER_TURN, self._tags, self, turn)
                done += 1
                if not done % _BREATHE_EVERY:
                    await asyncio.sleep(0)
        except BaseException as exc:
            error = exc
            raise
        finally:
            FRAME.set(mine)
            self._current_turn = None
            self._running = False
            try:
                if hooks or _AGENT_GLOBALS:
                    await self._fire(
                        AgentHook.ON_RUN_END, None if isinstance(error, GeneratorExit) else error
                    )
            finally:
                FRAME.set(outer)
                if opened:
                    if tokens is not None:
                        _scope.detach(opened, tokens)
                    _scope.close_run(opened, self, error)

    # -- branching and serialization ---------------------------------------------------------

    def branch(
        self,
        name: str,
        tools: Iterable[Tool] | None = None,
        hooks: Iterable[Any] | None = None,
        description: str | None = None,
    ) -> Agent:
        """Return a new agent that starts as a copy of this one.

        The child inherits the description, tools, hooks, tags, a branch of the context queue
        and pool, and copies of the queued turns whose tool it has.

        Args:
            name: the child's (unique) name.
            tools: override the tools.
            hooks: override the hooks (``[]`` for none).
            description: override the description.
        """
        child = Agent(
            name,
            self._description if description is None else description,
            self._tools.values() if tools is None else tools,
            context_queue=self._context_queue.branch(),
            context_pool=self._context_pool.branch(),
            hooks=self._hooks if hooks is None else hooks,
            tags=self._tags,
        )
        child._queue.extend(
            _copy_turn(t) for t in self._queue if child._tools.get(t.tool.metadata.name) is t.tool
        )
        return child

    def to_dict(self) -> dict[str, Any]:
        """Return the agent as a JSON-compatible dict.

        Includes the queue, the turn in flight (``current_turn``), hooks by name, the context
        queue and pool, and the paused state.
        """
        current = self._current_turn
        return {
            "name": self._name,
            "description": self._description,
            "tool_names": list(self._tools),
            "tags": sorted(self._tags),
            "hooks": [h.metadata.name for h in self._hooks],
            "queue": [t.to_dict() for t in self._queue],
            "current_turn": None if current is None else current.to_dict(),
            "context_queue": self._context_queue.to_dict(),
            "context_pool": self._context_pool.to_dict(),
            "is_paused": self._paused,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Agent:
        """Rebuild an agent from ``to_dict()`` output and register it.

        A ``current_turn`` (a turn that was in flight) is queued first, so it runs again.
        Names resolve only through the registries; nothing is imported or evaluated.

        Raises:
            SerializationError: a field is missing, has the wrong type, or a queued turn
                uses a tool outside ``tool_names``.
            UnregisteredToolError / UnregisteredHookError: a name is not registered.
            ValueError: an agent with this name is already registered.
        """
        where = "Agent.from_dict"
        data = _serde.mapping(data, where)
        name = _serde.field(data, "name", str, where)
        if not name:
            raise SerializationError(f"{where}: field 'name' must not be empty")
        where = f"Agent.from_dict({name!r})"
        description = _serde.field(data, "description", str, where)
        tools = [ToolRegistry.get(n) for n in _serde.string_list(data, "tool_names", where)]
        tool_names = {t.metadata.name for t in tools}
        turns: list[Turn] = []
        current = _serde.field(data, "current_turn", (dict, type(None)), where, default=None)
        raw_queue = _serde.field(data, "queue", list, where, default=[])
        offset = 0 if current is None else 1
        for i, raw in enumerate(([current] if current is not None else []) + raw_queue):
            path = "'current_turn'" if i < offset else f"'queue'[{i - offset}]"
            turn = _serde.nested(where, path, Turn.from_dict, raw)
            if turn.tool.metadata.name not in tool_names:
                raise SerializationError(
                    f"{where}: field {path} uses tool {turn.tool.metadata.name!r}, "
                    f"which is not in 'tool_names'"
                )
            turns.append(turn)
        context_queue = (
            _serde.nested(where, "'context_queue'", ContextQueue.from_dict, data["context_queue"])
            if data.get("context_queue") is not None
            else None
        )
        context_pool = (
            _serde.nested(where, "'context_pool'", ContextPool.from_dict, data["context_pool"])
            if data.get("context_pool") is not None
            else None
        )
        hooks = _serde.hooks_from(data, where)
        tags = _serde.tags_from(data, where)
        paused = _serde.field(data, "is_paused", bool, where, default=False)
        agent = cls(name, description, tools, context_queue, context_pool, hooks=hooks, tags=tags)
        agent._queue.extend(turns)
        agent._paused = paused
        return agent
