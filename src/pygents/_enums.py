"""Hook-type and stop-reason enumerations, and how to read the hook types of an object."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

__all__ = [
    "AgentHook",
    "ContextPoolHook",
    "ContextQueueHook",
    "HookType",
    "StopReason",
    "ToolHook",
    "TurnHook",
    "hook_name",
    "hook_types",
]


class StopReason(StrEnum):
    """Why a turn stopped; set on ``turn.metadata.stop_reason`` when it ends."""

    COMPLETED = "completed"
    TIMEOUT = "timeout"
    ERROR = "error"
    CANCELLED = "cancelled"


# Hook enums are plain ``Enum`` (not ``str`` enums): ``TurnHook.ON_ERROR`` and
# ``ToolHook.ON_ERROR`` share the value "on_error" and must never compare equal.


class TurnHook(Enum):
    """Events in the life of one turn."""

    __hash__ = object.__hash__  # identity hash in C: hooks are looked up per event

    BEFORE_RUN = "before_run"
    """``(turn)`` before the tool runs; raising vetoes the run."""
    AFTER_RUN = "after_run"
    """``(turn, output)`` after a clean completion."""
    ON_TIMEOUT = "on_timeout"
    """``(turn)`` the turn ran past its timeout."""
    ON_ERROR = "on_error"
    """``(turn, exception)`` the turn failed with a non-timeout error."""
    ON_COMPLETE = "on_complete"
    """``(turn, stop_reason)`` always, whatever the outcome."""


class AgentHook(Enum):
    """Events in an agent's run loop and queue."""

    __hash__ = object.__hash__  # identity hash in C: hooks are looked up per event

    BEFORE_TURN = "before_turn"
    """``(agent)`` before the next turn is taken off the queue."""
    AFTER_TURN = "after_turn"
    """``(agent, turn)`` after a turn was processed."""
    ON_TURN_VALUE = "on_turn_value"
    """``(agent, turn, value)`` after routing a value, before yielding it."""
    BEFORE_PUT = "before_put"
    """``(agent, turn)`` before a turn is enqueued; raising vetoes the put."""
    AFTER_PUT = "after_put"
    """``(agent, turn)`` after a turn was enqueued."""
    ON_PAUSE = "on_pause"
    """``(agent)`` the run loop reached a paused gate."""
    ON_RESUME = "on_resume"
    """``(agent)`` the gate was released, before the next turn."""
    ON_RUN_START = "on_run_start"
    """``(agent)`` ``run()`` started (pygents addition, used by telemetry)."""
    ON_RUN_END = "on_run_end"
    """``(agent, exception)`` ``run()`` ended; ``exception`` is None on a clean exit."""


class ToolHook(Enum):
    """Events around one tool invocation."""

    __hash__ = object.__hash__  # identity hash in C: hooks are looked up per event

    BEFORE_INVOKE = "before_invoke"
    """``(*args, **kwargs)`` the tool's own arguments; raising vetoes the call."""
    ON_YIELD = "on_yield"
    """``(value)`` each value an async-generator tool yields."""
    AFTER_INVOKE = "after_invoke"
    """``(result)``: the return value, or the list of yielded values (partial on early break)."""
    ON_ERROR = "on_error"
    """``(exc=exception)`` the tool raised."""


class ContextQueueHook(Enum):
    """Events of a ``ContextQueue``."""

    __hash__ = object.__hash__  # identity hash in C: hooks are looked up per event

    BEFORE_APPEND = "before_append"
    """``(queue, incoming, current)``; raising vetoes the append."""
    AFTER_APPEND = "after_append"
    """``(queue, appended_items, current)``."""
    BEFORE_CLEAR = "before_clear"
    """``(queue, items)``; raising vetoes the clear."""
    AFTER_CLEAR = "after_clear"
    """``(queue)``."""
    ON_EVICT = "on_evict"
    """``(queue, item)`` once per evicted item."""


class ContextPoolHook(Enum):
    """Events of a ``ContextPool``."""

    __hash__ = object.__hash__  # identity hash in C: hooks are looked up per event

    BEFORE_ADD = "before_add"
    """``(pool, item)``; raising vetoes the add."""
    AFTER_ADD = "after_add"
    """``(pool, item)``."""
    BEFORE_REMOVE = "before_remove"
    """``(pool, item)``; raising vetoes the removal."""
    AFTER_REMOVE = "after_remove"
    """``(pool, item)``."""
    BEFORE_CLEAR = "before_clear"
    """``(pool, snapshot)``; raising vetoes the clear."""
    AFTER_CLEAR = "after_clear"
    """``(pool)``."""
    ON_EVICT = "on_evict"
    """``(pool, item)`` the oldest item is about to be evicted."""


HookType = TurnHook | AgentHook | ToolHook | ContextQueueHook | ContextPoolHook
HOOK_FAMILIES: tuple[type[Enum], ...] = (
    TurnHook,
    AgentHook,
    ToolHook,
    ContextQueueHook,
    ContextPoolHook,
)


def hook_types(h: Any) -> tuple[Any, ...]:
    """Return the hook types ``h`` listens to: its ``types``, else its duck-typed ``type``.

    ``type`` may be one member or a tuple, frozenset, set or list of members. An object with
    neither attribute (or with ``type`` None) listens to nothing.
    """
    try:
        return tuple(h.types)
    except AttributeError:
        pass
    declared = getattr(h, "type", None)
    if declared is None:
        return ()
    if isinstance(declared, tuple | frozenset | set | list):
        return tuple(declared)
    return (declared,)


def hook_name(h: Any) -> str:
    """Return the name ``h`` is registered and serialized under.

    ``h.metadata.name`` for pygents hooks; ``__name__`` for any other callable.
    """
    name = getattr(getattr(h, "metadata", None), "name", None)
    if isinstance(name, str):
        return name
    return str(h.__name__)
