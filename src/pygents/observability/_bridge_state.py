"""The bridge's per-execution state: what it keeps between an execution's open and close."""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cells import Lane

__all__ = ["CallState", "RunState", "State", "TurnState"]


class State:
    """An execution between open and close: its span, its OpenTelemetry context."""

    __slots__ = ("closed", "context", "span", "start", "yields")

    def __init__(self, start: int) -> None:
        self.start = start
        self.span: Any = None
        self.context: Any = None
        self.closed = False
        self.yields = 0


class RunState(State):
    """An agent run between open and close (its fields are set without a super call)."""

    __slots__ = ("agent", "cells", "turns")

    def __init__(self, agent: Any, start: int) -> None:
        self.start = start
        self.span: Any = None
        self.context: Any = None
        self.closed = False
        self.yields = 0
        self.agent = agent
        self.turns = 0
        #: The agent's metric cells, from the run's start (an agent is renamed only idle).
        self.cells: Any = None


class TurnState(State):
    """A turn between open and close (one per turn: its fields are set without a super call)."""

    __slots__ = ("agent", "lane", "meta", "tool_error", "tool_start", "tool_time", "turn")

    def __init__(self, turn: Any, agent: Any, lane: Lane, start: int) -> None:
        self.start = start
        self.span: Any = None
        self.context: Any = None
        self.closed = False
        self.yields = 0
        self.turn = turn
        self.meta = turn.metadata  # one view of the turn's metadata for its open and close
        self.agent = agent
        self.lane = lane
        self.tool_start = 0.0
        self.tool_time: float | None = None
        self.tool_error: BaseException | None = None


class CallState(State):
    """A tool called directly (not by a turn): its own span and timing.

    ``turn`` is the turn the call was made in (``current_turn()`` when it opened), so events
    can tell whether the call is the innermost execution or a turn started inside it is.
    """

    __slots__ = ("clock", "turn")

    def __init__(self, start: int, turn: Any) -> None:
        super().__init__(start)
        self.turn = turn
        self.clock = perf_counter()
