"""The execution frame: which agent, turn and tool the current task is running.

One ``ContextVar`` holds the frame, set around each turn and each direct tool call. It sits at
the bottom of the core (every layer sets or reads it); the public accessors
``current_agent()`` and friends live in ``_current``, at the top.

A frame is read by index: ``frame[0]`` the agent, ``[1]`` the turn, ``[2]`` the tool. Most
frames are ``(agent, turn, tool)`` tuples, set and then put back (two switches of the context
variable). A turn run by the agent's run loop instead sets a *live frame*, the list
``[agent, turn, tool, True]``, and when it ends ``leave()`` overwrites that list with the
frame it replaced and marks it dead (``[3]`` False) rather than switching the variable back:
whoever reads it afterwards (the consumer of ``run()``, a task the tool started that outlives
the turn) sees the enclosing frame, as after a switch back, for one context-variable switch
per turn instead of two. Only a frame that can still change (a live one) is restored by a
real switch.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["FRAME", "NO_FRAME", "get_frame", "leave", "set_frame"]

NO_FRAME: tuple[Any, Any, Any] = (None, None, None)
FRAME: ContextVar[Any] = ContextVar("pygents_frame", default=NO_FRAME)
# The variable's methods, bound once. Since Python 3.12 the compiler does not emit a method
# call for ``name.method()`` when ``name`` was imported (it takes it for a module), so
# ``FRAME.get()`` in another module builds a bound method at every call, through the generic
# attribute lookup (its two calls per turn cost the run loop ~1,500 instructions, 3.12);
# these are called directly.
get_frame = FRAME.get
set_frame = FRAME.set


def leave(frame: list[Any], outer: Any) -> None:
    """End a live ``frame`` that replaced ``outer``: it now reads as ``outer`` for good."""
    if outer.__class__ is tuple or not outer[3]:  # outer never changes again: copy it
        frame[0] = outer[0]
        frame[1] = outer[1]
        frame[2] = outer[2]
        frame[3] = False
    else:  # a live frame (an enclosing turn's) changes when it ends: switch back for real
        set_frame(outer)
