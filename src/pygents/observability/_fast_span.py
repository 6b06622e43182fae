"""The fast span path: the SDK's spans, started and ended without its per-span overhead.

The OpenTelemetry SDK's ``Tracer.start_span`` + ``Span.end`` cost about half of a traced turn:
every start attribute is cleaned, four locks are taken, processors are called on start, and the
span is copied into a ``ReadableSpan`` at end. For a turn most of that work has no effect: the
bridge's attributes are plain strings and numbers, the usual processors (batch, simple) do
nothing on start. This module starts a span the way the SDK does (same sampler call, ids,
parent, flags, trace state, resource, scope, limits) but as a ``FastSpan``: a subclass of the
SDK's ``Span`` whose storage starts cheap (a plain dict of attributes while every value is one
the SDK would store unchanged, no event or link list until one is added) and whose ``end()``
builds the ``ReadableSpan`` directly and hands it to the span processors' ``on_end``. Every other
method is the SDK's own, so what user code does with the current span (attributes, events,
links, status, exceptions, names) is validated and limited exactly as the SDK does.

It is used only when exactness is known (see ``fast_tracer``): an SDK ``Tracer`` whose
``start_span``/``Span`` code references nothing this module does not reproduce, and whose span
processors are all known to do nothing on start (``SpanProcessor``'s own no-op, the batch and
simple processors', inside the SDK's multi-processors). Anything else, a processor added later
included, sends spans through the public SDK API. ``PYGENTS_FAST_SPANS=0`` forces that path.
"""

from __future__ import annotations

import inspect
import logging
import random
import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from threading import Lock
from time import time_ns
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import id_generator as id_generator_module
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

# The environment switch (``0`` / ``false`` / ``off`` force the public SDK API), shared with
# the direct context access.
from ._otel_context import FAST_SPANS_ENV, fast_spans_enabled

__all__ = ["FAST_SPANS_ENV", "FastSpan", "FastTracer", "fast_spans_enabled", "fast_tracer"]

logger = logging.getLogger(__name__)


_SdkSpan: Any = sdk_trace.Span


def _sdk_span_types() -> frozenset[type]:
    """The SDK's span classes whose ``get_span_context()`` is ``Span``'s (its ``_context``).

    ``Span``, and the ``_Span`` the SDK's tracer makes (a subclass that only closes the ABC)
    when it adds nothing else.
    """
    found = {_SdkSpan}
    private = getattr(sdk_trace, "_Span", None)
    if (
        isinstance(private, type)
        and issubclass(private, _SdkSpan)
        and set(vars(private)) <= {"__module__", "__doc__", "__abstractmethods__", "_abc_impl"}
    ):
        found.add(private)
    return frozenset(found)


#: The SDK's own span classes (see ``_sdk_span_types``).
_SDK_SPANS = _sdk_span_types()
_ReadableSpan: Any = sdk_trace.ReadableSpan
#: The SDK logs its span warnings ("Calling end() on an ended span.") on its module's logger.
_sdk_logger = logging.getLogger(sdk_trace.__name__)
#: ReadableSpan's default status object (the SDK's spans start with it).
_UNSET_STATUS = inspect.signature(sdk_trace.ReadableSpan.__init__).parameters["status"].default
_INTERNAL = SpanKind.INTERNAL
#: A span's ``_events`` and ``_links`` until something is added (a list is made then; links
#: given at the start, or an event the span ends with, may stay a tuple: see ``FastSpan``).
_NONE_YET: Any = ()
#: Value types every supported SDK stores as given (no cleaning, copying or conversion), when
#: no value length limit is set. Exact types: a subclass may be converted.
_PLAIN = frozenset({str, bool, int, float})

#: Every name the SDK's span creation code may reference (the code of 1.27 through 1.45). A
#: release whose code references anything else changed what starting or ending a span does:
#: until this module is checked against it, spans take the public API.
_KNOWN_NAMES: dict[str, frozenset[str]] = {
    "Tracer.start_span": frozenset(
        "DEFAULT NonRecordingSpan RANDOM_TRACE_ID SAMPLED SpanContext TraceFlags TypeError _Span "
        "_instrumentation_scope _is_enabled _span_limits _tracer_metrics attributes copy decision "
        "generate_span_id generate_trace_id get_current_span get_span_context id_generator "
        "instrumentation_info is_recording is_sampled is_trace_id_random is_valid isinstance "
        "random_trace_id resource sampler should_sample span_processor start start_span "
        "trace_api trace_flags trace_id trace_state".split()
    ),
    "Span.__init__": frozenset(
        "BoundedAttributes Lock Resource __init__ _attributes _events _limits _links _lock "
        "_new_events _new_links _record_end_metrics _record_exception _sampler "
        "_set_status_on_exception _span_processor _trace_config append attributes create "
        "max_attribute_length max_event_attributes max_span_attribute_length max_span_attributes "
        "super threading".split()
    ),
    "Span.start": frozenset(
        "_lock _span_processor _start_time logger on_start time_ns warning".split()
    ),
    "Span.end": frozenset(
        "RuntimeError _attributes _end_time _immutable _lock _on_ending _readable_span "
        "_record_end_metrics _span_processor _start_time logger on_end time_ns warning".split()
    ),
    "Span._readable_span": frozenset(
        "ReadableSpan _attributes _context _end_time _events _instrumentation_info "
        "_instrumentation_scope _links _name _parent _resource _start_time _status kind".split()
    ),
}


