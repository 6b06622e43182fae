"""Exceptions raised by pygents.

The tree::

    PygentsError (Exception)
    ├── SafeExecutionError (also RuntimeError)
    │       a running object was mutated, or run()/returning()/yielding() re-entered
    ├── WrongRunMethodError (also TypeError)
    │       returning() on a generator tool, or yielding() on a coroutine tool
    ├── TurnTimeoutError (also TimeoutError)
    │       a turn ran past its timeout
    ├── UnregisteredToolError (also LookupError)
    ├── UnregisteredAgentError (also LookupError)
    ├── UnregisteredHookError (also LookupError)
    │       a name is not in the matching registry
    └── SerializationError (also ValueError)
            from_dict() was given malformed data

Misuse of the API keeps the built-in exceptions the seeds promise: ``TypeError`` (a sync
function passed to ``@tool``/``@hook``, fixed kwargs the function does not accept, a non
``ContextItem`` appended) and ``ValueError`` (a duplicate registry name, an empty hook type
list, a tool outside the agent's set, a pool item without id or description, a limit below 1).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PygentsError",
    "SafeExecutionError",
    "SerializationError",
    "TurnTimeoutError",
    "UnregisteredAgentError",
    "UnregisteredHookError",
    "UnregisteredToolError",
    "WrongRunMethodError",
]


class PygentsError(Exception):
    """Base class of every exception pygents defines."""


class SafeExecutionError(PygentsError, RuntimeError):
    """Raised when a running object is mutated, or a run method is re-entered."""


class WrongRunMethodError(PygentsError, TypeError):
    """Raised when ``returning()`` runs a generator tool or ``yielding()`` a coroutine tool."""


class TurnTimeoutError(PygentsError, TimeoutError):
    """Raised when a turn runs past its timeout; ``turn`` is the turn that timed out."""

    turn: Any = None


class UnregisteredToolError(PygentsError, LookupError):
    """Raised when a tool name is not in ``ToolRegistry``."""


class UnregisteredAgentError(PygentsError, LookupError):
    """Raised when an agent name is not in ``AgentRegistry``."""


class UnregisteredHookError(PygentsError, LookupError):
    """Raised when a hook name is not in ``HookRegistry``."""


class SerializationError(PygentsError, ValueError):
    """Raised when ``from_dict()`` is given malformed data; the message names the field."""
