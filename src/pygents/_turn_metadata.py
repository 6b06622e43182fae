"""``TurnMetadata``: what happened to a turn (start, end, stop reason, trace context)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import Field, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, TypeVar

from . import _serde
from ._enums import StopReason
from .errors import SerializationError


class _Holder(Protocol):
    """Where metadata lives: a ``Turn``, or a standalone ``TurnMetadata``'s ``_Values``."""

    _start: float | None
    _end: float | None
    _enqueued: float | None
    _stop_reason: StopReason | None
    _trace_context: dict[str, str] | DeferredTraceContext | None
    _given: Any
    _attempt: int


__all__ = ["DeferredTraceContext", "TurnMetadata", "read", "trace_context_of"]

_log = logging.getLogger("pygents")
_tuple_new = tuple.__new__
_O = TypeVar("_O")


class DeferredTraceContext(NamedTuple):
    """A turn's trace context recorded as ``render(origin)``, not rendered yet.

    What ``TurnMetadata.defer_trace_context`` records and ``recorded_trace_context`` returns
    until the first read of ``trace_context`` renders it. Immutable (a copied turn shares it).
    """

    origin: Any
    render: Callable[[Any], dict[str, str] | None]


def trace_context_of(holder: Any) -> dict[str, str] | None:
    """``holder``'s trace context (a turn, or standalone storage), rendered if deferred."""
    value = holder._trace_context
    if value.__class__ is not DeferredTraceContext:
        return value  # type: ignore[no-any-return]
    try:
        carrier = value.render(value.origin)
        if carrier is not None and not (
            isinstance(carrier, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in carrier.items())
        ):
            raise TypeError(f"it returned {type(carrier).__name__}, not a dict of strings")
    except Exception:
        _log.exception("pygents: rendering a deferred trace context failed; the turn keeps none")
        carrier = None
    holder._trace_context = carrier
    return carrier


