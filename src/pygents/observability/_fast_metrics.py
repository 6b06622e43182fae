"""The fast histogram path: the SDK's aggregations, updated without its per-record overhead.

One OpenTelemetry SDK ``Histogram.record`` costs tens of thousands of instructions: it builds
and validates a ``Measurement``, asks the exemplar filter, then, for every reader's storage
and every view matching the instrument, copies and filters the attributes, hashes them into
the key of the series and looks the series' aggregation up, before the aggregation itself
adds the value. For the bridge's histograms everything before that last step gives the same
answer on every record of a series: the attribute dicts are built once per series, the
context is always ``NO_CONTEXT``, the views and readers are fixed. This module resolves, once
per series, the aggregation objects the SDK would update, and then makes on each record the
one call the SDK would end up making on each of them: ``aggregate(measurement, False)``, with
a measurement holding the same value, time (``time_ns()``), instrument, context and attributes
as the SDK's ``Measurement`` (a plain object with its fields: the known aggregations read only
its value when not sampling an exemplar).

Used only where exactness is known (see ``fast_histogram``): the SDK's own histogram,
measurement consumer, reader storages, views, view-instrument matches and aggregations, in a
release whose record path references nothing this module does not account for; an exemplar
filter that never samples the span-less context (the SDK's default trace-based filter, or
always-off). A series is resolved by letting its first record take the public API (so the SDK
itself creates its aggregations, with its clock, its cardinality limit and overflow), then
looking the created aggregations up under the key the SDK uses. Whatever cannot be resolved
(a series past the cardinality limit, an unknown aggregation) keeps taking the public API, and
so does every record whose value the SDK would reject or warn about, a context other than
``NO_CONTEXT``, a meter disabled by the SDK's meter configurator, and any record after a
reader was added or removed (until the series is resolved again). Delta readers of SDKs that
discard a series' aggregations at each collection (1.45 and later) are handled as the SDK
does: under the view-instrument match's lock, and by re-resolving once the aggregations were
discarded. A histogram of the API's proxy meter provider is decided by the real instrument the
proxy gets. ``PYGENTS_FAST_METRICS=0`` forces the public API.
"""

from __future__ import annotations

