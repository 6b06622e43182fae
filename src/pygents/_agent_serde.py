"""An agent's branching and serialization: ``branch()``, ``to_dict()``, ``from_dict()``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from . import _serde
from ._context import ContextPool, ContextQueue
from ._enums import AgentHook, TurnHook
from ._registry import AgentRegistryBase as AgentRegistry
from ._registry import ToolRegistry
from ._turn import Turn
from ._turn_metadata import DeferredTraceContext
from ._types import AgentState, Tool
from .errors import SerializationError, UnregisteredAgentError, is_collection, short_repr

A = TypeVar("A", bound=AgentState)

__all__ = ["branch", "from_dict", "to_dict"]

#: The events an agent's ``hooks`` fire on (turn hooks put there by hand fire for its turns);
#: they decide what a serialized key such as ``"on_error"`` means there.
_AGENT_FAMILIES = (AgentHook, TurnHook)
_TURN_FAMILIES = (TurnHook,)


def _copy_turn(turn: Turn) -> Turn:
    args = turn._args
    copy = Turn(
        turn._tool, turn._timeout, list(args) if args else None, dict(turn._kwargs), turn._tags
    )
    if turn._hooks:
        copy.hooks.extend(turn._hooks)
    carrier = turn._trace_context
    if carrier is not None:
        # A deferred one is immutable: shared, still unrendered.
        copy._trace_context = (
            carrier if isinstance(carrier, DeferredTraceContext) else dict(carrier)
        )
    return copy


def branch(
    agent: A,
    name: str,
    description: str | None,
    tools: Iterable[Tool] | None,
    hooks: Iterable[Any] | None,
    keep: Any,
) -> A:
    """A child of ``agent`` (see ``Agent.branch``)."""
    if tools is not None and agent._queue:
        tools = _keeping_the_queue(agent, name, tools)
    child = type(agent)(
        name,
        agent._description if description is None else description,
        agent._tools.values() if tools is None else tools,
        context_pool=agent._context_pool.branch(),
        context_queue=agent._context_queue.branch(),
        tags=agent._tags,
        hooks=agent._hooks if hooks is keep else hooks,
        turn_hooks=agent._turn_hooks,
    )
    child._queue.extend(_copy_turn(t) for t in agent._queue)
    return child


def _keeping_the_queue(agent: AgentState, name: str, tools: Any) -> Any:
    """Return ``tools`` (as a list), or raise if a queued turn's tool is not among them.

    Checked before the child exists (and takes its name): a queued turn the child could not
    run is refused, never dropped. Something that is not a list of tools is returned as it
    is, for the constructor to refuse.
    """
    if not is_collection(tools):
        return tools
    tools = list(tools)  # iterated twice, and it may be a generator
    given = {id(t) for t in tools}
    refused = sorted({t._tool.__name__ for t in agent._queue if id(t._tool) not in given})
    if refused:
        raise ValueError(
            f"Agent {agent._name!r}: the branch {name!r} does not accept tool "
            f"{', '.join(repr(n) for n in refused)}, which queued turns use: include "
            f"{'it' if len(refused) == 1 else 'them'} in tools=, or branch before queueing "
            f"those turns"
        )
    return tools


def to_dict(agent: AgentState) -> dict[str, Any]:
    """``Agent.to_dict()``."""
    current = agent._current_turn
    return {
        "name": agent._name,
        "description": agent._description,
        "tool_names": list(agent._tools),
        "tags": sorted(agent._tags),
        "hooks": _serde.hooks_to(agent._hooks),
        "turn_hooks": _serde.hooks_to(agent._turn_hooks),
        "queue": [t.to_dict() for t in agent._queue],
        "current_turn": None if current is None else current.to_dict(),
        "context_queue": agent._context_queue.to_dict(),
        "context_pool": agent._context_pool.to_dict(),
        "is_paused": agent._paused,
    }


def _allowed_names(tools: Iterable[Tool | str]) -> set[str]:
    # A bare string would be read character by character (worded as turn_from_call's check).
    if not is_collection(tools):
        raise TypeError(
            f"Agent.from_dict: tools must be a list of tools or tool names, got {short_repr(tools)}"
        )
    names = set()
    for t in tools:
        name = t if isinstance(t, str) else getattr(t, "__name__", None)
        if not isinstance(t, str) and not hasattr(t, "metadata"):
            name = None  # a plain function is not a tool
        if not isinstance(name, str):
            raise TypeError(f"Agent.from_dict: tools= takes tools or tool names, got {t!r}")
        names.add(name)
    return names


def from_dict(cls: type[A], data: Any, allowed: Iterable[Tool | str] | None) -> A:
    """``Agent.from_dict()``."""
    where = "Agent.from_dict"
    data = _serde.mapping(data, where)
    name = _serde.field(data, "name", str, where)
    if not name:
        raise SerializationError(f"{where}: field 'name' must not be empty")
    where = f"Agent.from_dict({_serde.short(name)})"
    description = _serde.field(data, "description", str, where)
    tool_names = _serde.string_list(data, "tool_names", where)
    if allowed is not None:
        permitted = _allowed_names(allowed)
        refused = [n for n in tool_names if n not in permitted]
        if refused:
            raise SerializationError(
                f"{where}: field 'tool_names' names {_serde.short(refused)}, not in the "
                f"allow-list given to from_dict(tools=...)"
            )
    tools = [ToolRegistry.get(n) for n in tool_names]
    known = set(tool_names)
    turns: list[Turn] = []
    current = _serde.field(data, "current_turn", (dict, type(None)), where, default=None)
    raw_queue = _serde.field(data, "queue", list, where, default=[])
    offset = 0 if current is None else 1
    for i, raw in enumerate(([current] if current is not None else []) + raw_queue):
        path = "'current_turn'" if i < offset else f"'queue'[{i - offset}]"
        turn = _serde.nested(where, path, Turn.from_dict, raw)
        if turn.tool.__name__ not in known:
            raise SerializationError(
                f"{where}: field {path} uses tool {turn.tool.__name__!r}, "
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
    hooks = _serde.hooks_from(data, where, "hooks", _AGENT_FAMILIES)
    turn_hooks = _serde.hooks_from(data, where, "turn_hooks", _TURN_FAMILIES)
    tags = _serde.tags_from(data, where)
    paused = _serde.field(data, "is_paused", bool, where, default=False)
    # A restore takes over the name from an idle agent holding it (the saved agent itself,
    # usually); a running one keeps it, and the restore is refused.
    try:
        previous: AgentState | None = AgentRegistry.get(name)
    except UnregisteredAgentError:
        previous = None
    if previous is not None:
        if previous.is_running:
            raise ValueError(
                f"{where}: agent {_serde.short(name)} already registered and running; stop it "
                f"or unregister it before restoring another under its name"
            )
        AgentRegistry.discard(name, previous)
    try:
        agent = cls(
            name,
            description,
            tools,
            context_pool=context_pool,
            context_queue=context_queue,
            tags=tags,
            hooks=hooks,
            turn_hooks=turn_hooks,
        )
    except BaseException:
        if previous is not None:
            AgentRegistry.register(previous)
        raise
    agent._queue.extend(turns)
    agent._paused = paused  # last: a paused agent's attributes are locked
    return agent