def _code_names(function: Any) -> frozenset[str]:
    """The global and attribute names a function's code (and its nested code) references."""
    names: set[str] = set()
    stack = [function.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset(names)


def _sdk_span_code_names() -> dict[str, frozenset[str]] | None:
    """The names the installed SDK's span code references, or None if one is unknown."""
    functions = {
        "Tracer.start_span": sdk_trace.Tracer.start_span,
        "Span.__init__": _SdkSpan.__init__,
        "Span.start": _SdkSpan.start,
        "Span.end": _SdkSpan.end,
        "Span._readable_span": _SdkSpan._readable_span,
    }
    found = {}
    for key, function in functions.items():
        try:
            names = _code_names(function)
        except AttributeError:
            return None
        if not names <= _KNOWN_NAMES[key]:
            logger.debug("fast spans off: %s references %s", key, sorted(names - _KNOWN_NAMES[key]))
            return None
        found[key] = names
    return found


#: The names ``Span.add_event`` references (1.27 through 1.45): the event's attributes bounded
#: by the span's event limits (an immutable ``BoundedAttributes``), then ``_add_event(Event(...))``.
_ADD_EVENT_NAMES = frozenset(
    "BoundedAttributes Event _add_event _limits max_attribute_length max_event_attributes".split()
)


def _add_event_known() -> bool:
    """True when the installed SDK's ``Span.add_event`` does what ``_ADD_EVENT_NAMES`` says."""
    try:
        names = _code_names(_SdkSpan.add_event)
    except AttributeError:
        return False
    if not names <= _ADD_EVENT_NAMES or not hasattr(sdk_trace, "Event"):
        logger.debug("shared event attributes off: add_event references %s", sorted(names))
        return False
    return True


_READABLE_SPAN_PARAMETERS = (
    "self name context parent resource attributes events links kind instrumentation_info "
    "status start_time end_time instrumentation_scope"
).split()


def _sdk_code_names() -> dict[str, frozenset[str]] | None:
    """``_sdk_span_code_names()``, and None when ReadableSpan's parameters moved."""
    parameters = list(inspect.signature(sdk_trace.ReadableSpan.__init__).parameters)
    if parameters != _READABLE_SPAN_PARAMETERS:
        logger.debug("fast spans off: ReadableSpan takes %s", parameters)
        return None
    return _sdk_span_code_names()


_SDK_NAMES = _sdk_code_names()


def _all_plain(attributes: Mapping[str, Any]) -> bool:
    """True when the SDK would store every one of these attributes exactly as given."""
    for key, value in attributes.items():
        if type(value) not in _PLAIN or type(key) is not str or not key:
            return False
    return True


# -- span processors ---------------------------------------------------------------------------

_MULTI = (sdk_trace.SynchronousMultiSpanProcessor, sdk_trace.ConcurrentMultiSpanProcessor)
#: ``on_start`` / ``_on_ending`` implementations known to do nothing.
_NO_OP_HOOKS = frozenset(
    getattr(cls, hook, None)
    for cls in (sdk_trace.SpanProcessor, BatchSpanProcessor, SimpleSpanProcessor)
    for hook in ("on_start", "_on_ending")
) - {None}


def _quiet_processors(multi: Any) -> tuple[Any, ...] | None:
    """The multi-processor's processors if none of them acts on start or ending, else None."""
    if type(multi) not in _MULTI:
        return None
    processors = getattr(multi, "_span_processors", None)
    if type(processors) is not tuple:
        return None
    for processor in processors:
        for hook in ("on_start", "_on_ending"):
            method = getattr(type(processor), hook, None)
            if method is not None and method not in _NO_OP_HOOKS:
                return None
    return processors


# -- samplers ----------------------------------------------------------------------------------


def _sdk_samplers() -> tuple[frozenset[type], frozenset[type]]:
    static = frozenset(
        getattr(sampling, name)
        for name in ("StaticSampler", "TraceIdRatioBased")
        if hasattr(sampling, name)
    )
    parent_based = frozenset(
        getattr(sampling, name)
        for name in (
            "ParentBased",
            "ParentBasedTraceIdRatio",
            "_ParentBasedAlwaysOff",
            "_ParentBasedAlwaysOn",
        )
        if hasattr(sampling, name)
    )
    return static, parent_based


_STATIC_SAMPLERS, _PARENT_BASED_SAMPLERS = _sdk_samplers()
_DELEGATES = (
    "_root",
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)


def _keeps_attributes(sampler: Any) -> bool:
    """True for the SDK's samplers: a sampled result carries the attributes they were given."""
    kind = type(sampler)
    if kind in _STATIC_SAMPLERS:
        return True
    if kind in _PARENT_BASED_SAMPLERS:
        return all(_keeps_attributes(getattr(sampler, name, None)) for name in _DELEGATES)
    return False


def _static_delegate(sampler: Any, which: str) -> Any:
    """The static delegate ``sampler`` asks in one case, if its answer is known.

    ``which``: ``_local_parent_sampled`` (a local, sampled parent) or ``_root`` (no valid
    parent). For the SDK's ``ParentBased`` samplers (the default is ``ParentBased(ALWAYS_ON)``)
    whose delegate for that case is a ``StaticSampler`` that samples, ``should_sample``
    returns that decision, the attributes it was given, and the parent's trace state (None
    without a parent), whatever else it is given. Checked against the code of the SDK's
    ``should_sample`` methods; None (ask the sampler) for anything else.
    """
    if type(sampler) not in _PARENT_BASED_SAMPLERS:
        return None
    if type(sampler).should_sample is not sampling.ParentBased.should_sample:
        return None
    delegate = getattr(sampler, which, None)
    if type(delegate) is not sampling.StaticSampler:
        return None
    if getattr(delegate, "_decision", None) is not sampling.Decision.RECORD_AND_SAMPLE:
        return None
    known = {
        sampling.ParentBased.should_sample: _PARENT_BASED_NAMES,
        sampling.StaticSampler.should_sample: _STATIC_NAMES,
        sampling._get_parent_trace_state: _PARENT_STATE_NAMES,
        sampling.SamplingResult.__init__: _RESULT_NAMES,
    }
    for function, names in known.items():
        if not _code_names(function) <= names:
            return None
    return delegate


#: What those functions reference in SDK 1.27 through 1.45.
_PARENT_BASED_NAMES = frozenset(
    "_local_parent_not_sampled _local_parent_sampled _remote_parent_not_sampled "
    "_remote_parent_sampled _root get_current_span get_span_context is_remote is_valid "
    "sampled should_sample trace_flags".split()
)
_STATIC_NAMES = frozenset("DROP Decision SamplingResult _decision _get_parent_trace_state".split())
_PARENT_STATE_NAMES = frozenset("get_current_span get_span_context is_valid trace_state".split())
_RESULT_NAMES = frozenset("MappingProxyType attributes decision trace_state".split())


# -- the span ----------------------------------------------------------------------------------


class FastSpan(_SdkSpan):  # type: ignore[misc]
    """An SDK span, cheap to start and end; every public method keeps the SDK's behaviour.

    Made by ``FastTracer.start_span`` only (never through ``__init__``). ``_events`` and
    ``_links`` are the empty tuple (``_NONE_YET``) until something is added, the links
    given at the start are a tuple while none was dropped (a ``BoundedList`` is made of them
    when a link is added), an event the span ends with may be a one-event tuple, and
    ``_attributes`` is a plain dict while every value in it is one the SDK stores unchanged
    and no limit can drop one (then a ``BoundedAttributes`` exactly like the SDK's).
    """

    # Set per span by FastTracer.start_span (typed here: the SDK's Span is untyped to mypy),
    # the fields that are the same for every span of the bridge too: before Python 3.13 a
    # class attribute read through an instance is never specialised (~150 instructions a
    # read), nor is a store to an instance attribute of the same name.
    _name: str
    _context: SpanContext
    _parent: SpanContext | None
    _attributes: Any
    _limits: Any
    _lock: Any
    _span_processor: Any
    _start_time: int
    _kind: SpanKind
    _end_time: int | None
    _events: Any
    _links: Any
    _status: Any
    _record_end_metrics: Callable[[], None] | None
    #: The processors ``on_start`` was (not) called for; ``end`` calls ``_on_ending`` itself
    #: when processors were added since.
    _quiet: tuple[Any, ...]

    # Read only by the SDK's own methods: on the class.
    _trace_config = None
    _record_exception = True
    _set_status_on_exception = True

    # -- storage, made exact on demand -------------------------------------------------------

    def _bounded_attributes(self) -> Any:
        """Switch to a ``BoundedAttributes`` as the SDK's span holds; return it."""
        attributes = self._attributes
        if type(attributes) is dict:
            limits = self._limits
            attributes = self._attributes = BoundedAttributes(
                limits.max_span_attributes,
                attributes,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        return attributes

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set attributes (see ``opentelemetry.trace.Span``), validated as the SDK does."""
        with self._lock:
            if self._end_time is not None:
                _sdk_logger.warning("Setting attribute on ended span.")
                return
            stored = self._attributes
            if type(stored) is dict:
                limit = self._limits.max_span_attributes
                if (limit is None or len(stored) + len(attributes) <= limit) and _all_plain(
                    attributes
                ):
                    for key, value in attributes.items():
                        # An updated key moves to the end, as in BoundedAttributes.
                        stored.pop(key, None)
                        stored[key] = value
                    return
                self._bounded_attributes()
        super().set_attributes(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (see ``opentelemetry.trace.Span``), validated as the SDK does."""
        with self._lock:
            if self._end_time is not None:
                _sdk_logger.warning("Setting attribute on ended span.")
                return
            stored = self._attributes
            if type(stored) is dict:
                limit = self._limits.max_span_attributes
                if (
                    type(value) in _PLAIN
                    and type(key) is str
                    and key
                    and (limit is None or len(stored) < limit or key in stored)
                ):
                    stored.pop(key, None)
                    stored[key] = value
                    return
                self._bounded_attributes()
        super().set_attribute(key, value)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        """Add an event (see ``opentelemetry.trace.Span``), limited as the SDK does."""
        if self._events is _NONE_YET:
            with self._lock:
                if self._events is _NONE_YET:
                    self._events = BoundedList(self._limits.max_events)
        super().add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        """Add a link (see ``opentelemetry.trace.Span``), limited as the SDK does."""
        if type(self._links) is tuple:
            with self._lock:
                links = self._links
                if type(links) is tuple:  # none dropped: the list the SDK would hold
                    most = self._limits.max_links
                    self._links = BoundedList.from_seq(most, links) if links else BoundedList(most)
        super().add_link(context, attributes)

    def _add_shared_event(self, name: str, attributes: Any, timestamp: int | None = None) -> None:
        """``add_event(name, ..., timestamp)`` with attributes from ``event_attributes()``.

        What the SDK's ``add_event`` does, but the immutable ``BoundedAttributes`` it would
        build is one built before for the same attributes and limits, shared between events.
        """
        if not _EVENTS_KNOWN:
            if self._events is _NONE_YET:
                with self._lock:
                    if self._events is _NONE_YET:
                        self._events = BoundedList(self._limits.max_events)
            self._add_event(_Event(name, attributes, timestamp))
            return
        # ``_add_event(Event(name, attributes))`` written out (see ``_events_known``): the
        # event made with its fields, appended under the span's lock and the list's, as the
        # SDK's ``_check_span_ended`` wrapper and ``BoundedList.append`` do.
        event = _new_object(_Event)
        event._name = name
        event._timestamp = time_ns() if timestamp is None else timestamp
        event._attributes = attributes
        lock = self._lock
        lock.acquire()  # not `with` (see _end_plain)
        try:
            if self._end_time is None:
                events = self._events
                if events is _NONE_YET:
                    events = self._events = _new_bounded_list(self._limits.max_events)
                inner = events._lock
                inner.acquire()
                try:
                    queue = events._dq
                    if queue.maxlen is not None and len(queue) == queue.maxlen:
                        events.dropped += 1
                    queue.append(event)
                finally:
                    inner.release()
                return
        finally:
            lock.release()
        _sdk_logger.warning("Tried calling %s on an ended span.", "_add_event")

    def _set_plain_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set attributes the bridge made plain and never changes, without checking them.

        Plain: str keys and str/bool/int/float values, which the SDK stores unchanged.
        """
        lock = self._lock
        lock.acquire()  # not `with` (see _end_plain)
        try:
            stored = self._attributes
            limit = self._limits.max_span_attributes
            if (
                self._end_time is None
                and type(stored) is dict
                and (limit is None or len(stored) + len(attributes) <= limit)
            ):
                for key, value in attributes.items():
                    stored.pop(key, None)
                    stored[key] = value
                return
        finally:
            lock.release()
        self.set_attributes(attributes)

    # -- ending ------------------------------------------------------------------------------

    def _end_plain(
        self,
        attributes: Mapping[str, Any],
        end_time: int,
        event_name: str | None = None,
        event_attributes: Any = None,
    ) -> None:
        """``_set_plain_attributes(attributes)`` then ``end(end_time)``, under one lock.

        With ``event_name``, ``_add_shared_event(event_name, event_attributes, end_time)``
        first (the event at the end of the span it closes). For a
        span with no event yet that is in the same step: the event is its only one, so
        ``_events`` becomes the one-event tuple the ``ReadableSpan`` would copy out of the
        SDK's list (no list made, nothing dropped; a span limited to no events takes the
        steps one by one, as does every span the single step does not fit).

        The span's lock is taken with ``acquire()`` and released in a ``finally``, not by a
        ``with`` statement, which costs ~1,500 instructions more (3.12: ``__enter__`` and
        ``__exit__`` looked up and called generically), here and on every hot path.
        """
        lock = self._lock
        lock.acquire()
        try:
            stored = self._attributes
            limit = self._limits.max_span_attributes
            done = (
                self._end_time is None
                and type(stored) is dict
                and (limit is None or len(stored) + len(attributes) <= limit)
            )
            if done and event_name is not None:
                most = self._limits.max_events
                done = _EVENTS_KNOWN and self._events is _NONE_YET and (most is None or most > 0)
                if done:  # Event(...) made with its fields, as _add_shared_event does
                    event = _new_object(_Event)
                    event._name = event_name
                    event._timestamp = end_time
                    event._attributes = event_attributes
                    self._events = (event,)
            if done:
                for key, value in attributes.items():
                    stored.pop(key, None)
                    stored[key] = value
                self._end_time = end_time
        finally:
            lock.release()
        if done:
            self._ended(stored, end_time)  # outside the lock, as end() calls the processors
            return
        if event_name is not None:
            self._add_shared_event(event_name, event_attributes, end_time)
        self.set_attributes(attributes)
        self.end(end_time)

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand its ``ReadableSpan`` to the processors, as the SDK does."""
        lock = self._lock
        lock.acquire()  # not `with` (see _end_plain)
        try:
            if self._end_time is not None:
                _sdk_logger.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time = end_time if end_time is not None else time_ns()
            attributes = self._attributes
            if type(attributes) is not dict and _FREEZE_AT_END:
                attributes._immutable = True
        finally:
            lock.release()
        self._ended(attributes, end_time)

    def _ended(self, attributes: Any, end_time: int) -> None:
        """What ``end`` does once the end time is set: end metrics, processors."""
        if self._record_end_metrics is not None:
            self._record_end_metrics()
        processor = self._span_processor
        if _ON_ENDING and processor._span_processors is not self._quiet:
            processor._on_ending(self)  # processors added since the start may act on it
        # What the SDK's Span._readable_span() makes (positionally: keywords cost more).
        processor.on_end(
            _ReadableSpan(
                self._name,
                self._context,
                self._parent,
                self._resource,
                attributes,
                self._events,
                self._links,
                self._kind,
                self._instrumentation_info,
                self._status,
                self._start_time,
                end_time,
                self._instrumentation_scope,
            )
        )


_START_NAMES = (_SDK_NAMES or {}).get("Tracer.start_span", frozenset())
_END_NAMES = (_SDK_NAMES or {}).get("Span.end", frozenset())
_CHECK_ENABLED = "_is_enabled" in _START_NAMES
_RANDOM_FLAG = "random_trace_id" in _START_NAMES
_TRACER_METRICS = "_tracer_metrics" in _START_NAMES
_ON_ENDING = "_on_ending" in _END_NAMES
_FREEZE_AT_END = "_immutable" in _END_NAMES

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
if _RANDOM_FLAG:
    _RANDOM = TraceFlags.RANDOM_TRACE_ID
    _SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | _RANDOM)
    _NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | _RANDOM)

