"""Exceptions raised by pygents.

The tree::

    PygentsError (Exception)
    ├── SafeExecutionError (also RuntimeError)
    │       a running object was mutated, or run()/returning()/yielding() re-entered
    ├── WrongRunMethodError (also TypeError)
    │       returning() on a generator tool, or yielding() on a coroutine tool
    ├── TurnTimeoutError (also TimeoutError)
    │       a turn ran past its timeout
    ├── UnregisteredToolError (also KeyError, hence LookupError)
    ├── UnregisteredAgentError (also KeyError, hence LookupError)
    ├── UnregisteredHookError (also KeyError, hence LookupError)
    │       a name is not in the matching registry
    └── SerializationError (also ValueError)
            from_dict() was given malformed data

Misuse of the API keeps the built-in exceptions the seeds promise: ``TypeError`` (a sync
function passed to ``@tool``/``@hook``, fixed kwargs the function does not accept, a non
``ContextItem`` appended) and ``ValueError`` (a duplicate registry name, an empty hook type
list, a tool outside the agent's set, a pool item without id or description, a limit below 1).
"""

from __future__ import annotations

import reprlib
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


class _SentenceMessage:
    """Mixin for ``KeyError`` subclasses whose message reads as a sentence.

    ``KeyError`` quotes its argument (``str(KeyError("x"))`` is ``"'x'"``); these print the
    message as written.
    """

    args: tuple[Any, ...]

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else KeyError.__str__(self)  # type: ignore[arg-type]


class UnregisteredToolError(_SentenceMessage, PygentsError, KeyError):
    """Raised when a tool name is not in ``ToolRegistry``."""


class UnregisteredAgentError(_SentenceMessage, PygentsError, KeyError):
    """Raised when an agent name is not in ``AgentRegistry``."""


class UnregisteredHookError(_SentenceMessage, PygentsError, KeyError):
    """Raised when a hook name is not in ``HookRegistry``."""


class SerializationError(PygentsError, ValueError):
    """Raised when ``from_dict()`` is given malformed data; the message names the field."""


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def short_repr(value: Any) -> str:
    """Return ``repr(value)`` bounded in size, for error messages.

    A 10 MB name in a payload must not become a 10 MB exception message.
    """
    return _SHORT.repr(value)
