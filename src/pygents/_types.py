"""What a tool, a hook, a turn and an agent are to the rest of the core.

The bottom of the core (with ``_enums``, ``errors`` and ``_frame``): the metadata classes and
protocols every layer types against, so that no module needs to import one above it. The
registries type their contents with ``Tool`` and ``Hook``; turn execution (``_turn_run``)
sees a ``TurnState``; the run loop and serialization of agents (``_agent_run``,
``_agent_serde``) see an ``AgentState``. ``_tool``, ``_hooks``, ``_turn`` and ``_agent``
build the objects that satisfy them.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._enums import HookType

if TYPE_CHECKING:
    from ._hook_list import HookList

__all__ = ["AgentState", "Hook", "HookMetadata", "Tool", "ToolMetadata", "TurnState"]


def _as_datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


class ToolMetadata:
    """A tool's name, description (its docstring), schemas and the times of its last invocation.

    Args:
        name: the tool's (short) name.
        description: its docstring.
        spec: keyword only: makes the object behind ``input_schema`` / ``output_schema``,
            called once, on first read (pygents passes it; a bare metadata has none).
    """

    __slots__ = ("_end", "_make_spec", "_spec", "_start", "description", "name")

    def __init__(
        self, name: str, description: str | None, *, spec: Callable[[], Any] | None = None
    ) -> None:
        self.name = name
        self.description = description
        self._start: float | None = None
        self._end: float | None = None
        self._make_spec = spec
        self._spec: Any = None

    @property
    def spec(self) -> Any:
        """The tool's model-facing description (``_schema.ToolSpec``), built on first use."""
        spec = self._spec
        if spec is None and self._make_spec is not None:
            spec = self._spec = self._make_spec()
        return spec

    @property
    def input_schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the arguments a caller supplies, as a dict.

        Built from the type hints on first read. Parameters the agent injects
        (``ContextQueue``, ``ContextPool``) and fixed decorator kwargs are left out.
        """
        spec = self.spec
        return {"type": "object"} if spec is None else spec.input_schema

    @property
    def output_schema(self) -> dict[str, Any]:
        """JSON Schema of the return value (of one yielded item, for a streaming tool)."""
        spec = self.spec
        return {} if spec is None else spec.output_schema

    @property
    def start_time(self) -> datetime | None:
        """When the last invocation started (UTC), or None."""
        return _as_datetime(self._start)

    @property
    def end_time(self) -> datetime | None:
        """When the last invocation ended (UTC), or None."""
        return _as_datetime(self._end)

    def dict(self) -> dict[str, Any]:
        """Return the metadata as a plain dict (times as ISO 8601 strings).

        Keys: ``name``, ``description``, ``start_time``, ``end_time``, ``input_schema``,
        ``output_schema`` (the schemas are fresh copies).
        """
        start, end = self.start_time, self.end_time
        return {
            "name": self.name,
            "description": self.description,
            "start_time": start.isoformat() if start else None,
            "end_time": end.isoformat() if end else None,
            "input_schema": copy.deepcopy(self.input_schema),
            "output_schema": copy.deepcopy(self.output_schema),
        }

    def __repr__(self) -> str:
        return f"ToolMetadata(name={self.name!r})"


@runtime_checkable
class Tool(Protocol):
    """What agents and turns need from a tool."""

    metadata: ToolMetadata
    hooks: list[Any]
    tags: frozenset[str]
    is_generator: bool
    __name__: str  # the name it is registered under (a subtool's is scoped: parent.child)
    fn: Callable[..., Any]
    fixed_kwargs: dict[str, Any]

    @property
    def subtools(self) -> list[Any]:
        """The tools made with this one's ``@subtool()``, in order."""
        ...

    @property
    def lock(self) -> asyncio.Lock | None:
        """The lock serialising runs (``lock=True``), or None."""
        ...

    # The tool's hook points (``@t.before_invoke`` ...): descriptors on the tool classes,
    # which not every type checker matches against a protocol's property; typed loosely.
    before_invoke: Any
    after_invoke: Any
    on_error: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the tool with its hooks."""
        ...

    def definition(self, style: str, *, strict: bool = True) -> dict[str, Any]:
        """This tool in a model API's tool shape."""
        ...

    def doc_tree(self) -> dict[str, Any]:
        """``{"name", "description", "subtools": [...]}``, recursively."""
        ...