_Event = sdk_trace.Event
#: Whether events may share their attributes (see ``event_attributes``).
SHARED_EVENTS = _add_event_known()


def event_attributes(limits: Any, attributes: Mapping[str, Any]) -> BoundedAttributes:
    """The attributes the SDK's ``add_event`` gives an event, for spans with these limits.

    Immutable: one may serve every event of the same name and attributes (see
    ``FastSpan._add_shared_event``).
    """
    return BoundedAttributes(
        limits.max_event_attributes,
        attributes,
        max_value_len=limits.max_attribute_length,
        immutable=True,
    )


_new_span = object.__new__
_tuple_new = tuple.__new__
_dict_get = dict.get
_dict_copy = dict.copy


def _span_context_constants() -> tuple[bool, Any, int, int]:
    """Whether ``SpanContext.__new__`` is the known code (and the constants it uses)."""
    from opentelemetry.trace import span as span_module

    names = frozenset(
        "DEFAULT_TRACE_OPTIONS DEFAULT_TRACE_STATE INVALID_SPAN_ID INVALID_TRACE_ID "
        "_SPAN_ID_MAX_VALUE _TRACE_ID_MAX_VALUE __new__ tuple".split()
    )
    try:
        known = (
            SpanContext.__new__ is span_module.SpanContext.__new__
            and _code_names(SpanContext.__new__) <= names
            and span_module.INVALID_TRACE_ID == 0
            and span_module.INVALID_SPAN_ID == 0
            and tuple(inspect.signature(SpanContext.__new__).parameters)
            == ("cls", "trace_id", "span_id", "is_remote", "trace_flags", "trace_state")
        )
        return (
            known,
            span_module.DEFAULT_TRACE_STATE,
            span_module._TRACE_ID_MAX_VALUE,
            span_module._SPAN_ID_MAX_VALUE,
        )
    except (AttributeError, TypeError, ValueError):
        return False, None, 0, 0


