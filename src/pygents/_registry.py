"""The three process-wide registries: tools, agents and hooks.

Registries are classes used directly (``ToolRegistry.get("fetch")``); their storage is
class-level. The per-type lists of global hooks are created once and only ever mutated in
place, so the run loop can hold references to them and test "any global hook?" with a
plain truthiness check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar, overload

from . import _definitions
from ._enums import HOOK_FAMILIES, HookType, ToolHook, hook_name, hook_types
from ._types import Hook, Tool
from .errors import (
    UnregisteredAgentError,
    UnregisteredHookError,
    UnregisteredToolError,
    short_repr,
)

T = TypeVar("T")

__all__ = [
    "GLOBAL_BUCKETS",
    "GLOBAL_BY_FAMILY",
    "GLOBAL_BY_TYPE",
    "GLOBAL_INVOKE",
    "INVOKE_TYPES",
    "AgentRegistryBase",
    "HookRegistryBase",
    "ToolRegistry",
]

#: Global hooks per hook type, in registration order. Mutated in place only.
GLOBAL_BY_TYPE: dict[HookType, list[Hook]] = {
    member: []  # type: ignore[misc]
    for family in HOOK_FAMILIES
    for member in family
}
#: Global hooks per hook family (one entry per type they listen to). Mutated in place only.
GLOBAL_BY_FAMILY: dict[type, list[Hook]] = {family: [] for family in HOOK_FAMILIES}
#: The event types of a coroutine tool's invocation, and their global hooks (one entry per
#: type they listen to; mutated in place only): one test tells the run loop whether a plain
#: tool can be called bare.
INVOKE_TYPES = frozenset((ToolHook.BEFORE_INVOKE, ToolHook.AFTER_INVOKE, ToolHook.ON_ERROR))
GLOBAL_INVOKE: list[Hook] = []
#: Every list above (each mutated in place only): what registering a global hook fills, and
#: what unregistering, clearing and ``testing.isolated_registries`` go through.
GLOBAL_BUCKETS: tuple[list[Hook], ...] = (
    *GLOBAL_BY_TYPE.values(),
    *GLOBAL_BY_FAMILY.values(),
    GLOBAL_INVOKE,
)


class _NamedRegistry(Generic[T]):
    """Name -> object, one name per object; the shared behaviour of the registries."""

    _items: ClassVar[dict[str, Any]]
    _what: ClassVar[str]
    _missing: ClassVar[type[KeyError]]
    _hint: ClassVar[str]

    @classmethod
    def _add(cls, name: str, obj: T, taken_hint: str) -> None:
        existing = cls._items.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(
                f"{cls._what} {short_repr(name)} already registered (another object holds the "
                f"name): {taken_hint}"
            )
        cls._items[name] = obj

    @classmethod
    def get(cls, name: str) -> T:
        """Return the object registered under ``name``; raise if there is none."""
        try:
            found: T = cls._items[name]
        except (KeyError, TypeError):
            raise cls._missing(
                f"{cls._what} {short_repr(name)} not found in {cls.__name__}{cls._hint}"
            ) from None
        return found

    @classmethod
    def all(cls) -> list[T]:
        """Return everything registered, in registration order."""
        return list(cls._items.values())

    @classmethod
    def unregister(cls, name: str) -> None:
        """Remove ``name``; raise if nothing is registered under it."""
        cls.get(name)
        del cls._items[name]

    @classmethod
    def clear(cls) -> None:
        """Remove everything."""
        cls._items.clear()


class ToolRegistry(_NamedRegistry["Tool"]):
    """Every decorated tool, by name."""

    _items: ClassVar[dict[str, Any]] = {}
    _what = "Tool"
    _missing = UnregisteredToolError
    _hint = ": decorate the function with @tool() before referring to it by name"

    @classmethod
    def register(cls, tool: Tool) -> None:
        """Add ``tool``; raise ``ValueError`` if another tool holds its name.

        The name is the tool's ``__name__``: ``parent.child`` for a subtool.
        """
        name = getattr(tool, "__name__", None)
        cls._add(
            name if isinstance(name, str) else tool.metadata.name,
            tool,
            "give the function another name, or clear ToolRegistry in tests "
            "(pygents.testing.reset_registries)",
        )

    @classmethod
    def definitions(
        cls,
        style: str | None = None,
        *,
        names: Iterable[str] | None = None,
        strict: bool = True,
    ) -> list[dict[str, Any]]:
        """Describe the registered tools for a model, as plain dicts.

        Args:
            style: None for ``doc_tree()`` of each root tool (subtools nested, as the
                original); or ``"openai"`` (Chat Completions), ``"openai-responses"``,
                ``"anthropic"`` or ``"mcp"`` (``tools/list`` entries) for one entry per
                tool, subtools included.
            names: only these tools (registry names), in this order.
            strict: for the OpenAI styles, ask for strict mode where the schema allows it.

        Raises:
            ValueError: ``style`` is unknown.
            UnregisteredToolError: a name in ``names`` is not registered.
        """
        chosen = cls.all() if names is None else [cls.get(n) for n in names]
        return _definitions.definitions(chosen, style, strict=strict)


class AgentRegistryBase(_NamedRegistry[Any]):
    """Every constructed agent, by name: the storage and rules of ``AgentRegistry``.

    ``pygents.AgentRegistry`` is its typed face, defined beside ``Agent`` (in ``_agent``) so
    that this module, below every other, needs no import of the agent module.
    """

    _items: ClassVar[dict[str, Any]] = {}
    _what = "Agent"
    _missing = UnregisteredAgentError
    _hint = ""

    @classmethod
    def register(cls, agent: Any) -> None:
        """Add ``agent``; raise ``ValueError`` if another agent holds its name."""
        cls._add(
            agent.name,
            agent,
            f"choose another name, or AgentRegistry.unregister({agent.name!r}) first",
        )

    @classmethod
    def discard(cls, name: str, agent: Any) -> None:
        """Remove ``name`` if (and only if) it is registered to ``agent``."""
        if cls._items.get(name) is agent:
            del cls._items[name]


class HookRegistryBase:
    """The storage and rules of ``HookRegistry``: every hook by name, global hooks by type.

    ``pygents.HookRegistry`` adds ``wrap()`` (which makes hooks), defined beside the hooks in
    ``_hooks`` so that this module, below them, needs no import of theirs.
    """

    _hooks: ClassVar[dict[str, Any]] = {}
    #: Names of the hooks registered with ``library=True``: left out of ``all()`` and of
    #: ``get_by_type(type)``.
    _library: ClassVar[set[str]] = set()

    @classmethod
    def register(cls, hook: Any, *, library: bool = False) -> None:
        """Add ``hook`` (any named callable) under ``metadata.name``, else ``__name__``.

        Registering the identical object again does nothing (except that ``library=True``
        marks it). A callable that is not a global pygents hook is only named here, so that
        ``from_dict()`` finds it: it never fires by itself. One placed in a hooks list fires
        there when it is async and has a ``type`` attribute (a duck-typed hook); a plain
        function in a hooks list is refused when its event fires.

        Args:
            hook: the hook.
            library: the hook belongs to a library (the telemetry bridge, a ``Service``), not
                to the program: it fires, is found by name and is removed by ``clear()`` like
                any other, but ``all()`` and ``get_by_type(type)`` leave it out, so that a
                program's own lookups find only its own hooks.

        Raises:
            ValueError: another hook holds the name.
            TypeError: ``hook`` is not callable, or has no name (neither ``metadata.name``
                nor a string ``__name__``).
        """
        if not isinstance(library, bool):
            raise TypeError(
                f"HookRegistry.register: library must be True or False, got {short_repr(library)}"
            )
        name = _checked_name(hook)
        existing = cls._hooks.get(name)
        if existing is hook:
            if library:
                cls._library.add(name)
            return
        if existing is not None:
            raise ValueError(
                f"Hook {short_repr(name)} already registered (another hook holds the name): "
                f"hooks are found again by name when objects are restored, so each needs its "
                f"own. Give the function a unique name (for hooks made in a loop or factory, "
                f"set fn.__name__ = f'{_plain(name)}_{{owner_name}}' before decorating), or "
                f"make the hook once and attach that same object to every owner "
                f"(agent.before_turn(existing_hook)); in tests, clear HookRegistry"
            )
        cls._hooks[name] = hook
        if library:
            cls._library.add(name)
        if getattr(hook, "is_global", False):
            for hook_type in hook.types:
                GLOBAL_BY_TYPE[hook_type].append(hook)
                GLOBAL_BY_FAMILY[type(hook_type)].append(hook)
                if hook_type in INVOKE_TYPES:
                    GLOBAL_INVOKE.append(hook)

    @classmethod
    def get(cls, name: str) -> Hook:
        """Return the hook called ``name``; raise ``UnregisteredHookError`` if there is none."""
        try:
            found: Hook = cls._hooks[name]
        except (KeyError, TypeError):
            raise UnregisteredHookError(
                f"Hook {short_repr(name)} not found in HookRegistry: define it (with @hook or "
                f"an instance decorator) before restoring objects that name it"
            ) from None
        return found

    @classmethod
    def lookup(cls, name: Any) -> Any:
        """Return the hook called ``name``, or None."""
        try:
            return cls._hooks.get(name)
        except TypeError:
            return None

    @classmethod
    def all(cls) -> list[Hook]:
        """Return the program's registered hooks, in registration order.

        Hooks registered with ``library=True`` (telemetry's, a ``Service``'s) are left out.
        """
        library = cls._library
        return [h for name, h in cls._hooks.items() if name not in library]

    @overload
    @classmethod
    def get_by_type(cls, hook_type: HookType, hooks: None = None) -> Hook | None: ...
    @overload
    @classmethod
    def get_by_type(cls, hook_type: HookType, hooks: Iterable[T]) -> list[T]: ...
    @classmethod
    def get_by_type(cls, hook_type: HookType, hooks: Iterable[Any] | None = None) -> Any:
        """Select hooks by type.

        With ``hooks`` (any iterable, e.g. ``turn.hooks``): return the list of those whose
        ``type`` matches ``hook_type``, in order. A ``type`` that is a tuple, frozenset, set
        or list matches when it contains ``hook_type``; otherwise it must be ``hook_type``
        itself (enum identity: ``TurnHook.ON_ERROR`` is not ``ToolHook.ON_ERROR``). Without
        ``hooks``: the first registered hook listening to ``hook_type``, or None; hooks
        registered with ``library=True`` are not considered.
        """
        if hooks is None:
            library = cls._library
            for name, hook in cls._hooks.items():
                if name not in library and any(t is hook_type for t in hook_types(hook)):
                    return hook
            return None
        return [h for h in hooks if _matches(getattr(h, "type", None), hook_type)]

    @classmethod
    def unregister(cls, hook: Hook | str) -> None:
        """Remove a hook (given by object or name) from the registry.

        A global hook stops firing at once. An instance hook is also attached to its object:
        remove it from ``obj.hooks`` to stop it firing there.

        Raises:
            UnregisteredHookError: no such hook is registered.
        """
        name = hook if isinstance(hook, str) else hook_name(hook)
        found = cls.get(name)
        if not isinstance(hook, str) and found is not hook:
            raise UnregisteredHookError(
                f"Hook {short_repr(name)} in HookRegistry is another object"
            )
        del cls._hooks[name]
        cls._library.discard(name)
        for bucket in GLOBAL_BUCKETS:
            while found in bucket:
                bucket.remove(found)

    @classmethod
    def clear(cls) -> None:
        """Remove every hook, global and instance-scoped (library hooks too)."""
        cls._hooks.clear()
        cls._library.clear()
        for bucket in GLOBAL_BUCKETS:
            bucket.clear()


def _checked_name(hook: Any) -> str:
    """``hook``'s registry name, or a ``TypeError`` saying what a hook must be."""
    if not callable(hook):
        raise TypeError(f"HookRegistry.register: a hook must be a callable, got {short_repr(hook)}")
    name = getattr(getattr(hook, "metadata", None), "name", None)
    if not isinstance(name, str):
        name = getattr(hook, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(
            f"HookRegistry.register: {short_repr(hook)} has no name to register it under; "
            f"give it a __name__ (a functools.partial has none: define an 'async def' "
            f"function that calls it)"
        )
    return name


def _matches(declared: Any, hook_type: Any) -> bool:
    if declared is None:
        return False
    if isinstance(declared, tuple | frozenset | set | list):
        return any(t is hook_type for t in declared)
    return declared is hook_type


def _plain(name: str) -> str:
    """``name`` for a hint inside a message: short, and without quotes of its own."""
    return short_repr(name)[1:-1] if len(name) <= 40 else "hook"
