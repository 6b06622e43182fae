"""Which agent, turn and tool are executing in the current task.

One ``ContextVar`` holds an ``(agent, turn, tool)`` triple; it is set around each turn and
each direct tool call, so any hook (even a ``ToolHook``, which only receives the tool's
arguments) can ask what it is running under.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._frame import get_frame

if TYPE_CHECKING:  # this module sits above them: nothing in the core imports it
    from ._agent import Agent
    from ._tool import Tool
    from ._turn import Turn

__all__ = ["current_agent", "current_tool", "current_turn"]


def current_agent() -> Agent | None:
    """Return the agent running in the current task, or None outside an agent."""
    agent: Agent | None = get_frame()[0]
    return agent


def current_turn() -> Turn | None:
    """Return the turn executing in the current task, or None."""
    turn: Turn | None = get_frame()[1]
    return turn


def current_tool() -> Tool | None:
    """Return the tool executing in the current task, or None."""
    tool: Tool | None = get_frame()[2]
    return tool
