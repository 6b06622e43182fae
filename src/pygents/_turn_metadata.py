"""``TurnMetadata``: what happened to a turn (start, end, stop reason, trace context)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import _serde
from ._enums import StopReason

if TYPE_CHECKING:
    from ._turn import Turn

__all__ = ["TurnMetadata"]


class TurnMetadata:
    """What happened to a turn: start and end time, stop reason. Writable at any time.

    A view of its turn (the values live on the turn, so a queued turn carries no extra
    objects). ``trace_context`` is a string-to-string carrier (W3C ``traceparent`` and
    friends) that telemetry fills so a turn's causal origin survives serialization.
    """

    __slots__ = ("_turn",)

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    @property
    def start_time(self) -> datetime | None:
        """When the turn last started (UTC), or None."""
        return _datetime(self._turn._start)

    @start_time.setter
    def start_time(self, value: datetime | None) -> None:
        self._turn._start = None if value is None else value.timestamp()

    @property
    def end_time(self) -> datetime | None:
        """When the turn last ended (UTC), or None."""
        return _datetime(self._turn._end)

    @end_time.setter
    def end_time(self, value: datetime | None) -> None:
        self._turn._end = None if value is None else value.timestamp()

    @property
    def enqueued_time(self) -> datetime | None:
        """When the turn was last put on an agent's queue (UTC), or None."""
        return _datetime(self._turn._enqueued)

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the turn last stopped, or None if it has not run (or is running)."""
        return self._turn._stop_reason

    @stop_reason.setter
    def stop_reason(self, value: StopReason | None) -> None:
        self._turn._stop_reason = value

    @property
    def trace_context(self) -> dict[str, str] | None:
        """The W3C trace-context carrier of where the turn was created, if recorded."""
        return self._turn._trace_context

    @trace_context.setter
    def trace_context(self, value: dict[str, str] | None) -> None:
        self._turn._trace_context = value

    @property
    def queue_wait(self) -> float | None:
        """Seconds the turn waited in an agent's queue before its last run, or None."""
        turn = self._turn
        if turn._enqueued is None or turn._start is None or turn._start < turn._enqueued:
            return None
        return turn._start - turn._enqueued

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, or None if the turn has not ended."""
        turn = self._turn
        if turn._start is None or turn._end is None:
            return None
        return turn._end - turn._start

    def dict(self) -> dict[str, Any]:
        """Return the metadata as a plain, JSON-compatible dict."""
        turn = self._turn
        reason = turn._stop_reason
        carrier = turn._trace_context
        return {
            "start_time": _serde.time_to_iso(turn._start),
            "end_time": _serde.time_to_iso(turn._end),
            "stop_reason": None if reason is None else reason.value,
            "trace_context": None if carrier is None else dict(carrier),
        }

    def __repr__(self) -> str:
        return f"TurnMetadata(stop_reason={self.stop_reason!r}, duration={self.duration!r})"


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)