import logging
import math
import os
import types
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry.metrics._internal import instrument as api_instrument
from opentelemetry.sdk.metrics import _internal as sdk_internal
from opentelemetry.sdk.metrics._internal import aggregation as sdk_aggregation
from opentelemetry.sdk.metrics._internal import instrument as sdk_instrument
from opentelemetry.sdk.metrics._internal import measurement_consumer as sdk_consumer
from opentelemetry.sdk.metrics._internal import metric_reader_storage as sdk_storage
from opentelemetry.sdk.metrics._internal._view_instrument_match import _ViewInstrumentMatch
from opentelemetry.sdk.metrics._internal.exemplar import (
    AlwaysOffExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics._internal.measurement import Measurement
from opentelemetry.sdk.metrics._internal.view import View

__all__ = ["FAST_METRICS_ENV", "FastHistogram", "fast_histogram", "fast_metrics_enabled"]

logger = logging.getLogger(__name__)

#: The environment switch: ``0`` / ``false`` / ``off`` / ``no`` force the public SDK API.
FAST_METRICS_ENV = "PYGENTS_FAST_METRICS"

#: How many series one histogram keeps resolved; the cache is emptied when full (series are
#: resolved again on their next record).
SERIES_LIMIT = 4096

_INF = math.inf
#: The entry of no series (its attributes are no caller's).
_NO_SERIES: tuple[Any, ...] = (object(),)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The aggregations a record may be handed to (the SDK's own: a view may choose any of them),
#: with every name their ``aggregate`` may reference (1.30 through 1.45). Each reads the
#: measurement's ``value`` and passes the measurement to ``_sample_exemplar``, which reads
#: nothing else of it when told not to sample.
_AGGREGATE_NAMES = {
    "_DropAggregation": "",
    "_SumAggregation": "_lock _sample_exemplar _value value",
    "_LastValueAggregation": "_lock _sample_exemplar _value value",
    "_ExplicitBucketHistogramAggregation": (
        "_boundaries _get_empty_bucket_counts _lock _max _min _record_min_max _sample_exemplar "
        "_sum _value bisect_left max min value"
    ),
    "_ExponentialBucketHistogramAggregation": (
        "Buckets _count _downscale _get_scale_change _lock _mapping _max _max_size _min "
        "_new_mapping _record_min_max _sample_exemplar _scale _sum _value_negative "
        "_value_positive _zero_count counts grow increment_bucket index_base index_end "
        "index_start len map_to_index max min scale value"
    ),
}
_SAMPLE_EXEMPLAR_NAMES = _words("_reservoir attributes context offer time_unix_nano value")


#: What an SDK instrument's ``_meter_config`` is (1.41 and later): ``is_enabled`` reads ``_config``.
_PROXY_METER_CONFIG: Any = getattr(sdk_internal, "_ProxyMeterConfig", None)
#: Exemplar filters whose decision for a context without a span is "do not sample".
_QUIET_FILTERS = (TraceBasedExemplarFilter, AlwaysOffExemplarFilter)

# -- what the installed SDK does on a record ---------------------------------------------------


#: Every name the SDK's record path may reference (its code from 1.30 through 1.45). A release
#: whose code references anything else changed what a record does: until this module is
#: checked against it, records take the public API.
_KNOWN_NAMES: dict[str, frozenset[str]] = {
    "Histogram.record": _words(
        "Measurement _is_enabled _logger _measurement_consumer consume_measurement get_current "
        "isfinite math name record super time_ns warning"
    ),
    "SynchronousMeasurementConsumer.consume_measurement": _words(
        "_reader_storages _sdk_config attributes consume_measurement context exemplar_filter "
        "should_sample time_unix_nano value values"
    ),
    "MetricReaderStorage.consume_measurement": _words(
        "_get_or_init_view_instrument_match consume_measurement instrument"
    ),
    "Measurement.__post_init__": _words(
        "Mapping __setattr__ _clean_attribute_value _logger attributes isinstance object type "
        "warning"
    ),
    "_Synchronous._is_enabled": _words("_meter_config is_enabled"),
    "_ProxyMeterConfig.is_enabled": _words("_config is_enabled"),
    "_ProxyHistogram.record": _words("_real_instrument record"),
}

#: How a view-instrument match keys and keeps its series, by release. ``frozenset``: the key is
#: ``frozenset(attributes.items())`` and aggregations live as long as the match (1.30-1.44).
#: ``hashed``: the key is ``_hash_attributes(attributes)``, a cardinality limit sends new series
#: to an overflow aggregation, and delta readers discard the aggregations at each collection,
#: aggregating under the match's lock in between (1.45).
_MATCH_STYLES: dict[str, dict[str, frozenset[str]]] = {
    "frozenset": {
        "consume_measurement": _words(
            "DefaultAggregation __class__ _aggregation _attribute_keys _attributes_aggregation "
            "_create_aggregation _exemplar_reservoir_factory _instrument "
            "_instrument_class_aggregation _lock _view aggregate attributes dict frozenset "
            "isinstance items time_ns"
        ),
        "collect": _words("_attributes_aggregation _lock append collect values"),
    },
    "hashed": {
        "consume_measurement": _words(
            "_attribute_keys _attributes_aggregation _get_or_create_aggregation _hash_attributes "
            "_lock _reset_on_collect _view aggregate attributes dict get items"
        ),
        "_get_or_create_aggregation": _words(
            "DefaultAggregation _OVERFLOW_ATTRIBUTES _OVERFLOW_KEY __class__ _aggregation "
            "_attributes_aggregation _cardinality_limit _create_aggregation "
            "_exemplar_reservoir_factory _instrument _instrument_class_aggregation "
            "_previous_collection_start_nanos _view dict get isinstance len time_ns"
        ),
        "collect": _words(
            "AggregationTemporality DELTA _attributes_aggregation _lock "
            "_previous_collection_start_nanos _reset_on_collect append collect values"
        ),
    },
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


def _function(owner: Any, name: str) -> Any:
    member = owner.__dict__.get(name) if isinstance(owner, type) else None
    if isinstance(member, property):
        return member.fget
    return getattr(owner, name, None)


def _known(key: str, owner: Any, name: str) -> bool:
    """True when ``owner.name`` is absent or references only names known for ``key``."""
    function = _function(owner, name)
    if function is None:
        return True
    try:
        names = _code_names(function)
    except AttributeError:
        return False
    if not names <= _KNOWN_NAMES[key]:
        logger.debug("fast metrics off: %s references %s", key, sorted(names - _KNOWN_NAMES[key]))
        return False
    return True


def _match_style() -> str | None:
    """Which ``_MATCH_STYLES`` the installed ``_ViewInstrumentMatch`` follows, or None."""
    for style, functions in _MATCH_STYLES.items():
        found = True
        for name, known in functions.items():
            function = getattr(_ViewInstrumentMatch, name, None)
            if function is None or not _code_names(function) <= known:
                found = False
                break
        hashed = hasattr(_ViewInstrumentMatch, "_get_or_create_aggregation")
        if found and (style == "hashed") == hashed:
            return style
    logger.debug("fast metrics off: unknown _ViewInstrumentMatch")
    return None


def _sdk_record_path() -> tuple[str, Callable[[Any], Any]] | None:
    """The match style and the SDK's series-key function, or None if the SDK is unknown."""
    proxy_config = _PROXY_METER_CONFIG
    checks = (
        _known("Histogram.record", sdk_instrument.Histogram, "record"),
        _known(
            "SynchronousMeasurementConsumer.consume_measurement",
            sdk_consumer.SynchronousMeasurementConsumer,
            "consume_measurement",
        ),
        _known(
            "MetricReaderStorage.consume_measurement",
            sdk_storage.MetricReaderStorage,
            "consume_measurement",
        ),
        _known("Measurement.__post_init__", Measurement, "__post_init__"),
        _known("_Synchronous._is_enabled", sdk_instrument._Synchronous, "_is_enabled"),
        proxy_config is None or _known("_ProxyMeterConfig.is_enabled", proxy_config, "is_enabled"),
    )
    if not all(checks):
        return None
    style = _match_style()
    if style is None:
        return None
    if style == "hashed":
        from opentelemetry.sdk.metrics._internal import _view_instrument_match as sdk_match

        hash_attributes = getattr(sdk_match, "_hash_attributes", None)
        if hash_attributes is None:
            return None
        return style, hash_attributes
    return style, _frozen_items


def _frozen_items(attributes: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset(attributes.items())


def _known_aggregations() -> frozenset[type]:
    """The SDK aggregation classes whose ``aggregate`` is known, if ``_sample_exemplar`` is."""
    sample = getattr(sdk_aggregation._Aggregation, "_sample_exemplar", None)
    if sample is None or not _code_names(sample) <= _SAMPLE_EXEMPLAR_NAMES:
        return frozenset()
    known = set()
    for name, names in _AGGREGATE_NAMES.items():
        cls = getattr(sdk_aggregation, name, None)
        if cls is not None and _code_names(cls.aggregate) <= _words(names):
            known.add(cls)
        elif cls is not None:
            logger.debug("fast metrics: %s.aggregate is unknown", name)
    return frozenset(known)


try:
    _RECORD_PATH = _sdk_record_path()
    _AGGREGATIONS = _known_aggregations()
except (AttributeError, TypeError):  # an SDK laid out differently: the public API only
    logger.debug("fast metrics off: unknown SDK layout", exc_info=True)
    _RECORD_PATH, _AGGREGATIONS = None, frozenset()


class _Measurement:
    """What an aggregation is handed: the fields of the SDK's ``Measurement``, cheap to make.

    The SDK's frozen dataclass costs more to build than the aggregation costs to update; the
    aggregations above read only ``value`` of it when not sampling an exemplar.
    """

    __slots__ = ("attributes", "context", "instrument", "time_unix_nano", "value")

    value: Any
    time_unix_nano: int
    instrument: Any
    context: Any
    attributes: Any


def fast_metrics_enabled() -> bool:
    """False when ``PYGENTS_FAST_METRICS`` switches the fast histogram path off."""
    raw = os.environ.get(FAST_METRICS_ENV, "").strip().lower()
    return raw not in {"0", "false", "off", "no"}


# -- the histogram -----------------------------------------------------------------------------


class FastHistogram:
    """An SDK histogram's ``record``, updating the resolved aggregations of each series directly.

    ``record(amount, attributes, context)`` has the SDK's call shape and effect. The fast path
    is taken for ``context is NO_CONTEXT`` (the one given) and an attribute dict this object
    has resolved: the dict is looked up by identity, so it must not be mutated after its first
    record (the bridge builds one per series and keeps it).
    """

    __slots__ = ("histogram", "record", "series")

    def __init__(self, histogram: Any, context: Any, key: Callable[[Any], Any]) -> None:
        #: The SDK histogram (its public ``record`` is the fallback).
        self.histogram = histogram
        #: Resolved series by ``id(attributes)``: ``(attributes, reader storages, measurement
        #: attributes, aggregate methods, guarded aggregates)``.
        self.series: dict[int, tuple[Any, ...]] = {}
        self.record: Callable[..., None] = _make_record(histogram, context, key, self.series)


def _make_record(
    histogram: Any, context: Any, key: Callable[[Any], Any], series: dict[int, tuple[Any, ...]]
) -> Callable[..., None]:
    """Build the record function of one histogram (a closure: its state lives in cells)."""
    public = histogram.record
    consumer = histogram._measurement_consumer
    config = getattr(histogram, "_meter_config", None)
    find = series.get
    inf = _INF
    #: The series recorded last (the bridge records one series many times in a row).
    last: tuple[Any, ...] = _NO_SERIES

    def slow(amount: Any, attributes: Any, record_context: Any) -> None:
        """The public API; then resolve the series when its next record can be fast."""
        nonlocal last
        public(amount, attributes, record_context)
        if (
            record_context is context
            and (attributes is None or type(attributes) is dict)
            and type(amount) in (float, int)
            and 0.0 <= amount < inf
            and (config is None or config._config.is_enabled)
        ):
            last = _resolve(histogram, consumer, context, key, series, amount, attributes)

    def guarded(entry: tuple[Any, ...], measurement: _Measurement) -> None:
        """Aggregate into series of matches that discard their aggregations at collection."""
        nonlocal last
        for lock, match, table, aggregate in entry[4]:
            # acquire() and a ``finally``, not ``with`` (~1,500 instructions less, 3.12).
            lock.acquire()
            try:
                current = match._attributes_aggregation is table
                if current:
                    aggregate(measurement, False)
            finally:
                lock.release()
            if current:
                continue
            # Collected since resolved: the match's own code creates the series' new
            # aggregation; the series is resolved again at its next record.
            match.consume_measurement(measurement, False)
            series.pop(id(entry[0]), None)
            last = _NO_SERIES

    def record(amount: Any, attributes: Any = None, record_context: Any = None) -> None:
        nonlocal last
        entry = last
        if entry[0] is not attributes:
            entry = find(id(attributes), _NO_SERIES)
            if entry[0] is not attributes:
                slow(amount, attributes, record_context)
                return
            last = entry
        if (
            record_context is not context
            or not 0.0 <= amount < inf
            or consumer._reader_storages is not entry[1]
            or (config is not None and not config._config.is_enabled)
        ):
            slow(amount, attributes, record_context)
            return
        measurement = _Measurement()
        measurement.value = amount
        measurement.time_unix_nano = time_ns()
        measurement.instrument = histogram
        measurement.context = context
        measurement.attributes = entry[2]
        for aggregate in entry[3]:
            aggregate(measurement, False)
        if entry[4]:
            guarded(entry, measurement)

    return record


def _resolve(
    histogram: Any,
    consumer: Any,
    context: Any,
    key: Callable[[Any], Any],
    series: dict[int, tuple[Any, ...]],
    amount: Any,
    attributes: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """Cache the aggregations the SDK updated for ``attributes``, if each can be found exactly.

    Called right after a public record of the series, so the SDK has created them (unless the
    series went to the overflow aggregation: then it stays on the public path). Returns the
    series' entry, or ``_NO_SERIES``.
    """
    storages = consumer._reader_storages
    if type(consumer._sdk_config.exemplar_filter) not in _QUIET_FILTERS:
        return _NO_SERIES
    # The attributes the SDK's measurement holds (cleaned from 1.45 on, else the caller's dict).
    measured = Measurement(amount, 0, histogram, context, attributes).attributes
    plain: list[Any] = []
    guarded: list[tuple[Any, ...]] = []
    for storage in storages.values():
        if type(storage) is not sdk_storage.MetricReaderStorage:
            return _NO_SERIES
        matches = storage._instrument_view_instrument_matches.get(histogram)
        if type(matches) is not list:
            return _NO_SERIES
        for match in matches:
            if type(match) is not _ViewInstrumentMatch or type(match._view) is not View:
                return _NO_SERIES
            kept = dict(measured) if measured else {}
            keys = match._view._attribute_keys
            if keys is not None:
                kept = {k: v for k, v in kept.items() if k in keys}
            table = match._attributes_aggregation
            try:
                aggregation: Any = table.get(key(kept))
            except TypeError:  # a value the key cannot hold: the public path
                return _NO_SERIES
            if type(aggregation) not in _AGGREGATIONS:
                # An overflowed series (past the cardinality limit): the public path.
                return _NO_SERIES
            if getattr(match, "_reset_on_collect", False):
                guarded.append((match._lock, match, table, aggregation.aggregate))
            else:
                plain.append(aggregation.aggregate)
    if len(series) >= SERIES_LIMIT:
        series.clear()
    entry = series[id(attributes)] = (attributes, storages, measured, tuple(plain), tuple(guarded))
    return entry


def fast_histogram(histogram: Any, context: Any) -> FastHistogram | None:
    """A ``FastHistogram`` for an SDK histogram recorded in ``context``, or None.

    None when ``PYGENTS_FAST_METRICS`` switches the path off, when the installed SDK's record
    path is not one this module reproduces, or when ``histogram`` is not the SDK's own
    histogram fed to the SDK's measurement consumer with an exemplar filter that does not
    sample ``context``. A histogram of the API's proxy meter provider (made before the program
    set its meter provider) gets one that decides when the proxy gets its real instrument.
    """
    if _RECORD_PATH is None or not fast_metrics_enabled():
        return None
    if type(histogram) is api_instrument._ProxyHistogram and _known(
        "_ProxyHistogram.record", api_instrument._ProxyHistogram, "record"
    ):
        return _ProxyFastHistogram(histogram, context)
    if not _recognized(histogram, context):
        return None
    return FastHistogram(histogram, context, _RECORD_PATH[1])


def _recognized(histogram: Any, context: Any) -> bool:
    """Whether the fast path reproduces what ``histogram.record`` does in ``context``."""
    if type(histogram) is not sdk_instrument._Histogram:
        return False
    consumer = getattr(histogram, "_measurement_consumer", None)
    if type(consumer) is not sdk_consumer.SynchronousMeasurementConsumer:
        return False
    exemplar_filter = consumer._sdk_config.exemplar_filter
    if type(exemplar_filter) not in _QUIET_FILTERS or exemplar_filter.should_sample(
        0.0, 0, None, context
    ):
        return False
    config = getattr(histogram, "_meter_config", None)
    return config is None or (type(config) is _PROXY_METER_CONFIG and hasattr(config, "_config"))


class _ProxyFastHistogram(FastHistogram):
    """The fast path of a proxy histogram: decided when the proxy gets its real instrument.

    Until then a record is dropped, as the proxy drops it; then it is the real instrument's
    ``FastHistogram`` record if it has one, else the real instrument's own ``record``.
    """

    __slots__ = ()

    def __init__(self, proxy: Any, context: Any) -> None:
        self.histogram = proxy
        self.series = {}
        self.record = self._make_record(proxy, context)

    def _make_record(self, proxy: Any, context: Any) -> Callable[..., None]:
        inner: Callable[..., None] | None = None

        def record(amount: Any, attributes: Any = None, record_context: Any = None) -> None:
            nonlocal inner
            if inner is None:
                real = proxy._real_instrument
                if not real:
                    return
                if _RECORD_PATH is not None and _recognized(real, context):
                    fast = FastHistogram(real, context, _RECORD_PATH[1])
                    self.series = fast.series
                    inner = fast.record
                else:
                    inner = real.record
            inner(amount, attributes, record_context)

        return record
