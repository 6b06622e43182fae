"""Agents: a queue of turns, a set of tools, hooks, and their context."""

from __future__ import annotations

import asyncio
import warnings
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Iterable, Iterator, Mapping
from time import time
from typing import Any

from . import _agent_serde, _definitions, _routing, _scope
from ._agent_run import run_agent
from ._context import ContextPool, ContextQueue
from ._dispatch import DONE, fire
from ._enums import AgentHook, TurnHook
from ._frame import get_frame, set_frame
from ._hooks import HookPoint, hook_list, normalize_tags
from ._registry import GLOBAL_BY_TYPE, AgentRegistryBase, ToolRegistry
from ._scope import FRAMED_ENQUEUE, SCOPES
from ._tool import Tool
from ._tool_call import turn_from_call
from ._turn import Turn
from .errors import SafeExecutionError, UnregisteredToolError, is_collection

__all__ = ["DEFAULT_CONTEXT_QUEUE_LIMIT", "Agent", "AgentRegistry", "UnregisteredAgentToolError"]

#: Limit of the context queue an agent creates when none is given.
DEFAULT_CONTEXT_QUEUE_LIMIT = 10
_BEFORE_PUT = AgentHook.BEFORE_PUT  # read per put: a module global, not an enum lookup
_AFTER_PUT = AgentHook.AFTER_PUT
_G_BEFORE_PUT = GLOBAL_BY_TYPE[_BEFORE_PUT]
_G_AFTER_PUT = GLOBAL_BY_TYPE[_AFTER_PUT]
_KEEP: Any = object()


class UnregisteredAgentToolError(UnregisteredToolError, ValueError):
    """Raised when an agent is given a tool whose name no tool is registered under.

    Both an ``UnregisteredToolError`` (as the original raises) and a ``ValueError`` (as an
    agent given the wrong tool instance raises).
    """


