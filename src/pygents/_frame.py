"""The execution frame: which agent, turn and tool the current task is running.

One ``ContextVar`` holding an ``(agent, turn, tool)`` triple, set around each turn and each
direct tool call. It sits at the bottom of the core (every layer sets or reads it); the public
accessors ``current_agent()`` and friends live in ``_current``, at the top.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["FRAME", "NO_FRAME"]

NO_FRAME: tuple[Any, Any, Any] = (None, None, None)
FRAME: ContextVar[tuple[Any, Any, Any]] = ContextVar("pygents_frame", default=NO_FRAME)