class _Values:
    """The storage of a standalone ``TurnMetadata`` (a turn stores the same fields itself)."""

    __slots__ = (
        "_attempt",
        "_end",
        "_enqueued",
        "_given",
        "_start",
        "_stop_reason",
        "_trace_context",
    )

    def __init__(self) -> None:
        self._attempt = 1
        self._given: Given | None = None
        self._start: float | None = None
        self._end: float | None = None
        self._enqueued: float | None = None
        self._stop_reason: StopReason | None = None
        self._trace_context: dict[str, str] | DeferredTraceContext | None = None


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

    if TYPE_CHECKING:  # made a dataclass below, where a type checker does not see it
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __init__(
        self,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        stop_reason: StopReason | None = None,
    ) -> None:
        self._turn: _Holder = _Values()
        self.start_time = start_time
        self.end_time = end_time
        self.stop_reason = stop_reason

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
        """When the turn last started (UTC), or the datetime it was given, or None."""
        holder = self._turn
        stamp = holder._start
        # Never started (or given None): None, without the call (the bridge asks per put).
        return None if stamp is None else _given(holder, 0, stamp)

    @start_time.setter
    def start_time(self, value: datetime | None) -> None:
        holder = self._turn
        holder._start = _remember(holder, 0, value)

    @property
    def end_time(self) -> datetime | None:
        """When the turn last ended (UTC), or the datetime it was given, or None."""
        holder = self._turn
        return _given(holder, 1, holder._end)

    @end_time.setter
    def end_time(self, value: datetime | None) -> None:
        holder = self._turn
        holder._end = _remember(holder, 1, value)

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
        """The W3C trace-context carrier of where the turn was created, if recorded.

        A context recorded with ``defer_trace_context`` is rendered on this first read.
        """
        value = self._turn._trace_context
        if value.__class__ is DeferredTraceContext:
            return trace_context_of(self._turn)
        return value  # type: ignore[return-value]

    @trace_context.setter
    def trace_context(self, value: dict[str, str] | None) -> None:
        self._turn._trace_context = value

    def defer_trace_context(
        self, origin: _O, render: Callable[[_O], dict[str, str] | None]
    ) -> None:
        """Record the trace context as ``render(origin)``, computed only when first read.

        For telemetry that records the causal origin of every turn, when the carrier itself
        is read only if the turn leaves the process (serialized, checkpointed, sent to
        another worker) or is inspected: the first read of ``trace_context`` (``dict()``,
        ``to_dict()``, a checkpoint, your code) calls ``render(origin)`` once and keeps the
        dict it returns. Until then ``recorded_trace_context`` is a ``DeferredTraceContext``
        holding ``origin`` and ``render``, so the recorder can use ``origin`` as it is; a
        copy of the turn (``Agent.branch()``) shares it, unrendered.

        ``render`` must return a dict of strings or None and should not raise: if it raises
        or returns anything else, the error is logged (logger ``pygents``) and the turn
        keeps no trace context. Assigning ``trace_context`` replaces a deferred one.

        Raises:
            TypeError: ``render`` is not callable.
        """
        if not callable(render):
            raise TypeError(
                f"defer_trace_context() needs a callable render, got {type(render).__name__}"
            )
        # tuple.__new__ directly: the named tuple's own __new__ is a Python function.
        self._turn._trace_context = _tuple_new(DeferredTraceContext, (origin, render))

    @property
    def recorded_trace_context(self) -> dict[str, str] | DeferredTraceContext | None:
        """The trace context as recorded, without rendering a deferred one.

        The carrier dict, a ``DeferredTraceContext`` (``defer_trace_context``, not read yet)
        or None. ``trace_context`` is the same context, rendered.
        """
        return self._turn._trace_context

    @property
    def attempt(self) -> int:
        """Which run of the turn this is: 1, or 2 and up when it runs again after an interruption.

        A service (``pygents.Service``) re-runs a turn whose run was interrupted (the process
        crashed, or the service was cancelled mid-turn) and counts up; a tool reads
        ``current_turn().metadata.attempt`` to stay idempotent. It takes no part in equality.
        """
        return self._turn._attempt

    @attempt.setter
    def attempt(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"TurnMetadata.attempt must be an int >= 1, got {value!r}")
        self._turn._attempt = value

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

        ``trace_context`` is included only when telemetry recorded one, ``attempt`` only
        when the turn is a re-run (2 and up).
        """
        turn = self._turn
        reason = turn._stop_reason
        start, end = _given(turn, 0, turn._start), _given(turn, 1, turn._end)
        out: dict[str, Any] = {
            "start_time": None if start is None else start.isoformat(),
            "end_time": None if end is None else end.isoformat(),
            "stop_reason": None if reason is None else reason.value,
        }
        carrier = trace_context_of(turn)
        if carrier is not None:
            out["trace_context"] = dict(carrier)
        if turn._attempt != 1:
            out["attempt"] = turn._attempt
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


# A dataclass, as the original's is (``dataclasses.fields``, ``asdict`` and ``replace`` work on
# its three fields, and ``match`` takes them positionally), whose fields are the properties
# above, over the turn's own storage: the decorator only describes them (it adds no
# ``__init__``, ``__eq__`` or ``__repr__``). Applied here, as mypy takes annotated class
# attributes that are also properties for a redefinition.
TurnMetadata.__annotations__ = {
    "start_time": "datetime | None",
    "end_time": "datetime | None",
    "stop_reason": "StopReason | None",
}
dataclass(init=False, repr=False, eq=False)(TurnMetadata)


def read(target: Any, data: Any, where: str) -> None:
    """Set ``target``'s metadata fields (a turn, or standalone storage) from their dict form.

    A time saved without a timezone (as the original pygents writes them) comes back as the
    same naive datetime, not shifted to UTC.
    """
    target._given = None
    for index, key in enumerate(("start_time", "end_time")):
        stamp = _serde.optional_time(data, key, where)
        raw = data.get(key)
        if isinstance(raw, str) and datetime.fromisoformat(raw).tzinfo is None:
            stamp = _remember(target, index, datetime.fromisoformat(raw))
        if index == 0:
            target._start = stamp
        else:
            target._end = stamp
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
    attempt = _serde.field(data, "attempt", int, where, default=1)
    if isinstance(attempt, bool) or attempt < 1:
        raise SerializationError(
            f"{where}: attempt must be an int >= 1, got {_serde.short(attempt)}"
        )
    target._attempt = attempt


#: The datetimes a turn was given, kept as given (a naive one stays naive, as the original
#: keeps them): (start stamp, start, end stamp, end). A stamp that no longer matches the turn's
#: own (the turn ran again) means the given datetime is stale.
Given = tuple[float | None, datetime | None, float | None, datetime | None]


def _given(holder: Any, index: int, stamp: float | None) -> datetime | None:
    given = holder._given
    if given is not None and given[2 * index + 1] is not None and given[2 * index] == stamp:
        return given[2 * index + 1]  # type: ignore[no-any-return]
    return _datetime(stamp)


def _remember(holder: Any, index: int, value: datetime | None) -> float | None:
    """Keep ``value`` as given on ``holder``; return its timestamp (None for None)."""
    stamp = None if value is None else value.timestamp()
    given = list(holder._given or (None, None, None, None))
    given[2 * index], given[2 * index + 1] = stamp, value
    holder._given = tuple(given)
    return stamp


def _datetime(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)
