"""Turns: one tool call with its arguments, timeout, hooks and outcome."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from . import _serde
from ._enums import StopReason, TurnHook
from ._generic import T
from ._hook_list import HookList
from ._hooks import HookPoint, hook_list, normalize_tags
from ._registry import ToolRegistry
from ._tool import AsyncGenTool, CoroutineTool, _BaseTool
from ._turn_metadata import DeferredTraceContext, TurnMetadata
from ._turn_metadata import read as read_metadata
from ._turn_run import run_returning, run_yielding
from .errors import SafeExecutionError, SerializationError, WrongRunMethodError

_R = TypeVar("_R")

if TYPE_CHECKING:
    from ._tool import Tool

__all__ = ["Turn", "TurnMetadata"]

_new = object.__new__

_NO_TAGS: frozenset[str] = frozenset()
_NO_ARGS: tuple[()] = ()  # the empty tuple (one object): a turn's default arguments
_DEFAULT_TIMEOUT = 60


def _resolve_tool(tool: Any) -> Any:
    if isinstance(tool, str):
        return ToolRegistry.get(tool)
    if isinstance(tool, _BaseTool):
        return tool
    raise TypeError(
        f"Turn needs a tool name or a @tool-decorated function, got {tool!r}: "
        f"decorate the function with @tool() first"
    )


def _timer_seconds(value: int | float) -> float:
    """``value`` as the float a timer uses: ``inf`` for an int too large for a float.

    The one rule for what a timer can use, shared by the constructor (which refuses a number
    it makes ``inf`` from a finite value, such as ``10**400``) and ``from_dict`` (which
    refuses every non-finite value).
    """
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    cls = timeout.__class__
    if cls is not int and cls is not float:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"Turn timeout must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"Turn timeout must be > 0 seconds, got {_serde.short(timeout)}")
    # ``math.inf`` is kept (asyncio's timers take it: no deadline, as None); a finite number
    # beyond the floats (10**400) would fail only when the turn runs, so it is refused here.
    if cls is not float and _timer_seconds(timeout) == math.inf:
        raise ValueError(
            f"Turn timeout must be a number of seconds a timer can use (at most about "
            f"1.8e308), got {_serde.short(timeout)}: pass None for no deadline"
        )
    return timeout  # type: ignore[no-any-return]


class Turn(Generic[T]):
    """One unit of work: which tool to run, with which arguments, within which timeout.

    Generic in the value it produces: ``Turn[int]`` is a turn whose ``returning()`` gives an
    ``int`` (to a type checker; unparameterised, it is ``Any``).

    Args:
        tool: a tool, or the name it is registered under.
        timeout: seconds the tool may run (default 60); None (or ``math.inf``) for no limit.
        args: positional arguments; callables among them are called at run time.
        kwargs: keyword arguments; callable values are called at run time.
        tags: tags matched by tag-filtered global hooks.

    Raises:
        UnregisteredToolError: ``tool`` is a name no tool is registered under.
        TypeError: ``tool`` is not a tool, or an argument has the wrong type.
        ValueError: ``timeout`` is not positive, or too large for a timer (``10**400``).
    """

    __slots__ = (
        "_args",
        "_attempt",
        "_end",
        "_enqueued",
        "_given",
        "_hooks",
        "_kwargs",
        "_running",
        "_start",
        "_stop_reason",
        "_tags",
        "_timeout",
        "_tool",
        "_trace_context",
        "output",
    )

    before_run = HookPoint["Turn"](TurnHook.BEFORE_RUN)
    after_run = HookPoint["Turn"](TurnHook.AFTER_RUN)
    on_timeout = HookPoint["Turn"](TurnHook.ON_TIMEOUT)
    on_error = HookPoint["Turn"](TurnHook.ON_ERROR)
    on_complete = HookPoint["Turn"](TurnHook.ON_COMPLETE)

    # Typing: a turn of a tool object is a turn of what that tool returns (a coroutine tool)
    # or yields (a stream); by name, or of a tool typed only as ``Tool``, of ``Any``.
    @overload
    def __init__(
        self: Turn[_R],
        tool: CoroutineTool[..., _R] | AsyncGenTool[..., _R],
        timeout: float | None = 60,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        tool: Tool | str,
        timeout: float | None = 60,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None: ...
    def __init__(
        self,
        tool: Tool | str,
        timeout: float | None = 60,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        cls = tool.__class__
        if cls is str:
            # By name, the common case: one lookup (a test with `in` first: ~100 more).
            try:
                self._tool: Tool = _TOOLS[tool]  # type: ignore[index]
            except KeyError:  # UnregisteredToolError, raised `from None`: no KeyError shown
                self._tool = _resolve_tool(tool)
        elif cls is CoroutineTool or cls is AsyncGenTool:  # not `in` a tuple: ~400 more
            self._tool = tool  # type: ignore[assignment]
        else:
            self._tool = _resolve_tool(tool)
        # The default (a cached small int: the same object wherever 60 is written) tested by
        # identity, not by value and type (~120 instructions less).
        self._timeout = timeout if timeout is _DEFAULT_TIMEOUT else _check_timeout(timeout)
        if args is None:
            # The empty tuple, not a list: the run calls the tool with ``*args``, and a list
            # costs a tuple made from it (~250 instructions a turn). ``args`` reads as a list.
            self._args: list[Any] | tuple[Any, ...] = _NO_ARGS
        elif args.__class__ is list or args.__class__ is tuple:
            self._args = args
        else:
            self._args = _check_args(args)
        if kwargs is None:
            self._kwargs: dict[str, Any] = {}
        elif kwargs.__class__ is dict:
            for key in kwargs:
                if key.__class__ is not str and not isinstance(key, str):
                    raise TypeError(f"Turn kwargs keys must be strings, got {key!r}")
            self._kwargs = kwargs
        else:
            self._kwargs = _check_kwargs(kwargs)
        self._tags = _NO_TAGS if tags is None else normalize_tags(tags, "Turn")
        self.output: Any = None
        self._running = False
        # Allocated on first use: a queued turn is one object (cheap to build, light for GC).
        self._hooks: list[Any] | None = None
        self._start: float | None = None
        self._end: float | None = None
        self._given: Any = None  # datetimes assigned through metadata, kept as given
        self._enqueued: float | None = None
        self._stop_reason: StopReason | None = None
        self._trace_context: dict[str, str] | DeferredTraceContext | None = None
        self._attempt = 1

    @property
    def hooks(self) -> list[Any]:
        """The turn's instance hooks (the list itself; append to add one)."""
        hooks = self._hooks
        if hooks is None:
            hooks = self._hooks = HookList()
        return hooks

    @hooks.setter
    def hooks(self, value: Iterable[Any] | None) -> None:
        self._hooks = hook_list(value, "Turn hooks")

    @property
    def metadata(self) -> TurnMetadata:
        """Start and end time, stop reason, trace context; writable even while running.

        A fresh view each time (the values live on the turn): caching it on the turn would
        make every turn a reference cycle, left for the cyclic GC to find.
        """
        view = _new(TurnMetadata)  # a view: no __init__ (which makes standalone storage)
        view._turn = self
        return view

    @metadata.setter
    def metadata(self, value: TurnMetadata) -> None:
        if not isinstance(value, TurnMetadata):
            raise TypeError(f"Turn metadata must be a TurnMetadata, got {type(value).__name__}")
        self._start = value._turn._start
        self._end = value._turn._end
        self._given = value._turn._given
        self._stop_reason = value._turn._stop_reason

    # -- guarded attributes ------------------------------------------------------------------

    def _guard(self, name: str) -> None:
        if self._running:
            raise SafeExecutionError(
                f"Cannot change property {name!r} while the turn is running (a turn of tool "
                f"{self._tool.metadata.name!r}); change it before or after the run"
            )

    @property
    def tool(self) -> Tool:
        """The tool this turn runs (read-only while running)."""
        return self._tool

    @tool.setter
    def tool(self, value: Tool | str) -> None:
        self._guard("tool")
        self._tool = _resolve_tool(value)

    @property
    def tool_name(self) -> str:
        """The registry name of the tool this turn runs (``parent.child`` for a subtool)."""
        return self._tool.__name__

    @property
    def args(self) -> list[Any] | tuple[Any, ...]:
        """Positional arguments (read-only while running).

        The list or tuple given; without arguments (or given an empty tuple), a list of the
        turn's own, made on first read: ``Turn(tool).args == []``, and appending to it adds
        an argument.
        """
        args = self._args
        if args is _NO_ARGS:
            args = self._args = []
        return args

    @args.setter
    def args(self, value: list[Any] | tuple[Any, ...]) -> None:
        self._guard("args")
        self._args = _check_args(value)

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments (read-only while running)."""
        return self._kwargs

    @kwargs.setter
    def kwargs(self, value: dict[str, Any]) -> None:
        self._guard("kwargs")
        self._kwargs = _check_kwargs(value)

    @property
    def tags(self) -> frozenset[str]:
        """Tags matched by tag-filtered global hooks (read-only while running).

        Assigning converts like the constructor: any iterable of strings (None: no tags)
        becomes a ``frozenset``; a bare string or a non-string tag raises ``TypeError``.
        """
        return self._tags

    @tags.setter
    def tags(self, value: Iterable[str] | None) -> None:
        self._guard("tags")
        self._tags = _NO_TAGS if value is None else normalize_tags(value, "Turn")

    @property
    def timeout(self) -> float | None:
        """Seconds the tool may run, or None (read-only while running).

        Assigning validates like the constructor (``TypeError``, ``ValueError``).
        """
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._guard("timeout")
        self._timeout = _check_timeout(value)

    @property
    def is_running(self) -> bool:
        """True while the turn is executing."""
        return self._running

    def __repr__(self) -> str:
        return (
            f"Turn(tool={self._tool.metadata.name!r}, timeout={self._timeout!r}, "
            f"metadata={self.metadata!r})"
        )

    # -- running -----------------------------------------------------------------------------

    async def returning(self) -> T:
        """Run a coroutine tool and return its value.

        Raises:
            WrongRunMethodError: the tool is an async generator (use ``yielding()``).
            SafeExecutionError: the turn is already running.
            TurnTimeoutError: the tool ran past the timeout.
        """
        if self._tool.is_generator:
            raise WrongRunMethodError(
                f"The turn of tool {self._tool.metadata.name!r} runs an async-generator tool: "
                f"iterate turn.yielding() instead"
            )
        result: T = await run_returning(self, None)
        return result

    def yielding(self) -> AsyncIterator[T]:
        """Run an async-generator tool, yielding each value.

        Raises:
            WrongRunMethodError: the tool is a coroutine (use ``returning()``).
        """
        if not self._tool.is_generator:
            raise WrongRunMethodError(
                f"The turn of tool {self._tool.metadata.name!r} runs a coroutine tool: await "
                f"turn.returning() instead"
            )
        return run_yielding(self, None)

    # -- serialization -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the turn as a plain dict (hooks by type and name, the output).

        Arguments and the output are written as they are, a callable argument (a dynamic
        argument) included: the dict goes through ``json`` when they are JSON data, and
        ``from_dict()`` refuses a callable argument. A ``math.inf`` timeout is written as
        None (both mean no deadline, and JSON has no infinity).
        """
        name = self._tool.__name__
        return {
            "tool_name": name,
            "args": list(self._args),
            "kwargs": dict(self._kwargs),
            "timeout": None if self._timeout == math.inf else self._timeout,
            "tags": sorted(self._tags),
            "hooks": _serde.hooks_to(self._hooks or ()),
            "metadata": self.metadata.dict(),
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Turn:
        """Rebuild a turn from ``to_dict()`` output.

        Names resolve only through ``ToolRegistry`` and ``HookRegistry``, and nothing is
        evaluated. Argument values and the output are kept as given, whatever their type
        (whether they survive ``json`` is the caller's concern), except a callable argument,
        which the run would call: it is refused, as ``to_dict()`` refuses to write one.

        Raises:
            SerializationError: a field is missing or has the wrong type (``args`` not a
                list, ``kwargs`` not a dict with string keys), an argument is callable, a
                timeout cannot be used, or a hooks key is not a hook type.
            UnregisteredToolError: the tool name is not registered.
            UnregisteredHookError: a hook name is not registered.
        """
        where = "Turn.from_dict"
        data = _serde.mapping(data, where)
        tool = ToolRegistry.get(_serde.field(data, "tool_name", str, where))
        args = list(_serde.field(data, "args", list, where, default=[]))
        kwargs = dict(_serde.field(data, "kwargs", dict, where, default={}))
        _check_loaded_arguments(args, kwargs, where)
        timeout = _usable_timeout(
            _serde.field(data, "timeout", (int, float, type(None)), where, default=60), where
        )
        try:
            turn = cls(
                tool,
                timeout=timeout,
                args=args or None,  # none: the default, which the run passes on fastest
                kwargs=kwargs,
                tags=_serde.tags_from(data, where),
            )
        except ValueError as exc:
            raise SerializationError(f"{where}: {exc}") from None
        hooks = _serde.hooks_from(data, where, "hooks", (TurnHook,))
        if hooks:
            turn.hooks.extend(hooks)
        raw_meta = _serde.field(data, "metadata", dict, where, default={})
        read_metadata(turn, raw_meta, f"{where} metadata")
        if "output" in data:
            turn.output = data["output"]
        return turn


def dynamic_argument(turn: Turn) -> str | None:
    """Where ``turn`` has a callable argument (``args[0]``, ``kwargs['key']``), or None.

    What a ``json`` form (a checkpoint, a Redis message) cannot hold and names in its error.
    """
    for i, arg in enumerate(turn._args):
        if callable(arg):
            return f"args[{i}]"
    for key, value in turn._kwargs.items():
        if callable(value):
            return f"kwargs[{key!r}]"
    return None


def _check_loaded_arguments(args: list[Any], kwargs: dict[str, Any], where: str) -> None:
    """Refuse what a loaded turn must not hold: a non-string key, a callable argument.

    Only the top level is checked: that is where the run calls a callable (dynamic
    arguments); anything nested is passed to the tool as it is.
    """
    for i, arg in enumerate(args):
        if callable(arg):
            raise SerializationError(
                f"{where}: field 'args'[{i}] is a callable ({type(arg).__name__}), which the "
                f"run would call: a loaded turn holds values only"
            )
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise SerializationError(
                f"{where}: field 'kwargs' has a key {_serde.short(key)} that is not a string"
            )
        if callable(value):
            raise SerializationError(
                f"{where}: field 'kwargs'[{_serde.short(key)}] is a callable "
                f"({type(value).__name__}), which the run would call: a loaded turn holds "
                f"values only"
            )


def _usable_timeout(value: Any, where: str) -> Any:
    """A serialized timeout, refused when no timer can use it (NaN, infinite, huge)."""
    if value is None or isinstance(value, bool):
        return value
    if not math.isfinite(_timer_seconds(value)):
        raise SerializationError(
            f"{where}: field 'timeout' must be a finite number of seconds, got "
            f"{_serde.short(value)}"
        )
    return value


def _check_args(value: Any) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return value
    raise TypeError(f"Turn args must be a list or tuple, got {type(value).__name__}")


def _check_kwargs(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return value
    raise TypeError(f"Turn kwargs must be a dict with string keys, got {value!r}")


_TOOLS = ToolRegistry._items  # cleared in place, never replaced