_new_object = object.__new__
_DIRECT_CONTEXT, _DEFAULT_TRACE_STATE, _TRACE_ID_MAX, _SPAN_ID_MAX = _span_context_constants()
_get_current_span = trace_api.get_current_span


def _indexed_context() -> bool:
    """Whether a ``SpanContext``'s fields are its tuple's items, in the order unpacked below.

    ``(trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)``: its properties
    read ``self[0]`` to ``self[5]`` (API 1.27 through 1.45); checked on an instance.
    """
    try:
        sample = SpanContext(3, 5, True, TraceFlags(1))
        fields = ("trace_id", "span_id", "is_remote", "trace_flags", "trace_state", "is_valid")
        return (
            len(tuple(sample)) == 6
            and type(sample).__getitem__ is tuple.__getitem__
            and all(getattr(sample, f) is v for f, v in zip(fields, tuple(sample), strict=True))
            and all(_code_names(getattr(SpanContext, f).fget) <= frozenset() for f in fields)
        )
    except Exception:
        return False


#: SpanContext fields read by unpacking (see ``_indexed_context``).
INDEXED_CONTEXT = _indexed_context()


def _span_key() -> str | None:
    """The context key of the current span, when the API's span functions are the known code.

    ``get_current_span(context)`` is ``context.get(_SPAN_KEY)`` checked to be a ``Span``;
    ``set_span_in_context(span, context)`` is ``Context({**context, _SPAN_KEY: span})``; the
    SDK's ``Span.get_span_context()`` returns ``_context`` (API and SDK 1.27 through 1.45).
    """
    from opentelemetry import context as context_api
    from opentelemetry.trace import propagation

    expected = {
        propagation.get_current_span: "INVALID_SPAN Span _SPAN_KEY context get_value isinstance",
        propagation.set_span_in_context: "_SPAN_KEY context set_value",
        context_api.get_value: "get get_current",
        context_api.set_value: "Context copy get_current",
        _SdkSpan.get_span_context: "SpanContext _context cast trace_api typing",
    }
    try:
        for function, names in expected.items():
            if not _code_names(function) <= frozenset(names.split()):
                return None
        key = propagation._SPAN_KEY
        known = (
            trace_api.get_current_span is propagation.get_current_span
            and trace_api.set_span_in_context is propagation.set_span_in_context
            and getattr(propagation, "get_value", None) is context_api.get_value
            and getattr(propagation, "set_value", None) is context_api.set_value
        )
    except AttributeError:
        return None
    return key if known and type(key) is str else None