class Agent:
    """Runs a queue of turns with a fixed set of tools and streams ``(turn, value)`` pairs.

    Args:
        name: unique name; the agent registers itself in ``AgentRegistry``.
        description: what the agent does.
        tools: the tools its turns may use (the instances in ``ToolRegistry``).
        context_pool: its keyed store (default: a new unbounded ``ContextPool()``).
        context_queue: its context window (default: a new ``ContextQueue(limit=10)``).
        tags: tags matched by tag-filtered global hooks.
        hooks: agent hooks to start with (keyword only).
        turn_hooks: turn hooks fired for every turn it runs (keyword only).

    Raises:
        TypeError: an argument has the wrong type.
        UnregisteredAgentToolError: a tool's name is not registered (also a ``ValueError``).
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
    # Turn hooks set on the agent go to turn_hooks and fire for every turn it runs.
    on_error = HookPoint["Agent"](TurnHook.ON_ERROR, attr="turn_hooks")
    on_timeout = HookPoint["Agent"](TurnHook.ON_TIMEOUT, attr="turn_hooks")
    on_complete = HookPoint["Agent"](TurnHook.ON_COMPLETE, attr="turn_hooks")

    def __init__(
        self,
        name: str,
        description: str,
        tools: Iterable[Tool],
        context_pool: ContextPool | None = None,
        context_queue: ContextQueue | None = None,
        tags: Iterable[str] | None = None,
        *,
        hooks: Iterable[Any] | None = None,
        turn_hooks: Iterable[Any] | None = None,
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
        self._hooks = hook_list(hooks, f"Agent {name!r}: hooks")
        self._turn_hooks = hook_list(turn_hooks, f"Agent {name!r}: turn_hooks")
        self._tags = normalize_tags(tags, f"Agent {name!r}")
        self._queue: deque[Turn] = deque()
        self._current_turn: Turn | None = None
        self._watch: Any = None  # the run loop's (see _agent_run)
        self._paused = False
        self._resumed: asyncio.Event | None = None
        self._nonempty: asyncio.Event | None = None
        self._service: Any = None  # the Service serving it (see _serve)
        #: (seq, saved_at) of the last checkpoint a Service saved of it: that checkpoint is
        #: not restored into it again (it holds that state, and anything put since).
        self._checkpoint: tuple[int, float] | None = None
        AgentRegistry.register(self)

    # -- construction helpers ----------------------------------------------------------------

    def _check_tools(self, tools: Any) -> dict[str, Tool]:
        if not is_collection(tools):
            raise TypeError(f"Agent {self._name!r}: tools must be a list of tools, got {tools!r}")
        checked: dict[str, Tool] = {}
        for t in tools:
            name = getattr(getattr(t, "metadata", None), "name", None)
            if not isinstance(name, str):
                raise TypeError(
                    f"Agent {self._name!r}: {t!r} is not a tool; decorate it with @tool()"
                )
            name = str(getattr(t, "__name__", name))  # a subtool's registry name: parent.child
            registered = ToolRegistry._items.get(name)
            if registered is None:
                raise UnregisteredAgentToolError(
                    f"Agent {self._name!r}: tool {name!r} not found in ToolRegistry; "
                    f"decorate it with @tool() (and do not unregister it)"
                )
            if registered is not t:
                raise ValueError(
                    f"Agent {self._name!r}: tool {name!r} is registered but not the instance "
                    f"given to this agent; pass the decorated tool itself"
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
        if self._running or self._paused:
            state = "running" if self._running else "paused"
            raise SafeExecutionError(
                f"Cannot change property {name!r} while the agent is {state} "
                f"(agent {self._name!r}); change it before run() or after it ends"
                + ("" if self._running else ", or after resume()")
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
    def hooks(self, value: Iterable[Any] | None) -> None:
        # None means no hooks, as in the constructor.
        self._guard("hooks")
        self._hooks = hook_list(value, f"Agent {self._name!r}: hooks")

    @property
    def turn_hooks(self) -> list[Any]:
        """Turn hooks fired for every turn the agent runs (the list itself).

        ``@agent.on_error``, ``@agent.on_timeout`` and ``@agent.on_complete`` append here.
        They fire after the turn's own hooks and before global hooks.
        """
        return self._turn_hooks

    @turn_hooks.setter
    def turn_hooks(self, value: Iterable[Any] | None) -> None:
        self._guard("turn_hooks")
        self._turn_hooks = hook_list(value, f"Agent {self._name!r}: turn_hooks")

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
    def turns(self) -> list[Turn]:
        """The queued turns, next first (a new list; the turn in flight is not included)."""
        return list(self._queue)

    def __iter__(self) -> Iterator[Turn]:
        return iter(list(self._queue))

    @property
    def current_turn(self) -> Turn | None:
        """The turn in flight, or None between turns."""
        return self._current_turn

    @property
    def is_running(self) -> bool:
        """True while ``run()`` is active."""
        return self._running

    @property
    def is_serving(self) -> bool:
        """True while a ``Service`` serves the agent (``serve()``)."""
        return self._service is not None

    @property
    def is_paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""
        return self._paused

    def __len__(self) -> int:
        return len(self._queue)

    def __bool__(self) -> bool:
        # Always true: an agent is a thing, not a collection. Without this, ``__len__`` would
        # make an agent with an empty queue (e.g. while it runs its last turn) falsy, and
        # ``if current_agent():`` would wrongly read as "no agent".
        return True

    def __repr__(self) -> str:
        return f"Agent(name={self._name!r}, tools={list(self._tools)!r})"

    # -- hooks -----------------------------------------------------------------------------

    def _fire(self, hook_type: AgentHook, *args: Any) -> Awaitable[Any]:
        pending = fire(
            hook_type, (self._hooks,), GLOBAL_BY_TYPE[hook_type], self._tags, self, *args
        )
        if pending is DONE:
            return pending
        outer = get_frame()
        if outer[0] is self:
            return pending
        return self._in_frame(pending, outer)

    async def _in_frame(self, pending: Awaitable[Any], outer: tuple[Any, Any, Any]) -> Any:
        # Agent hooks run with current_agent() == this agent (context injection, telemetry);
        # current_turn() stays whatever turn is executing (e.g. the sender of send()).
        set_frame((self, outer[1], outer[2]))
        try:
            return await pending
        finally:
            set_frame(outer)

    # -- queue -----------------------------------------------------------------------------

    async def put(self, turn: Turn) -> None:
        """Enqueue ``turn``.

        Raises:
            TypeError: ``turn`` is not a ``Turn``.
            ValueError: the turn's tool is not one of this agent's tools.
        """
        hooks = self._hooks
        if not (hooks or _G_BEFORE_PUT or _G_AFTER_PUT or SCOPES):
            self._enqueue(turn)
            return
        self._accept(turn)
        # What two ``_fire`` calls do, with the frame switched once for both (when put is
        # called outside this agent's frame) and no coroutine of ``_in_frame``'s per hook.
        # With no hook, only for a scope whose enqueue asks for it (enqueue_in_frame).
        outer = get_frame()
        switched = outer[0] is not self and (
            True if hooks or _G_BEFORE_PUT or _G_AFTER_PUT or FRAMED_ENQUEUE else False
        )
        if switched:
            set_frame((self, outer[1], outer[2]))
        try:
            if hooks or _G_BEFORE_PUT:
                pending = fire(_BEFORE_PUT, (hooks,), _G_BEFORE_PUT, self._tags, self, turn)
                if pending is not DONE:
                    await pending
            if SCOPES:  # no await from here until the turn is in the queue
                _scope.enqueue(self, turn)
            turn._enqueued = time()
            self._queue.append(turn)
            if self._nonempty is not None:
                self._nonempty.set()
            if hooks or _G_AFTER_PUT:
                pending = fire(_AFTER_PUT, (hooks,), _G_AFTER_PUT, self._tags, self, turn)
                if pending is not DONE:
                    await pending
        finally:
            if switched:
                set_frame(outer)

    def _enqueue(self, turn: Turn) -> None:
        """``put()`` without its hooks: accept and enqueue ``turn`` now.

        Only while no put hook and no execution scope exists (a scope's ``enqueue`` is
        called by ``put()``).
        """
        # _accept's tests written out for a plain Turn (a subscript in a try block, not
        # dict.get: ~100 instructions less); _accept raises.
        if turn.__class__ is not Turn:
            self._accept(turn)
        else:
            tool = turn._tool
            try:
                if self._tools[tool.__name__] is not tool:
                    self._accept(turn)
            except KeyError:
                self._accept(turn)
        turn._enqueued = time()
        self._queue.append(turn)
        if self._nonempty is not None:
            self._nonempty.set()

    def _accept(self, turn: Turn, method: str = "put") -> None:
        if not isinstance(turn, Turn):
            raise TypeError(
                f"Agent {self._name!r}: {method}() takes a Turn, got {type(turn).__name__}"
            )
        tool = turn._tool
        if self._tools.get(tool.__name__) is not tool:
            raise ValueError(
                f"Agent {self._name!r} does not accept tool {tool.__name__!r}: its tools "
                f"are {sorted(self._tools)}"
            )

    def requeue(self, turn: Turn) -> None:
        """Put ``turn`` back at the head of the queue, without put hooks.

        For a retry of a turn that was put before (its put hooks fired then): the next turn the
        agent runs. A distributed worker re-queues a failed turn this way.

        Raises:
            TypeError: ``turn`` is not a ``Turn``.
            ValueError: the turn's tool is not one of this agent's tools.
        """
        self._accept(turn, "requeue")
        self._queue.appendleft(turn)
        if self._nonempty is not None:
            self._nonempty.set()

    def reset(self) -> None:
        """Forget the agent's state: empty its queue, context queue and context pool; unpause.

        No hook fires: this is for an agent about to take its state from elsewhere (a
        checkpoint restored into it, e.g. by a worker taking the agent over), not an event of
        its life.

        Raises:
            SafeExecutionError: the agent is running.
        """
        if self._running:
            raise SafeExecutionError(f"Agent {self._name!r} is running: reset() it when idle")
        self._queue.clear()
        self._context_queue._items.clear()
        self._context_pool._items.clear()
        self._paused = False
        self._resumed = None
        self._checkpoint = None  # empty now: a checkpoint is restored into it again

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
            TypeError: ``name`` is not a string, or ``turn`` is not a ``Turn``.
            UnregisteredAgentError: no agent has that name.
        """
        given: Any = name  # checked: callers may pass anything
        if not isinstance(given, str):
            raise TypeError(
                f"Agent {self._name!r}: send() takes an agent name (a str), got "
                f"{type(given).__name__}"
            )
        given = turn
        if not isinstance(given, Turn):
            raise TypeError(
                f"Agent {self._name!r}: send() takes a Turn, got {type(given).__name__}"
            )
        router = _routing._router
        if router is not None and await router(self, name, turn):
            return  # taken by the installed router (a worker's queue: see set_send_router)
        await AgentRegistry.get(name).put(turn)

    # -- model tool calls --------------------------------------------------------------------

    def definitions(self, style: str | None = None, *, strict: bool = True) -> list[dict[str, Any]]:
        """Describe this agent's tools for a model (see ``ToolRegistry.definitions``).

        Args:
            style: None for ``doc_tree()`` entries; ``"openai"``, ``"openai-responses"``,
                ``"anthropic"`` or ``"mcp"`` for that API's tool shape.
            strict: for the OpenAI styles, ask for strict mode where the schema allows it.

        Raises:
            ValueError: ``style`` is unknown.
        """
        return _definitions.definitions(self._tools.values(), style, strict=strict)

    def turn_from_call(
        self,
        name: str,
        arguments: str | bytes | Mapping[str, Any] | None,
        *,
        timeout: float | None = 60,
        tags: Iterable[str] | None = None,
    ) -> Turn:
        """Build the turn a model's tool call asks for, among this agent's tools.

        See ``pygents.turn_from_call``: the arguments (a JSON string or a dict) are checked
        against the tool's input schema first, and every problem is reported at once.

        Raises:
            ToolCallError: the tool is not one of this agent's, or the arguments are invalid;
                ``str(error)`` is written for the model to read and correct.
        """
        return turn_from_call(
            name, arguments, tools=self._tools.values(), timeout=timeout, tags=tags
        )

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

    def run(self) -> AsyncGenerator[tuple[Turn, Any], None]:
        """Run queued turns in order, yielding ``(turn, value)``; return when the queue is empty.

        Values the agent routes are not yielded: a returned (or yielded) ``Turn`` is
        enqueued and runs later in the same ``run()``; a ``ContextItem`` goes to the context
        queue (no id) or the context pool (with id). ``ON_TURN_VALUE`` fires for every value,
        routed or not. A tool error or timeout propagates; the agent then stops running and
        every turn still queued stays queued.

        Raises:
            SafeExecutionError: the agent is already running.
        """
        return run_agent(self)

    # -- branching and serialization ---------------------------------------------------------

    def branch(
        self,
        name: str,
        description: str | None = None,
        tools: Iterable[Tool] | None = None,
        hooks: Iterable[Any] | None = _KEEP,
    ) -> Agent:
        """Return a new agent that starts as a copy of this one.

        The child inherits the description, tools, hooks, turn hooks, tags, a branch of the
        context queue and pool, and a copy of every queued turn.

        Args:
            name: the child's (unique) name.
            description: override the description.
            tools: override the tools; they must include the tool of every queued turn.
            hooks: override the agent hooks: a list (copied), or None / ``[]`` for none;
                omitted, a copy of this agent's. Turn hooks are always copied.

        Raises:
            ValueError: the name is taken, or ``tools`` lacks the tool of a queued turn
                (``does not accept tool``; nothing is created, no turn is dropped).
        """
        return _agent_serde.branch(self, name, description, tools, hooks, _KEEP)

    def to_dict(self) -> dict[str, Any]:
        """Return the agent as a JSON-compatible dict.

        Includes the queue, the turn in flight (``current_turn``), hooks and turn hooks by
        type and name, the context queue and pool, and the paused state.
        """
        return _agent_serde.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any, *, tools: Iterable[Tool | str] | None = None) -> Agent:
        """Rebuild an agent from ``to_dict()`` output and register it.

        A ``current_turn`` (a turn that was in flight) is queued first, so it runs again.
        Names resolve only through the registries; nothing is imported or evaluated. The
        paused state is restored last. The restored agent takes over its name from an idle
        agent registered under it (typically the one that was saved).

        Args:
            data: what ``to_dict()`` returned (for example, parsed from JSON).
            tools: an allow-list (tools or names): a payload naming any other tool is
                refused, so untrusted data cannot grant the agent a tool it never had.

        Raises:
            SerializationError: a field is missing, has the wrong type, names a tool outside
                ``tool_names`` or the allow-list, or a queued turn has a callable argument.
            UnregisteredToolError / UnregisteredHookError: a name is not registered.
            ValueError: an agent with this name is registered and running.
            TypeError: ``tools`` is not a list of tools or tool names (a bare string, say).
        """
        return _agent_serde.from_dict(cls, data, tools)


class AgentRegistry(AgentRegistryBase):
    """Every constructed agent, by name.

    ``get(name)`` returns the agent or raises ``UnregisteredAgentError``; ``all()`` lists
    them in registration order; ``register``, ``unregister`` and ``clear`` as for tools.
    """

    @classmethod
    def get(cls, name: str) -> Agent:
        """Return the agent registered under ``name``; raise if there is none."""
        found: Agent = super().get(name)
        return found

    @classmethod
    def all(cls) -> list[Agent]:
        """Return every registered agent, in registration order."""
        found: list[Agent] = super().all()
        return found
