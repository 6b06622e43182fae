"""``TurnMetadata``: what happened to a turn (start, end, stop reason, trace context)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import _serde
from ._enums import StopReason
from .errors import SerializationError

if TYPE_CHECKING:
    from ._turn import Turn

__all__ = ["TurnMetadata", "read"]


class _Values:
    """The storage of a standalone ``TurnMetadata`` (a turn stores the same fields itself)."""

    __slots__ = ("_end", "_enqueued", "_start", "_stop_reason", "_trace_context")

    def __init__(self) -> None:
        self._start: float | None = None
        self._end: float | None = None
        self._enqueued: float | None = None
        self._stop_reason: StopReason | None = None
        self._trace_context: dict[str, str] | None = None


class TurnMetadata:
    """What happened to a turn: start and end time, stop reason. Writable at any time.

    A value object: ``TurnMetadata(start_time, end_time, stop_reason)`` (all optional) can be
    built on its own, and two compare equal when those three fields are equal (to the
    microsecond). ``turn.metadata`` is a view of its turn (the values live on the turn, so a
    queued turn carries no extra objects); assigning ``turn.metadata = TurnMetadata(...)``
    sets the turn's three fields. ``trace_context`` is a string-to-string carrier (W3C
    ``traceparent`` and friends) that telemetry fills so a turn's causal origin survives
    serialization; it takes no part in equality.
    """

    __slots__ = ("_turn",)
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        stop_reason: StopReason | None = None,
    ) -> None:
        self._turn: Turn | _Values = _Values()
        self.start_time = start_time
        self.end_time = end_time
        self.stop_reason = stop_reason

    @classmethod
    def _of(cls, turn: Turn) -> TurnMetadata:
        """The view of ``turn``'s own fields."""
        view = object.__new__(cls)
        view._turn = turn
        return view

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TurnMetadata):
            return NotImplemented
        return (self.start_time, self.end_time, self.stop_reason) == (
            other.start_time,
            other.end_time,
            other.stop_reason,
        )

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
    def stop_reason(self, value: StopReason | str | None) -> None:
        self._turn._stop_reason = None if value is None else StopReason(value)

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
        """Return the metadata as a plain, JSON-compatible dict.

        ``trace_context`` is included only when telemetry recorded one.
        """
        turn = self._turn
        reason = turn._stop_reason
        out: dict[str, Any] = {
            "start_time": _serde.time_to_iso(turn._start),
            "end_time": _serde.time_to_iso(turn._end),
            "stop_reason": None if reason is None else reason.value,
        }
        carrier = turn._trace_context
        if carrier is not None:
            out["trace_context"] = dict(carrier)
        return out

    to_dict = dict

    @classmethod
    def from_dict(cls, data: Any) -> TurnMetadata:
        """Build standalone metadata from ``dict()`` output.

        Raises:
            SerializationError: a field has the wrong type or value.
        """
        where = "TurnMetadata.from_dict"
        data = _serde.mapping(data, where)
        meta = cls()
        read(meta._turn, data, where)
        return meta

    def __repr__(self) -> str:
        return (
            f"TurnMetadata(start_time={self.start_time!r}, end_time={self.end_time!r}, "
            f"stop_reason={self.stop_reason!r})"
        )


def read(target: Any, data: Any, where: str) -> None:
    """Set ``target``'s metadata fields (a turn, or standalone storage) from their dict form."""
    target._start = _serde.optional_time(data, "start_time", where)
    target._end = _serde.optional_time(data, "end_time", where)
    reason = _serde.field(data, "stop_reason", (str, type(None)), where, default=None)
    if reason is not None:
        try:
            target._stop_reason = StopReason(reason)
        except ValueError:
            raise SerializationError(
                f"{where}: unknown stop_reason {_serde.short(reason)}"
            ) from None
    carrier = _serde.field(data, "trace_context", (dict, type(None)), where, default=None)
    if carrier is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in carrier.items()):
            raise SerializationError(f"{where}: trace_context must map strings to strings")
        target._trace_context = dict(carrier)


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)
