"""The bridge's spans: start, end and mark the spans of agent runs, turns and tool calls.

Every span is started when its execution starts and made current (through the bridge's
execution scope) during each step of it, so spans created inside a tool by the user or by
any instrumented library are its children. This module only talks to the tracer; which
execution is current, and when, is the bridge's business.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from time import time_ns
from typing import Any

from pygents import StopReason
from pygents.turn import DeferredTraceContext

from . import _semconv as sc
from ._cells import BoundedCache
from ._propagation import carrier_of, parse_traceparent, render_origin
from ._settings import ContentCapture

__all__ = ["Spans"]

_COMPLETED = StopReason.COMPLETED
_ERROR = StopReason.ERROR
_CANCELLED = StopReason.CANCELLED
_NO_LINKS: tuple[Any, ...] = ()
_PLAIN_BOUND = 1024


_dict_get = dict.get


class Spans:
    """Creates and finishes the bridge's spans with one tracer."""

    def __init__(self, tracer: Any, capture: ContentCapture) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
        from opentelemetry.trace.status import Status, StatusCode

        self.tracer = tracer
        self.capture = capture
        self._trace = trace
        self.context_with = trace.set_span_in_context
        self._Link = Link
        self._SpanContext = SpanContext
        self._TraceFlags = TraceFlags
        self._INTERNAL = SpanKind.INTERNAL
        self._Status = Status
        self._ERROR = StatusCode.ERROR
        self._awaiting_sdk = isinstance(tracer, trace.ProxyTracer)
        self._use_fast(None if self._awaiting_sdk else _fast_tracer(tracer))
        #: (event attributes as items) -> (span limits, shared BoundedAttributes); bounded.
        self._event_attributes: BoundedCache[tuple[Any, ...], tuple[Any, Any]] = BoundedCache()
        from ._otel_context import ContextAccess

        #: OpenTelemetry's current context, read and switched (directly when exact).
        self.context = ContextAccess()
        self.get_current = self.context.get_current
        #: (tool, timeout) -> (span name, start attributes); bounded like every name cache.
        self._tool_attrs: BoundedCache[tuple[Any, Any], tuple[str, dict[str, Any]]]
        self._tool_attrs = BoundedCache()
        #: (agent name, description, tags) -> (span name, start attributes) of its runs.
        self._run_attrs: BoundedCache[tuple[Any, ...], tuple[str, dict[str, Any]]]
        self._run_attrs = BoundedCache()
        #: Attribute dicts this class (or the bridge) built, never changes, and found plain
        #: (str keys, str/bool/int/float values): the fast path stores them without checking.
        #: Keyed by id; holding the dict keeps the id from being reused. Bounded.
        self._plain: dict[int, dict[str, Any]] = {}

    # -- when not to trace -------------------------------------------------------------------

    def _use_fast(self, fast: Any) -> None:
        #: The fast span path (``_fast_span``), when this tracer's spans can be made exactly.
        self._fast: Any = fast
        self._fast_span: Any = None if fast is None else fast.span_type
        #: Builds an event's shared attributes, when the fast path may share them.
        self._shared: Any = None if fast is None else fast.shared_event_attributes
        #: Makes a link to a span context: the API's ``Link``, or the fast path's written out.
        self._link: Any = self._Link if fast is None else fast.link

    def suppressed(self, context: Any = None) -> bool:
        """True when no span should be made: suppressed, or no SDK configured yet.

        ``context``: the current context, if the caller has it already.
        """
        if self._awaiting_sdk:
            # Instrumented with the global provider before an SDK was installed: spans would
            # be non-recording, so skip them until one is (OpenTelemetry sets it once).
            if isinstance(self._trace.get_tracer_provider(), self._trace.ProxyTracerProvider):
                return True
            self._awaiting_sdk = False
            # The proxy now delegates to the SDK's tracer: the fast path may use that one.
            self._use_fast(_fast_tracer(getattr(self.tracer, "_tracer", None)))
        if context is None:
            context = self.get_current()
        access = self.context
        if access.direct:  # what is_instrumentation_enabled() reads, read directly
            for key in access.keys:
                if _dict_get(context, key):
                    return True
            return False
        return not access.enabled()

    # -- names and attributes ----------------------------------------------------------------

    def tool_start(self, tool: Any, timeout: Any) -> tuple[str, dict[str, Any]]:
        """The span name and start attributes of a tool (built once per tool and timeout)."""
        key = (tool, timeout)
        found = self._tool_attrs.get(key)
        if found is None:
            meta = tool.metadata
            # The registry name: a subtool's is scoped (``users.delete``), as the model calls
            # it, where ``metadata.name`` is the short one (``delete``, under several parents).
            name = tool.__name__
            attrs: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: name,
                sc.GEN_AI_TOOL_TYPE: "function",
            }
            if meta.description:
                attrs[sc.GEN_AI_TOOL_DESCRIPTION] = meta.description
            if timeout is not None:
                attrs[sc.PYGENTS_TURN_TIMEOUT] = float(timeout)
            found = (sc.SPAN_EXECUTE_TOOL.format(tool=name), attrs)
            self._tool_attrs[key] = found
        return found

    def record_origin(self, meta: Any, span: Any) -> None:
        """Record ``span`` as the causal origin of a turn (``meta``: its metadata).

        Deferred (``TurnMetadata.defer_trace_context``, the origin being the span's
        ``SpanContext``): the W3C carrier is formatted only if something reads the turn's
        ``trace_context`` (it is serialized, checkpointed, sent to a worker); a turn linked
        in this process reads the ids as they are. Ids or flags out of the W3C format's
        range (which the carrier could not say back) are formatted now, as they always were.
        """
        if type(span) is self._fast_span and self._fast.indexed_context:
            context = span._context
            # Made as SpanContext.__new__ makes it: is_valid says the ids are in range.
            if context[5] and 0 <= context[3] <= 0xFF:
                meta.defer_trace_context(context, render_origin)
                return
            trace_id, span_id, flags = context[0], context[1], context[3]
        else:
            context = span.get_span_context()
            trace_id, span_id, flags = context.trace_id, context.span_id, context.trace_flags
        if 0 < trace_id < 1 << 128 and 0 < span_id < 1 << 64 and 0 <= flags <= 0xFF:
            meta.defer_trace_context(context, render_origin)
        else:
            meta.trace_context = carrier_of(trace_id, span_id, flags)

    def origin(self, meta: Any, recorded: Any) -> Any:
        """The span context of a turn's causal origin, if it has a valid one, else None.

        ``meta``: the turn's metadata; ``recorded``: its ``recorded_trace_context`` (not
        None). The context ``record_origin`` deferred is that span's own (a span of this
        process: not remote, its trace state kept); any other is what parsing the turn's
        ``trace_context`` gives (remote: the turn came from elsewhere, or was read).
        """
        if type(recorded) is DeferredTraceContext and recorded.render is render_origin:
            return recorded.origin
        ids = parse_traceparent(meta.trace_context)
        if ids is None:
            return None
        fast = self._fast
        if fast is not None:
            return fast.remote_context(*ids)
        trace_id, span_id, flags = ids
        return self._SpanContext(trace_id, span_id, True, self._TraceFlags(flags))

    def links(self, origin: Any) -> tuple[Any]:
        """A link to the span of a turn's causal origin (``origin()``'s context)."""
        return (self._link(origin),)

    def child_of_origin(
        self, name: str, attributes: dict[str, Any], origin: Any
    ) -> tuple[Any, Any] | None:
        """Start a span whose parent is a turn's causal origin (``origin()``); None if none.

        For a served agent's turn: the request that put it is its trace (one trace per
        request), and the span current now (the busy period's ``invoke_agent``) is linked.
        The parent is the origin's ids and flags as a remote context, wherever it was made.
        """
        if origin is None:
            return None
        context = self._SpanContext(origin.trace_id, origin.span_id, True, origin.trace_flags)
        parent = self._trace.set_span_in_context(self._trace.NonRecordingSpan(context))
        current = self._trace.get_current_span().get_span_context()
        links = [self._Link(current)] if current.is_valid else _NO_LINKS
        span = self.tracer.start_span(
            name, context=parent, kind=self._INTERNAL, attributes=attributes, links=links
        )
        return span, self.context_with(span)

    def current_valid(self) -> Any:
        """The span current in this context (the user's, a tool's) if valid, else None.

        ``get_current_span()`` and its validity test; a span of the SDK's (fast or not) is
        read from the context directly, without the API's three calls.
        """
        fast = self._fast
        if fast is not None and fast.span_key is not None and fast.indexed_context:
            span = _dict_get(self.get_current(), fast.span_key)
            if span is None:
                return None
            if type(span) is self._fast_span or type(span) in fast.sdk_spans:
                return span if span._context[5] else None  # SpanContext.is_valid
        span = self._trace.get_current_span()
        return span if span.get_span_context().is_valid else None

    def trace_id(self, span: Any) -> int | None:
        """The trace id of a sampled span (for exemplars), else None."""
        # A fast span's context is its field (get_span_context() returns it); bit 0 of the
        # flags is SAMPLED (TraceFlags.sampled, without the property call).
        if type(span) is self._fast_span:
            context = span._context
            if self._fast.indexed_context:
                return context[0] if context[3] & 1 and context[0] else None
        else:
            context = span.get_span_context()
        return context.trace_id if context.trace_flags & 1 and context.trace_id else None

    # -- starting ----------------------------------------------------------------------------

    def _is_plain(self, attributes: dict[str, Any]) -> bool:
        """True for a dict of the bridge's own that the fast path may store unchecked."""
        plain = self._plain
        if plain.get(id(attributes)) is attributes:
            return True
        if not self._fast.all_plain(attributes):
            return False
        if len(plain) >= _PLAIN_BOUND:
            plain.clear()
        plain[id(attributes)] = attributes
        return True

    def start(
        self,
        name: str,
        attributes: dict[str, Any],
        links: Sequence[Any] | None = None,
        parent: Any = None,
    ) -> tuple[Any, Any]:
        """Start a span, a child of the current context; return it and a context holding it.

        ``attributes`` belong to the bridge, which never changes them once passed here.
        ``parent``: the current context, if the caller has it already.
        """
        if parent is None:
            parent = self.get_current()
        # No links: () is what the SDK gives its sampler then (1.27 gave it what it got).
        span_links: Sequence[Any] = links or _NO_LINKS
        fast = self._fast
        if fast is not None:
            # _is_plain() without the call when the dict is known already.
            plain = self._plain.get(id(attributes)) is attributes or self._is_plain(attributes)
            started: tuple[Any, Any] | None = fast.start_span(
                name, attributes, span_links, plain, parent
            )
            if started is not None:
                return started
        span = self.tracer.start_span(
            name, context=parent, kind=self._INTERNAL, attributes=attributes, links=span_links
        )
        return span, self.context_with(span, parent)

    def end_done(
        self, span: Any, done: dict[str, Any], end_time: int, trace: bool = False
    ) -> int | None:
        """Set a completed turn's closing attributes (``done``, plain) and end its span.

        Returns ``trace_id(span)`` when ``trace`` is true (for exemplars), else None.
        """
        if type(span) is self._fast_span and (
            self._plain.get(id(done)) is done or self._is_plain(done)
        ):
            span._end_plain(done, end_time)  # one lock, no checks: the bridge's own dict
            if trace and self._fast.indexed_context:  # trace_id() without the call
                context = span._context
                return context[0] if context[3] & 1 and context[0] else None
        else:
            span.set_attributes(done)
            span.end(end_time=end_time)
        return self.trace_id(span) if trace else None

    def add_event(
        self,
        span: Any,
        name: str,
        items: tuple[tuple[str, Any], ...],
        timestamp: int | None = None,
    ) -> None:
        """Add an event whose attributes are the bridge's own ``items`` (str keys, plain values).

        ``timestamp`` (ns) None: now. On the fast path the event gets the immutable
        attributes the SDK would build, built once per distinct ``items`` and span limits and
        shared (the SDK's costs ~2 us each).
        """
        if type(span) is self._fast_span and self._shared is not None:
            limits = span._limits
            found = self._event_attributes.get(items)
            if found is None or found[0] is not limits:
                found = self._event_attributes[items] = (limits, self._shared(limits, dict(items)))
            span._add_shared_event(name, found[1], timestamp)
            return
        span.add_event(name, dict(items), timestamp)

    def add_event_and_end(
        self,
        span: Any,
        name: str,
        items: tuple[tuple[str, Any], ...],
        done: dict[str, Any] | None,
        end_time: int,
    ) -> None:
        """``add_event(span, name, items, end_time)``, then ``end_done(span, done, end_time)``.

        ``done`` None: the closing attributes are set already, only end it. A routed turn's
        span ending with the event of the put that routed its output, stamped with the span's
        end (the turn's; the routing comes just after it, and an event after its span's end
        would be drawn outside it): on the fast path, with no event before it, in one step
        (``FastSpan._end_plain``).
        """
        if (
            type(span) is self._fast_span
            and self._shared is not None
            and done is not None
            and (self._plain.get(id(done)) is done or self._is_plain(done))
        ):
            limits = span._limits
            found = self._event_attributes.get(items)
            if found is None or found[0] is not limits:
                found = self._event_attributes[items] = (limits, self._shared(limits, dict(items)))
            span._end_plain(done, end_time, name, found[1])
            return
        self.add_event(span, name, items, end_time)
        if done is None:
            span.end(end_time=end_time)
        else:
            self.end_done(span, done, end_time)

    def end_counted(self, span: Any, key: str, count: int) -> None:
        """Set one int attribute (``key``, a constant of the bridge) and end the span now."""
        if type(span) is self._fast_span and type(count) is int:
            span._end_plain({key: count}, time_ns())
            return
        span.set_attribute(key, count)
        span.end()

    def start_run(self, agent: Any, parent: Any = None) -> tuple[Any, Any]:
        """The ``invoke_agent`` span of an agent run (``parent``: the current context, if known)."""
        tags = agent.tags
        name = agent.name
        key = (name, agent.description, tuple(sorted(tags)) if tags else ())
        found = self._run_attrs.get(key)
        if found is None:
            span_name = sc.SPAN_INVOKE_AGENT.format(agent=name)
            found = self._run_attrs[key] = (span_name, self._run_attributes(agent))
        return self.start(found[0], found[1], None, parent)

    @staticmethod
    def _run_attributes(agent: Any) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            # Required on invoke_agent spans since 1.37; pygents runs the agent itself. A
            # run backed by one model provider may override it from an ON_RUN_START hook.
            sc.GEN_AI_PROVIDER_NAME: sc.INSTRUMENTATION_NAME,
            sc.GEN_AI_AGENT_NAME: agent.name,
            sc.GEN_AI_AGENT_DESCRIPTION: agent.description,
        }
        if agent.tags:
            attributes[sc.PYGENTS_AGENT_TAGS] = sorted(agent.tags)
        return attributes

    def capture_arguments(self, span: Any, args: Any, kwargs: Any) -> None:
        """Record a tool call's arguments (content capture only)."""
        if self.capture.enabled and span is not None:
            span.set_attribute(
                sc.GEN_AI_TOOL_CALL_ARGUMENTS,
                self.capture.render({"args": list(args), "kwargs": kwargs}),
            )

    # -- ending ------------------------------------------------------------------------------

    def mark_error(self, span: Any, error_type: str, exc: BaseException | None) -> None:
        """Status ERROR, ``error.type``, and the exception recorded (redacted if configured)."""
        text = None if exc is None else _text(exc)
        if exc is None:
            message = ""
        else:
            message = self.capture.scrub(
                text if text is not None else f"<{type(exc).__name__}: str() failed>"
            )
        span.set_status(self._Status(self._ERROR, f"{error_type}: {message}"))
        span.set_attribute(sc.ERROR_TYPE, error_type)
        if exc is None:
            return
        # The event record_exception() writes (its attributes, in its order), with a stack
        # trace that costs a fraction of its (see ``stacktrace``) and, when str(exc) raises
        # (as record_exception() would, leaving the span never ended), a placeholder message.
        kind = type(exc)
        module = kind.__module__
        span.add_event(
            "exception",
            {
                "exception.type": f"{module}.{kind.__qualname__}"
                if module and module != "builtins"
                else kind.__qualname__,
                "exception.message": message,
                "exception.stacktrace": self.capture.scrub(stacktrace(exc)),
                "exception.escaped": "False",
            },
        )

    def finish_turn(
        self,
        span: Any,
        lane: Any,
        tool: Any,
        output: Any,
        reason: StopReason | None,
        error_type: str | None,
        exc: BaseException | None,
    ) -> None:
        """Set a turn span's closing attributes (stop reason, values, result, error)."""
        if reason is _COMPLETED and error_type is None and not tool.is_generator:
            done = lane.done_attributes  # built once per lane
            if type(span) is self._fast_span and self._is_plain(done):
                span._set_plain_attributes(done)
            else:
                span.set_attributes(done)
            if self.capture.enabled and output is not None:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, self.capture.render(output))
            return
        if tool.is_generator:
            values = len(output) if isinstance(output, list) else 0
        else:
            values = 1 if reason is _COMPLETED else 0
        span.set_attributes(
            {
                sc.PYGENTS_TURN_STOP_REASON: reason.value if reason else "unknown",
                sc.PYGENTS_TURN_VALUES: values,
            }
        )
        if error_type is not None:
            self.mark_error(span, error_type, exc)

    def finish_call(
        self, span: Any, tool: Any, result: Any, error_type: str | None, exc: BaseException | None
    ) -> None:
        """Set a direct tool call's closing attributes.

        Its stop reason is a turn's, but for the timeout a direct call does not have:
        ``completed``, ``error`` (an exception) or ``cancelled`` (a cancellation, a stream
        closed early).
        """
        if tool.is_generator:
            values = len(result) if isinstance(result, list) else 0
        else:
            values = 1 if error_type is None and exc is None else 0
        span.set_attribute(sc.PYGENTS_TURN_VALUES, values)
        span.set_attribute(
            sc.PYGENTS_TURN_STOP_REASON,
            (_COMPLETED if exc is None else _ERROR if error_type is not None else _CANCELLED).value,
        )
        if error_type is not None:
            self.mark_error(span, error_type, exc)
        elif self.capture.enabled and not tool.is_generator and exc is None:
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, self.capture.render(result))