_SPAN_KEY = _span_key()


def _random_ids() -> bool:
    """Whether ``RandomIdGenerator`` draws its ids as ``getrandbits`` until non-zero.

    ``generate_span_id()`` 64 bits, ``generate_trace_id()`` 128 bits, and, where the SDK asks
    it, ``is_trace_id_random()`` a constant True: what the fast path then does without the
    calls.
    """
    generator = _RandomIdGenerator
    try:
        random_flag = getattr(generator, "is_trace_id_random", None)
        return (
            _code_names(generator.generate_span_id)
            <= {"random", "getrandbits", "trace", "INVALID_SPAN_ID"}
            and _code_names(generator.generate_trace_id)
            <= {"random", "getrandbits", "trace", "INVALID_TRACE_ID"}
            and trace_api.INVALID_SPAN_ID == 0
            and trace_api.INVALID_TRACE_ID == 0
            and getattr(id_generator_module, "random", None) is random
            and (
                not _RANDOM_FLAG
                or (
                    random_flag is not None
                    and not _code_names(random_flag)
                    and generator().is_trace_id_random() is True
                )
            )
        )
    except (AttributeError, TypeError):
        return False


_RandomIdGenerator = id_generator_module.RandomIdGenerator
_RANDOM_IDS = _random_ids()
#: What ``get_current_span(context).get_span_context()`` gives for a context without a span.
_NO_PARENT = trace_api.INVALID_SPAN.get_span_context()


def _links_known() -> bool:
    """Whether ``Span._new_links`` and ``BoundedList`` are the code ``_new_links`` writes out."""
    expected = {
        _SdkSpan._new_links: "BoundedAttributes BoundedList _attributes _is_valid_link _limits "
        "append attributes context from_seq max_attribute_length max_link_attributes max_links",
        BoundedList.__init__: "Lock _dq _lock deque dropped threading",
        BoundedList.extend: "_dq _lock dropped extend len maxlen",
        vars(BoundedList)["from_seq"].__func__: "extend tuple",
    }
    try:
        return (
            all(_code_names(f) <= frozenset(n.split()) for f, n in expected.items())
            and BoundedList.__new__ is object.__new__
            and callable(getattr(sdk_trace, "_is_valid_link", None))
        )
    except AttributeError:
        return False


_LINKS_KNOWN = _links_known()


def _new_bounded_list(maxlen: int | None, items: Sequence[Any] = ()) -> Any:
    """``BoundedList.from_seq(maxlen, items)``, its fields set directly (see ``_links_known``).

    Without ``items``, ``BoundedList(maxlen)``.
    """
    bounded: Any = _new_object(BoundedList)
    bounded.dropped = max(0, len(items) - maxlen) if items and maxlen is not None else 0
    bounded._dq = deque(items, maxlen)  # positionally: keywords cost a C call 1,600 more
    bounded._lock = Lock()
    return bounded