class HookMetadata:
    """A hook's name and description, plus the options it was made with.

    ``HookMetadata(name, description)`` is a value: two compare equal when name and
    description do, and ``dict()`` gives exactly those two. ``types``, ``tags`` and ``lock``
    are pygents additions (keyword-only) that take no part in equality.
    """

    __slots__ = ("description", "lock", "name", "tags", "types")

    def __init__(
        self,
        name: str,
        description: str | None = None,
        *,
        types: tuple[HookType, ...] = (),
        tags: frozenset[str] = frozenset(),
        lock: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.types = types
        self.tags = tags
        self.lock = lock

    @property
    def type(self) -> HookType | None:
        """The first (usually only) hook type, or None when none is recorded."""
        return self.types[0] if self.types else None

    def dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., "description": ...}``."""
        return {"name": self.name, "description": self.description}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HookMetadata):
            return NotImplemented
        return self.name == other.name and self.description == other.description

    def __hash__(self) -> int:
        return hash((self.name, self.description))

    def __repr__(self) -> str:
        return f"HookMetadata(name={self.name!r}, description={self.description!r})"


@runtime_checkable
class Hook(Protocol):
    """What the registries and dispatcher need from a hook."""

    metadata: HookMetadata
    types: tuple[HookType, ...]
    tags: frozenset[str]
    is_global: bool

    @property
    def type(self) -> HookType | tuple[HookType, ...]:
        """The one hook type, or a tuple of them in the order given."""
        ...

    @property
    def fn(self) -> Callable[..., Awaitable[Any]]:
        """The undecorated async function."""
        ...

    @property
    def lock(self) -> asyncio.Lock | None:
        """The lock serialising runs (in the running event loop), or None."""
        ...

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run the hook."""
        ...


class TurnState(Protocol):
    """What executing a turn reads and writes on it (``_turn_run``)."""

    _tool: Any
    _args: list[Any] | tuple[Any, ...]
    _kwargs: dict[str, Any]
    _timeout: float | None
    _hooks: list[Any] | None
    _running: bool
    _start: float | None
    _end: float | None
    _stop_reason: Any
    tags: frozenset[str]
    output: Any

    @property
    def tool_name(self) -> str:
        """The name of the tool the turn runs."""
        ...


class AgentState(Protocol):
    """What the run loop and serialization of agents use (``_agent_run``, ``_agent_serde``)."""

    _name: str
    _description: str
    _tools: dict[str, Any]
    _hooks: HookList
    _turn_hooks: HookList
    _tags: frozenset[str]
    _queue: deque[Any]
    _current_turn: Any
    _watch: Any
    _paused: bool
    _resumed: asyncio.Event | None
    _running: bool
    _context_queue: Any
    _context_pool: Any
    _nonempty: asyncio.Event | None
    _service: Any
    _checkpoint: tuple[int, float] | None

    @property
    def is_paused(self) -> bool:
        """True between ``pause()`` and ``resume()``."""

    def run(self) -> Any:
        """The run loop."""

    def __init__(
        self,
        name: str,
        description: str,
        tools: Iterable[Any],
        context_pool: Any = None,
        context_queue: Any = None,
        tags: Iterable[str] | None = None,
        *,
        hooks: Iterable[Any] | None = None,
        turn_hooks: Iterable[Any] | None = None,
    ) -> None:
        """Build an agent (``from_dict`` and ``branch`` call the class)."""

    @property
    def name(self) -> str:
        """The agent's name."""
        ...

    @property
    def is_running(self) -> bool:
        """True while its run loop is active."""
        ...

    async def put(self, turn: Any) -> None:
        """Enqueue a turn."""

    def _enqueue(self, turn: Any) -> None:
        """Enqueue a turn now, without put hooks (only when none exists)."""
        ...

    def _fire(self, hook_type: Any, *args: Any) -> Awaitable[Any]:
        """Fire an agent hook event."""
        ...
