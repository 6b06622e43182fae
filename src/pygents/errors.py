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
    ├── SerializationError (also ValueError)
    │   │   from_dict() was given malformed data
    │   └── CheckpointError
    │           a stored checkpoint is corrupt, hostile or names what is not registered
    ├── CheckpointStoreError (also OSError)
    │   │   a checkpoint store failed to read or write (a service stops on it)
    │   └── LeaseLostError (in pygents.redis)
    │           a worker saved an agent whose lease another worker now holds
    └── ToolCallError (also ValueError)
            a model's tool call names no available tool or has invalid arguments

Misuse of the API keeps the built-in exceptions the seeds promise: ``TypeError`` (a sync
function passed to ``@tool``/``@hook``, fixed kwargs the function does not accept, a non
``ContextItem`` appended) and ``ValueError`` (a duplicate registry name, an empty hook type
list, a tool outside the agent's set, a pool item without id or description, a limit below 1,
a turn timeout that is not positive or too large for a timer).
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CheckpointError",
    "CheckpointStoreError",
    "PygentsError",
    "SafeExecutionError",
    "SerializationError",
    "ToolCallError",
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


class CheckpointError(SerializationError):
    """Raised when a stored checkpoint cannot be restored; the message names agent and field.

    The data is not JSON, has the wrong shape, was saved for another agent, or names a tool or
    hook that is not registered (or not the agent's). Nothing was changed on the agent. Fix
    the code (register what is missing) or delete the checkpoint to start the agent empty.

    Attributes:
        agent_name: the agent whose checkpoint failed.
    """

    def __init__(self, message: str, *, agent_name: str = "") -> None:
        super().__init__(message)
        self.agent_name = agent_name


class CheckpointStoreError(PygentsError, OSError):
    """Raised when a checkpoint store cannot read or write (disk full, database locked).

    A service stops when a checkpoint cannot be written: serving on without durability
    would lose turns silently. The store's own exception is the ``__cause__``.
    """


class ToolCallError(PygentsError, ValueError):
    """Raised when a model's tool call cannot become a turn; ``str()`` is written for the model.

    Every problem is listed (never only the first), each with the path of the argument it
    concerns, so one round trip can fix them all. A loop sends ``str(error)`` back as the
    tool result. No turn was built.

    Args:
        message: the text (``from_problems`` writes it).
        tool_name: the name the call gave (keyword only).
        problems: ``(path, message)`` pairs (keyword only); ``path`` is like ``address.zip``
            or ``tags[2]``, and empty for the call as a whole (an unknown tool, arguments that
            are not JSON).

    Attributes:
        tool_name: the name the call gave.
        problems: the ``(path, message)`` pairs, in order.
    """

    def __init__(
        self, message: str, *, tool_name: str = "", problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.problems = list(problems or ())

    @classmethod
    def from_problems(cls, tool_name: str, problems: list[tuple[str, str]]) -> ToolCallError:
        """Return the error for ``problems``, its message listing each by path."""
        return cls(_call_message(tool_name, problems), tool_name=tool_name, problems=problems)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_call_error, (str(self), self.tool_name, self.problems))


def _rebuild_call_error(message: str, tool_name: str, problems: list[Any]) -> ToolCallError:
    return ToolCallError(message, tool_name=tool_name, problems=problems)


def _call_message(tool_name: str, problems: list[tuple[str, str]]) -> str:
    name = short_repr(tool_name)
    if len(problems) == 1 and not problems[0][0]:
        return f"Tool call {name} was not run: {problems[0][1]}"
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    lines = [f"Tool call {name} was not run: {count} with its arguments."]
    lines += [f"- {path}: {message}" if path else f"- {message}" for path, message in problems]
    lines.append("Fix every argument listed and call the tool again.")
    return "\n".join(lines)


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def is_collection(value: Any) -> bool:
    """True for an iterable of items given where a list is expected.

    A ``str`` or ``bytes`` is not one (it would be read a character at a time), nor is
    anything that cannot be iterated. The argument checks that say "must be a list of ..."
    share this test.
    """
    return not isinstance(value, str | bytes) and isinstance(value, Iterable)


def short_repr(value: Any) -> str:
    """Return ``repr(value)`` bounded in size, for error messages.

    A 10 MB name in a payload must not become a 10 MB exception message.
    """
    return _SHORT.repr(value)