def _events_known() -> bool:
    """Whether adding an event is the code ``FastSpan._add_shared_event`` writes out.

    ``Span._add_event`` is ``_check_span_ended``'s wrapper (under the span's lock, unless the
    span ended: then a warning) around ``self._events.append(event)``; ``BoundedList.append``
    counts a drop when full; ``Event.__init__`` sets the name, a ``time_ns()`` timestamp and
    the attributes, on an instance without slots.
    """
    add = _SdkSpan._add_event
    inner = [
        cell.cell_contents
        for cell in getattr(add, "__closure__", None) or ()
        if isinstance(cell.cell_contents, types.FunctionType)
    ]
    event_base = getattr(sdk_trace, "EventBase", None)
    if len(inner) != 1 or event_base is None or not _LINKS_KNOWN:
        return False
    expected = {
        add: "_end_time _lock __name__ logger warning",
        inner[0]: "_events append",
        BoundedList.append: "_dq _lock append dropped len maxlen",
        _Event.__init__: "__init__ _attributes super",
        event_base.__init__: "_name _timestamp time_ns",
    }
    try:
        return (
            all(_code_names(f) <= frozenset(n.split()) for f, n in expected.items())
            and _Event.__new__ is object.__new__
            and "__slots__" not in vars(_Event)
            and "__slots__" not in vars(event_base)
            and getattr(sdk_trace, "logger", None) is _sdk_logger
        )
    except AttributeError:
        return False


_EVENTS_KNOWN = _events_known()
#: (max link attributes, max attribute length) -> the empty link attributes the SDK would build.
_EMPTY_LINK_ATTRIBUTES: dict[tuple[Any, Any], BoundedAttributes] = {}
#: The span limits last read by ``_new_links``, their two link limits then, and what they give:
#: one tuple, replaced whole, so a thread reads the four of one moment.
_LAST_LINK_LIMITS: tuple[Any, Any, Any, Any] = (None, None, None, None)


def _empty_link_attributes(limits: Any) -> BoundedAttributes:
    """The immutable empty ``BoundedAttributes`` the SDK gives a link without attributes."""
    key = (limits.max_link_attributes, limits.max_attribute_length)
    empty = _EMPTY_LINK_ATTRIBUTES.get(key)
    if empty is None:
        empty = _EMPTY_LINK_ATTRIBUTES[key] = BoundedAttributes(
            key[0], None, max_value_len=key[1], immutable=True
        )
    global _LAST_LINK_LIMITS
    _LAST_LINK_LIMITS = (limits, key[0], key[1], empty)
    return empty


def _new_links(span: Any, links: Sequence[Any]) -> Any:
    """``span._new_links(links)`` (``links`` not empty), written out (see ``_links_known``).

    A link without attributes gets the immutable empty ``BoundedAttributes`` the SDK would
    build, one per limits, shared. The valid links are a tuple when the limit drops none
    (what ``ReadableSpan.links`` would copy out of the SDK's ``BoundedList``; ``add_link``
    makes the list): ``links`` itself when it is a tuple of valid links, else that list,
    made with its fields directly.
    """
    limits = span._limits
    last = _LAST_LINK_LIMITS
    if (
        limits is last[0]
        and limits.max_link_attributes is last[1]
        and limits.max_attribute_length is last[2]
    ):
        empty = last[3]  # the limits of the last span, unchanged: no key made, no lookup
    else:
        empty = _empty_link_attributes(limits)
    valid: list[Any] | None = None  # the valid links, once one is not
    seen = 0  # valid links before the first that is not
    for link in links:
        if (
            type(link) is _Link
            and link._attributes is None
            and type(link._context) is SpanContext
            and INDEXED_CONTEXT
            and link._context[5]
        ):
            link._attributes = empty  # a valid context, no attributes (link()'s)
        elif link and sdk_trace._is_valid_link(link.context, link.attributes):
            attributes = link.attributes
            if attributes is None:
                link._attributes = empty
            else:
                link._attributes = BoundedAttributes(
                    limits.max_link_attributes,
                    attributes,
                    max_value_len=limits.max_attribute_length,
                    immutable=True,
                )
        else:
            if valid is None:
                valid = list(links)[:seen]
            continue
        if valid is None:
            seen += 1
        else:
            valid.append(link)
    kept: Sequence[Any] = links if valid is None else valid
    most = limits.max_links
    if most is None or len(kept) <= most:
        return kept if type(kept) is tuple else tuple(kept)
    return _new_bounded_list(most, kept)


def _decisions_known() -> bool:
    """Whether ``Decision.is_sampled()`` / ``is_recording()`` are the identity tests below."""
    Decision = sampling.Decision
    try:
        return _code_names(Decision.is_sampled) <= {"Decision", "RECORD_AND_SAMPLE"} and (
            _code_names(Decision.is_recording) <= {"Decision", "RECORD_ONLY", "RECORD_AND_SAMPLE"}
        )
    except AttributeError:
        return False


_DECISIONS_KNOWN = _decisions_known()
_RECORD_AND_SAMPLE = sampling.Decision.RECORD_AND_SAMPLE
_DROP = sampling.Decision.DROP
#: TraceFlags.random_trace_id is ``bool(flags & RANDOM_TRACE_ID)``: the bit, read directly.
_RANDOM_BIT = (
    int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
    if _RANDOM_FLAG
    and _code_names(vars(TraceFlags)["random_trace_id"].fget)
    <= {"RANDOM_TRACE_ID", "TraceFlags", "bool"}
    else 0
)


def _no_op_tracer_metrics() -> type | None:
    try:
        from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
    except ImportError:
        return None
    found: type = NoOpTracerMetrics
    return found


_NO_OP_TRACER_METRICS = _no_op_tracer_metrics()


