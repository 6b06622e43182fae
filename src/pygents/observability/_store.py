"""The metric store: every pygents metric aggregated in plain objects, cheaply, per event.

The bridge holds on to the series it updates (a ``Counter`` or ``Histogram`` cell per label
set, looked up once), so recording is an attribute update and, for a histogram, a bisect.
The Prometheus collector renders the store at scrape time, and OpenTelemetry observable
instruments read it at collection time, so neither pays per-turn library overhead. A lock
makes updates from several threads' event loops safe; gauges are single assignments.
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from ._semconv import DURATION_BUCKETS, METRICS

__all__ = ["BusyTime", "Counter", "Histogram", "MetricStore"]

Labels = tuple[str, ...]

#: The counter of run-loop seconds, computed when read (see ``BusyTime``).
BUSY = "pygents_agent_busy_seconds_total"
#: The gauge of queued turns, read from the agents' queues when read (see ``watch_queue``).
DEPTH = "pygents_agent_queue_depth"


class Counter:
    """A counter series: its value and when it was created (OpenMetrics ``_created``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class BusyTime:
    """Seconds the run loops of one label set have been active, read as a counter.

    Runs that ended are summed; runs still going count up to the moment the value is read,
    so a scrape in the middle of a long run already shows its busy time. Several runs at once
    (agents sharing a name, or capped to ``other``) add up: agent-seconds. Updated and read
    under the store's lock.
    """

    __slots__ = ("_running", "_since", "_total", "created")

    def __init__(self) -> None:
        self.created = time.time()
        self._total = 0.0
        self._running = 0
        self._since = 0.0

    def _advance(self, now: float) -> None:
        self._total += self._running * (now - self._since)
        self._since = now

    def start(self, now: float) -> None:
        """A run began at ``now`` (``time.monotonic()``)."""
        self._advance(now)
        self._running += 1

    def end(self, now: float) -> None:
        """A run ended at ``now``; an end without a start (instrumented mid-run) is ignored."""
        if self._running:
            self._advance(now)
            self._running -= 1

    @property
    def value(self) -> float:
        """Busy seconds up to now."""
        return self._total + self._running * (time.monotonic() - self._since)


class Histogram:
    """Bucket counts (non-cumulative), sum, and the latest exemplar per bucket.

    An exemplar is ``(trace_id, value, epoch_seconds)`` with the trace id as an int (it is
    formatted only when rendered).
    """

    __slots__ = ("counts", "exemplars", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.sum = 0.0
        self.exemplars: list[tuple[int, float, float] | None] = [None] * (buckets + 1)


class MetricStore:
    """Counters, gauges and histograms keyed by metric name and label values.

    Writers take ``lock`` around counter and histogram updates (see ``count`` and
    ``observe``); ``counter()`` and ``histogram()`` return the cell of one series.
    """

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.buckets = buckets
        self.kinds = {name: kind for name, kind, *_ in METRICS}
        self.values: dict[str, dict[Labels, Any]] = {name: {} for name, *_ in METRICS}
        self.lock = threading.Lock()
        #: Agents whose queue length ``pygents_agent_queue_depth`` reports, by ``id()``:
        #: their labels and a weak reference (a collected agent drops out).
        self._queues: dict[int, tuple[Labels, weakref.ref[Any]]] = {}

    # -- cells (looked up once by the bridge, then updated directly) ------------------------

    def counter(self, name: str, labels: Labels) -> Counter:
        """The counter cell of one series (created, at 0, on first use)."""
        found: Counter = self._cell(name, labels, Counter)
        return found

    def histogram(self, name: str, labels: Labels) -> Histogram:
        """The histogram cell of one series (created empty on first use)."""
        found: Histogram = self._cell(name, labels, lambda: Histogram(len(self.buckets)))
        return found

    def busy(self, labels: Labels) -> BusyTime:
        """The busy-time cell of one label set (``pygents_agent_busy_seconds_total``).

        Its runs start and end under ``lock`` (``cell.start(time.monotonic())``).
        """
        found: BusyTime = self._cell(BUSY, labels, BusyTime)
        return found

    def _cell(self, name: str, labels: Labels, make: Callable[[], Any]) -> Any:
        series = self.values[name]
        found = series.get(labels)
        if found is None:
            with self.lock:
                found = series.setdefault(labels, make())
        return found

    # -- recording -------------------------------------------------------------------------

    def count(self, cell: Counter, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter cell."""
        with self.lock:
            cell.value += amount

    def inc(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to the counter of ``name`` and ``labels``."""
        self.count(self.counter(name, labels), amount)

    def set(self, name: str, labels: Labels, value: float) -> None:
        """Set a gauge."""
        self.values[name][labels] = float(value)

    def watch_queue(self, labels: Labels, agent: Any) -> None:
        """Report ``len(agent)`` under ``labels`` in ``pygents_agent_queue_depth``.

        The gauge is read from the queues when it is collected, so no turn pays for it; the
        lengths of live agents sharing a label set add up, and a label set whose agents are
        gone stays at 0. Cheap when ``agent`` is watched already (under the same labels).
        No lock: single dict operations, and the weak reference's callback may run on any
        thread at any moment (even inside ``snapshot``, which holds the lock).
        """
        key = id(agent)
        found = self._queues.get(key)
        if found is not None and found[0] == labels:
            return
        queues = self._queues

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            if queues.get(key, (None, None))[1] is ref:
                queues.pop(key, None)

        self.values[DEPTH].setdefault(labels, 0.0)
        queues[key] = (labels, weakref.ref(agent, forget))

    def observe(
        self,
        cell: Histogram,
        value: float,
        trace_id: int | None = None,
        stamp: float | None = None,
    ) -> None:
        """Record an observation, with an exemplar when a trace id is given.

        ``stamp`` is the exemplar's time (epoch seconds; now if None). The caller holds
        ``lock``.
        """
        index = bisect_left(self.buckets, value)
        cell.counts[index] += 1
        cell.sum += value
        if trace_id is not None:
            cell.exemplars[index] = (trace_id, value, time.time() if stamp is None else stamp)

    # -- reading (scrapes, observable callbacks, tests) ------------------------------------

    def snapshot(self, name: str) -> list[tuple[Labels, Any]]:
        """Return ``(labels, value)`` pairs of one metric, copied under the lock.

        Counters give ``(value, created)`` (busy time computed now), gauges their value,
        histograms ``(counts, sum, exemplars)``.
        """
        if name == DEPTH:
            return self._depths()
        with self.lock:
            items = list(self.values[name].items())
            kind = self.kinds[name]
            if kind == "histogram":
                return [(labels, (list(h.counts), h.sum, list(h.exemplars))) for labels, h in items]
            if kind == "counter":
                return [(labels, (c.value, c.created)) for labels, c in items]
            return items

    def _depths(self) -> list[tuple[Labels, Any]]:
        """The queue-depth gauge: the queue lengths of the watched agents, summed by labels."""
        totals = dict.fromkeys(list(self.values[DEPTH]), 0.0)
        for labels, ref in list(self._queues.values()):
            agent = ref()
            if agent is not None:
                totals[labels] = totals.get(labels, 0.0) + len(agent)
        return list(totals.items())
