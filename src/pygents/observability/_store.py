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

#: The counter of run-loop seconds, computed when read (see ``BusyTime``), and the gauge of
#: active run loops, read from the same cells.
BUSY = "pygents_agent_busy_seconds_total"
RUNNING = "pygents_agent_running"
#: Gauges read from the agents the store watches when they are collected (``watch_agent``):
#: queued turns, whether paused, and each context-item gauge with the agent attribute
#: holding its container.
DEPTH = "pygents_agent_queue_depth"
PAUSED = "pygents_agent_paused"
ITEMS = {
    "pygents_context_queue_items": "context_queue",
    "pygents_context_pool_items": "context_pool",
}


def _plain_owner(container: Any) -> str:
    return container.owner or container.name or "unowned"


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

    # start and end each advance the total to ``now`` themselves (no shared helper: a call
    # per run start and end).
    def start(self, now: float) -> None:
        """A run began at ``now`` (``time.monotonic()``)."""
        self._total += self._running * (now - self._since)
        self._since = now
        self._running += 1

    def end(self, now: float) -> None:
        """A run ended at ``now``; an end without a start (instrumented mid-run) is ignored."""
        if self._running:
            self._total += self._running * (now - self._since)
            self._since = now
            self._running -= 1

    @property
    def running(self) -> int:
        """Runs going on now."""
        return self._running

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
        #: Agents whose gauges are read at collection (``watch_agent``), by ``id()``: their
        #: labels and a weak reference (a collected agent drops out). Read-only outside.
        self.watched: dict[int, tuple[Labels, weakref.ref[Any]]] = {}
        #: The ``owner`` label of a context container (the bridge caps its values).
        self.owner_label: Callable[[Any], str] = _plain_owner

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
        lock = self.lock
        lock.acquire()  # not `with`: see MetricRecorder.turn_done
        try:
            cell.value += amount
        finally:
            lock.release()

    def inc(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to the counter of ``name`` and ``labels``."""
        self.count(self.counter(name, labels), amount)

    def set(self, name: str, labels: Labels, value: float) -> None:
        """Set a gauge."""
        self.values[name][labels] = float(value)

    def watch_agent(self, labels: Labels, agent: Any) -> None:
        """Read ``agent``'s gauges when they are collected, ``labels`` naming the agent.

        ``pygents_agent_queue_depth`` (``len(agent)``), ``pygents_agent_paused`` and the
        context-item gauges (its context queue's and pool's lengths) are read from the agents
        at collection, so no run or turn pays for them, and a change made without hooks
        (``Agent.reset()``) shows at the next collection. See ``_depths``, ``_paused`` and
        ``_items`` for how agents sharing labels add up. Cheap when ``agent`` is watched
        already (under the same labels).
        No lock: single dict operations, and the weak reference's callback may run on any
        thread at any moment (even inside ``snapshot``, which holds the lock).
        """
        key = id(agent)
        found = self.watched.get(key)
        if found is not None and found[0] == labels:
            return
        watched = self.watched

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            if watched.get(key, (None, None))[1] is ref:
                watched.pop(key, None)

        self.values[DEPTH].setdefault(labels, 0.0)
        watched[key] = (labels, weakref.ref(agent, forget))

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
        if name == RUNNING:
            return self._runs()
        if name == PAUSED:
            return self._paused()
        if name in ITEMS:
            return self._items(name)
        with self.lock:
            items = list(self.values[name].items())
            kind = self.kinds[name]
            if kind == "histogram":
                return [(labels, (list(h.counts), h.sum, list(h.exemplars))) for labels, h in items]
            if kind == "counter":
                return [(labels, (c.value, c.created)) for labels, c in items]
            return items

    def _runs(self) -> list[tuple[Labels, Any]]:
        """The running gauge: 1 for a label set with a run going on (its busy-time cell).

        Runs of several agents sharing a label set overlap: 0 only when all have ended.
        """
        with self.lock:
            return [
                (labels, 1.0 if cell.running else 0.0) for labels, cell in self.values[BUSY].items()
            ]

    def _watched(self) -> list[tuple[Labels, Any]]:
        """The watched agents still alive, with their labels."""
        found = []
        for labels, ref in list(self.watched.values()):
            agent = ref()
            if agent is not None:
                found.append((labels, agent))
        return found

    def _depths(self) -> list[tuple[Labels, Any]]:
        """The queue-depth gauge: the watched agents' queue lengths, summed by labels.

        A label set whose agents are gone reads 0.
        """
        totals = dict.fromkeys(list(self.values[DEPTH]), 0.0)
        for labels, agent in self._watched():
            totals[labels] = totals.get(labels, 0.0) + len(agent)
        return list(totals.items())

    def _paused(self) -> list[tuple[Labels, Any]]:
        """The paused gauge: 1 for a label set any of whose watched agents is paused."""
        live: dict[Labels, float] = {}
        for labels, agent in self._watched():
            live[labels] = max(live.get(labels, 0.0), 1.0 if agent.is_paused else 0.0)
        return self._keep(PAUSED, live)

    def _items(self, name: str) -> list[tuple[Labels, Any]]:
        """A context-item gauge: the lengths of the watched agents' containers, by owner.

        Containers sharing an owner label add up, each counted once however many agents
        hold it.
        """
        attribute, owner_label = ITEMS[name], self.owner_label
        live: dict[Labels, float] = {}
        seen: set[int] = set()
        for _labels, agent in self._watched():
            container = getattr(agent, attribute)
            if id(container) not in seen:
                seen.add(id(container))
                key = (owner_label(container),)
                live[key] = live.get(key, 0.0) + len(container)
        return self._keep(name, live)

    def _keep(self, name: str, live: dict[Labels, float]) -> list[tuple[Labels, Any]]:
        """A gauge's series with the values just read from the agents written in.

        Hooks set the same series (for agents not watched, stand-alone containers), and a
        series whose agents are gone keeps the value it was last read or set with.
        """
        with self.lock:
            series = self.values[name]
            series.update(live)
            return list(series.items())