def _link_code_known() -> bool:
    """Whether ``remote_context`` and ``link`` may write out the API's code they stand for.

    ``SpanContext.__new__`` (see ``_DIRECT_CONTEXT``) and ``Link.__init__``, which only
    stores the context and the attributes (API 1.27-1.45).
    """
    try:
        return (
            _DIRECT_CONTEXT
            and _code_names(trace_api.Link.__init__) <= {"__init__", "_attributes", "super"}
            and _code_names(trace_api._LinkBase.__init__) <= {"_context"}
            and trace_api.Link.__new__ is object.__new__
            and tuple(inspect.signature(trace_api.Link.__init__).parameters)
            == ("self", "context", "attributes")
        )
    except (AttributeError, TypeError, ValueError):
        return False


_LINK_CODE_KNOWN = _link_code_known()
_Link = trace_api.Link
#: ``TraceFlags(i)`` for every flags byte, made once (immutable ints, like ``_SAMPLED``).
_FLAGS = tuple(TraceFlags(i) for i in range(256))


def remote_context(trace_id: int, span_id: int, flags: int) -> Any:
    """``SpanContext(trace_id, span_id, True, TraceFlags(flags))``, without the calls."""
    if not _LINK_CODE_KNOWN:
        return SpanContext(trace_id, span_id, True, TraceFlags(flags))
    # SpanContext.__new__ written out (its known code).
    return _tuple_new(
        SpanContext,
        (
            trace_id,
            span_id,
            True,
            _FLAGS[flags] if 0 <= flags < 256 else TraceFlags(flags),
            _DEFAULT_TRACE_STATE,
            0 < trace_id <= _TRACE_ID_MAX and 0 < span_id <= _SPAN_ID_MAX,
        ),
    )


def link(context: Any) -> Any:
    """``Link(context)``, without the call."""
    if not _LINK_CODE_KNOWN:
        return _Link(context)
    made = _new_object(_Link)  # Link.__init__ written out (its known code)
    made._context = context
    made._attributes = None
    return made