def _fast_tracer(tracer: Any) -> Any:
    """The fast span path for ``tracer`` (``_fast_span.FastTracer``), or None for the public API.

    None when the SDK is not installed, when ``PYGENTS_FAST_SPANS`` switches it off, or when
    the tracer is not one whose spans it can make exactly.
    """
    if tracer is None:
        return None
    try:
        from ._fast_span import fast_tracer
    except ImportError:  # the API without the SDK: nothing to speed up
        return None
    return fast_tracer(tracer)


def _text(exc: BaseException) -> str | None:
    """``str(exc)``, or None when the exception's ``__str__`` raises."""
    try:
        return str(exc)
    except Exception:
        return None


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def stacktrace(exc: BaseException) -> str:
    """``traceback.format_exception(exc)`` without the column markers (``^^^``) of 3.11+.

    Those markers cost ~2.5 million instructions per exception on a run loop's frames (each
    frame's code positions are walked up to the instruction that raised, and the line is
    parsed): more than the turn itself, twice per failed turn (its span and its run's). The
    rest is the same: the frames, chained causes and contexts, notes. An exception group in
    the chain, rare, is formatted by ``traceback`` as it is.
    """
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    after = ""  # what is printed after ``current``: how the next one in line came of it
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, after))
        if current.__cause__ is not None:
            current, after = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, after = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for one, after in reversed(chain):
        if isinstance(one, BaseExceptionGroup):  # a group in the chain: as traceback does
            parts.extend(traceback.format_exception(one, chain=False))
        else:
            if one.__traceback__ is not None:
                parts.append("Traceback (most recent call last):\n")
                parts.extend(
                    traceback.StackSummary.extract(traceback.walk_tb(one.__traceback__)).format()
                )
            parts.extend(traceback.format_exception_only(type(one), one))
        parts.append(after)
    return "".join(parts)
