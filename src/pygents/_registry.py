"""The three process-wide registries: tools, agents and hooks.

Registries are classes used directly (``ToolRegistry.get("fetch")``); their storage is
class-level. The per-type lists of global hooks are created once and only ever mutated in
place, so the run loop can hold references to them and test "any global hook?" with a
plain truthiness check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ._enums import HOOK_FAMILIES, HookType
from .errors import UnregisteredAgentError, UnregisteredHookError, UnregisteredToolError

if TYPE_CHECKING:
    from ._agent import Agent
    from ._hooks import Hook
    from ._tool import Tool

T = TypeVar("T")

__all__ = ["GLOBAL_BY_FAMILY", "GLOBAL_BY_TYPE", "AgentRegistry", "HookRegistry", "ToolRegistry"]

#: Global hooks per hook type, in registration order. Mutated in place only.
GLOBAL_BY_TYPE: dict[HookType, list[Hook]] = {
    member: []  # type: ignore[misc]
    for family in HOOK_FAMILIES
    for member in family
}
#: Global hooks per hook family (one entry per type they listen to). Mutated in place only.
GLOBAL_BY_FAMILY: dict[type, list[Hook]] = {family: [] for family in HOOK_FAMILIES}


class _NamedRegistry(Generic[T]):
    """Name -> object, one name per object; the shared behaviour of the registries."""

    _items: ClassVar[dict[str, Any]]
    _what: ClassVar[str]
    _missing: ClassVar[type[LookupError]]
    _hint: ClassVar[str]

    @classmethod
    def _add(cls, name: str, obj: T, taken_hint: str) -> None:
        existing = cls._items.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{cls._what} {name!r} is already registered: {taken_hint}")
        cls._items[name] = obj

    @classmethod
    def get(cls, name: str) -> T:
        """Return the object registered under ``name``; raise if there is none."""
        try:
            found: T = cls._items[name]
        except (KeyError, TypeError):
            raise cls._missing(
                f"No {cls._what.lower()} named {name!r} in {cls.__name__}{cls._hint}"
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
        """Add ``tool``; raise ``ValueError`` if another tool holds its name."""
        cls._add(
            tool.metadata.name,
            tool,
            "give the function another name, or clear ToolRegistry in tests "
            "(pygents.testing.reset_registries)",
        )


class AgentRegistry(_NamedRegistry["Agent"]):
    """Every constructed agent, by name."""

    _items: ClassVar[dict[str, Any]] = {}
    _what = "Agent"
    _missing = UnregisteredAgentError
    _hint = ""

    @classmethod
    def register(cls, agent: Agent) -> None:
        """Add ``agent``; raise ``ValueError`` if another agent holds its name."""
        cls._add(
            agent.name,
            agent,
            f"choose another name, or AgentRegistry.unregister({agent.name!r}) first",
        )

    @classmethod
    def discard(cls, name: str, agent: Agent) -> None:
        """Remove ``name`` if (and only if) it is registered to ``agent``."""
        if cls._items.get(name) is agent:
            del cls._items[name]


class HookRegistry:
    """Every hook, by name; global hooks also by type.

    Instance hooks (``@agent.before_turn`` and friends) are registered by name so that
    serialized objects can find them again, but they fire only for their own object. Global
    hooks (``@hook(...)``) fire for every matching object.
    """

    _hooks: ClassVar[dict[str, Hook]] = {}

    @classmethod
    def register(cls, hook: Hook) -> None:
        """Add ``hook``.

        Raises:
            ValueError: another hook holds the name. An instance hook may replace another
                instance hook of the same name (a function decorated once per call, say);
                nothing may replace, or be replaced by, a global hook.
        """
        name = hook.metadata.name
        existing = cls._hooks.get(name)
        if existing is hook:
            return
        if existing is not None and (hook.is_global or existing.is_global):
            raise ValueError(
                f"Hook {name!r} is already registered: give the function another name, or "
                f"HookRegistry.unregister({name!r}) first"
            )
        cls._hooks[name] = hook
        if hook.is_global:
            for hook_type in hook.types:
                GLOBAL_BY_TYPE[hook_type].append(hook)
                GLOBAL_BY_FAMILY[type(hook_type)].append(hook)

    @classmethod
    def get(cls, name: str) -> Hook:
        """Return the hook called ``name``; raise ``UnregisteredHookError`` if there is none."""
        try:
            return cls._hooks[name]
        except (KeyError, TypeError):
            raise UnregisteredHookError(f"No hook named {name!r} in HookRegistry") from None

    @classmethod
    def all(cls) -> list[Hook]:
        """Return all registered hooks, in registration order."""
        return list(cls._hooks.values())

    @classmethod
    def get_by_type(cls, hook_type: HookType) -> Hook | None:
        """Return the first registered hook listening to ``hook_type``, or None."""
        for hook in cls._hooks.values():
            if hook_type in hook.types:
                return hook
        return None

    @classmethod
    def unregister(cls, hook: Hook | str) -> None:
        """Remove a hook (given by object or name) from the registry.

        A global hook stops firing at once. An instance hook is also attached to its object:
        remove it from ``obj.hooks`` to stop it firing there.

        Raises:
            UnregisteredHookError: no such hook is registered.
        """
        name = hook if isinstance(hook, str) else hook.metadata.name
        found = cls.get(name)
        if not isinstance(hook, str) and found is not hook:
            raise UnregisteredHookError(f"Hook {name!r} in HookRegistry is another object")
        del cls._hooks[name]
        for bucket in (*GLOBAL_BY_TYPE.values(), *GLOBAL_BY_FAMILY.values()):
            while found in bucket:
                bucket.remove(found)

    @classmethod
    def clear(cls) -> None:
        """Remove every hook, global and instance-scoped."""
        cls._hooks.clear()
        for bucket in (*GLOBAL_BY_TYPE.values(), *GLOBAL_BY_FAMILY.values()):
            bucket.clear()