class FastTracer:
    """Starts the bridge's spans of one SDK tracer as ``FastSpan``s, or says it cannot."""

    # What the spans module reads of this module, per span: instance attributes (before
    # Python 3.13 a class attribute read through an instance is never specialised).
    span_type: type[FastSpan]
    #: ``event_attributes`` when events may share their attributes, else None.
    shared_event_attributes: Callable[..., Any] | None
    all_plain: Callable[[Mapping[str, Any]], bool]
    #: Whether a span context's fields may be read by unpacking it.
    indexed_context: bool
    remote_context: Callable[..., Any]
    link: Callable[[Any], Any]
    #: The context key of the current span (see ``_span_key``), when reading it is exact.
    span_key: str | None
    #: The SDK's own span classes (whose ``get_span_context()`` returns ``_context``).
    sdk_spans: frozenset[type]

    def __init__(self, tracer: Any) -> None:
        self.span_type = FastSpan
        self.shared_event_attributes = event_attributes if SHARED_EVENTS else None
        self.all_plain = _all_plain
        self.indexed_context = INDEXED_CONTEXT
        self.remote_context = remote_context
        self.link = link
        self.span_key = _SPAN_KEY
        self.sdk_spans = _SDK_SPANS
        self.tracer = tracer
        self._multi = tracer.span_processor
        #: The processor tuple last checked, and whether it was quiet on start.
        self._checked: Any = None
        self._quiet: tuple[Any, ...] | None = None
        self._sampler: Any = None
        self._sampler_keeps = False
        self._local_sampled: Any = None
        self._root_sampled: Any = None
        self._use_sampler(tracer.sampler)

    def _use_sampler(self, sampler: Any) -> None:
        """Remember what the fast path knows of the tracer's (new) sampler."""
        self._sampler = sampler
        self._sampler_keeps = _keeps_attributes(sampler)
        self._local_sampled = _static_delegate(sampler, "_local_parent_sampled")
        self._root_sampled = _static_delegate(sampler, "_root")

    def _processors_quiet(self) -> tuple[Any, ...] | None:
        processors = getattr(self._multi, "_span_processors", None)
        if processors is not self._checked:  # first span, or a processor was added
            self._checked = processors
            self._quiet = _quiet_processors(self._multi)
        return self._quiet

    def start_span(
        self,
        name: str,
        attributes: dict[str, Any],
        links: Sequence[Any],
        plain: bool = False,
        parent_context: Any = None,
    ) -> tuple[Any, Any] | None:
        """Start an INTERNAL span in the current context, or None to use the public API.

        Returns the span and a context holding it (``set_span_in_context(span, parent)``).

        ``plain``: the caller made ``attributes`` of str keys and str/bool/int/float values
        and never changes them, so they need no check when the sampler keeps them.
        ``parent_context``: the current context, if the caller has it already.
        """
        quiet = (
            self._quiet
            if self._multi._span_processors is self._checked  # _processors_quiet(), no call
            else self._processors_quiet()
        )
        if quiet is None:
            return None
        tracer = self.tracer
        if _CHECK_ENABLED and not tracer._is_enabled():
            return None
        parent: SpanContext | None
        if _SPAN_KEY is not None and parent_context is not None:
            current = _dict_get(parent_context, _SPAN_KEY)
            if current is None:
                parent = _NO_PARENT  # get_current_span() is INVALID_SPAN: a root span
            elif type(current) is FastSpan or type(current) in _SDK_SPANS:
                parent = current._context  # its get_span_context()
            else:
                parent = _get_current_span(parent_context).get_span_context()
        else:
            parent = _get_current_span(parent_context).get_span_context()
        if type(parent) is not SpanContext:
            return None  # None or an unusual context: the SDK's own checks apply
        if INDEXED_CONTEXT:
            parent_trace, _, parent_remote, parent_flags, parent_state, parent_valid = parent
        else:
            parent_trace, parent_remote = parent.trace_id, parent.is_remote
            parent_flags, parent_state = parent.trace_flags, parent.trace_state
            parent_valid = parent.is_valid
        id_generator = tracer.id_generator
        random_ids = _RANDOM_IDS and type(id_generator) is _RandomIdGenerator
        if parent_valid:
            trace_id = parent_trace
        elif random_ids:
            # RandomIdGenerator.generate_trace_id() without the call (as for span ids below).
            parent = None
            trace_id = random.getrandbits(128)
            while not trace_id:
                trace_id = random.getrandbits(128)
        else:
            parent = None
            trace_id = id_generator.generate_trace_id()
        sampler = tracer.sampler
        if sampler is not self._sampler:
            self._use_sampler(sampler)
        local = self._local_sampled
        root = self._root_sampled
        if (
            local is not None
            and parent is not None
            and parent_flags & 1  # TraceFlags.sampled
            and not parent_remote
            and sampler._local_parent_sampled is local
        ):
            # What the SDK's ParentBased sampler returns for a local sampled parent when that
            # delegate is a static "sample" (the default ALWAYS_ON): its decision, the given
            # attributes, the parent's trace state (see _static_delegate).
            decision = local._decision
            trace_state = parent_state
            span_attributes: Any = attributes
        elif root is not None and parent is None and sampler._root is root:
            # The same for a root span (no valid parent): no trace state.
            decision = root._decision
            trace_state = None
            span_attributes = attributes
        else:
            result = sampler.should_sample(
                None, trace_id, name, SpanKind.INTERNAL, attributes, links
            )
            decision = result.decision
            trace_state = result.trace_state
            span_attributes = result.attributes
        if _DECISIONS_KNOWN and decision is _RECORD_AND_SAMPLE:
            sampled = recording = True
        elif _DECISIONS_KNOWN and decision is _DROP:
            sampled = recording = False
        else:
            sampled = decision.is_sampled()
            recording = decision.is_recording()
        if _RANDOM_FLAG and (
            (random_ids or id_generator.is_trace_id_random())
            if parent is None
            else (parent_flags & _RANDOM_BIT if _RANDOM_BIT else parent_flags.random_trace_id)
        ):
            flags = _SAMPLED_RANDOM if sampled else _NOT_SAMPLED_RANDOM
        else:
            flags = _SAMPLED if sampled else _NOT_SAMPLED
        if random_ids:
            # RandomIdGenerator.generate_span_id() without the call (random.getrandbits looked
            # up on each call, as it does: a patched one is used too).
            span_id = random.getrandbits(64)
            while not span_id:
                span_id = random.getrandbits(64)
        else:
            span_id = id_generator.generate_span_id()
        if _DIRECT_CONTEXT:
            # SpanContext.__new__ written out (its known code): one tuple, no Python call.
            context = _tuple_new(
                SpanContext,
                (
                    trace_id,
                    span_id,
                    False,
                    flags,
                    _DEFAULT_TRACE_STATE if trace_state is None else trace_state,
                    0 < trace_id <= _TRACE_ID_MAX and 0 < span_id <= _SPAN_ID_MAX,
                ),
            )
        else:
            context = SpanContext(
                trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=trace_state
            )
        end_metrics = None
        if _TRACER_METRICS:
            metrics = tracer._tracer_metrics
            if type(metrics) is not _NO_OP_TRACER_METRICS:
                end_metrics = metrics.start_span(parent, decision)
        if not recording:
            unsampled = NonRecordingSpan(context=context)
            return unsampled, trace_api.set_span_in_context(unsampled, parent_context)
        span = _new_span(FastSpan)
        limits = tracer._span_limits
        span._name = name
        span._context = context
        span._parent = parent
        span._resource = tracer.resource
        span._instrumentation_info = tracer.instrumentation_info
        span._instrumentation_scope = tracer._instrumentation_scope
        span._sampler = sampler
        span._span_processor = self._multi
        span._limits = limits
        span._lock = Lock()
        span._quiet = quiet
        span._record_end_metrics = end_metrics
        span._kind = _INTERNAL
        span._status = _UNSET_STATUS
        span._end_time = None
        span._events = _NONE_YET
        # The SDK's span holds the attributes the sampler returned, cleaned: when every value
        # is one cleaning leaves unchanged and no limit applies, a copy is the same thing.
        limit = limits.max_span_attributes
        if limits.max_span_attribute_length is None and (
            limit is None or len(span_attributes) <= limit
        ):
            if plain and self._sampler_keeps:
                span._attributes = attributes.copy()
            elif _all_plain(span_attributes):
                # The SDK's samplers wrap the dict they were given in a MappingProxyType, whose
                # copy() copies that dict.
                span._attributes = (
                    span_attributes.copy() if self._sampler_keeps else dict(span_attributes)
                )
            else:
                span._attributes = BoundedAttributes(
                    limit, span_attributes, immutable=False, max_value_len=None
                )
        else:
            span._attributes = BoundedAttributes(
                limit,
                span_attributes,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        if links:
            span._links = _new_links(span, links) if _LINKS_KNOWN else span._new_links(links)
        else:
            span._links = _NONE_YET
        span._start_time = time_ns()
        if _SPAN_KEY is not None and parent_context is not None:
            # set_span_in_context(span, parent_context) written out (see _span_key).
            values = _dict_copy(parent_context)
            values[_SPAN_KEY] = span
            return span, Context(values)
        return span, trace_api.set_span_in_context(span, parent_context)


def fast_tracer(tracer: Any) -> FastTracer | None:
    """A ``FastTracer`` for an SDK tracer whose spans it can make exactly, else None."""
    if not fast_spans_enabled() or _SDK_NAMES is None:
        return None
    if type(tracer) is not sdk_trace.Tracer:
        return None
    needed = ("span_processor", "sampler", "id_generator", "_span_limits", "resource")
    if not all(hasattr(tracer, name) for name in needed):
        return None
    if type(tracer.span_processor) not in _MULTI:
        return None
    return FastTracer(tracer)
