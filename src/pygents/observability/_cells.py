"""The metric series the bridge updates per turn, looked up once per label set.

A turn touches up to four series (queue wait, turn and tool duration, values);
looking each up by name and label tuple, capping its labels and building its OpenTelemetry
attributes on every turn would cost more than recording. ``Cells`` keeps, per agent, tool
and outcome, the store cells and attribute dicts, so the per-turn work is the recording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._metrics import OtelMetrics
    from ._settings import LabelLimiter
    from ._store import BusyTime, Counter, Histogram, MetricStore

__all__ = ["AgentCells", "BoundedCache", "Cells", "Lane", "ToolCells", "TurnCells"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A lookup cache keyed by names a program may invent without end (agent names, say).

    Emptied when it reaches ``limit`` entries, so a process that names a new agent per
    request does not grow forever; what it holds can always be looked up again (the metric
    series themselves stay in the store, their labels capped).
    """

    # No instance dict: a dict subclass with one cannot have its methods' lookups specialised
    # (``cache.get(key)`` would build a bound method per call).
    __slots__ = ("limit",)

    def __init__(self, limit: int = 4096) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        if len(self) >= self.limit:
            self.clear()
        super().__setitem__(key, value)


class AgentCells:
    """Series of one agent: its label, queue-wait histogram, enqueued counter, busy time."""

    __slots__ = ("busy", "enqueued", "label", "labels", "wait", "wait_attrs")

    def __init__(self, store: MetricStore, otel: OtelMetrics | None, label: str) -> None:
        self.label = label
        self.labels = (label,)
        self.busy: BusyTime | None = None  # looked up on the agent's first run (Cells.busy)
        self.wait = store.histogram("pygents_turn_queue_wait_seconds", self.labels)
        self.enqueued = store.counter("pygents_agent_turns_enqueued_total", self.labels)
        self.wait_attrs = (
            otel.attributes("pygents_turn_queue_wait_seconds", self.labels) if otel else None
        )


class TurnCells:
    """Series of finished turns of one agent, tool and stop reason."""

    __slots__ = ("attrs", "count", "duration")

    def __init__(
        self, store: MetricStore, otel: OtelMetrics | None, labels: tuple[str, str, str]
    ) -> None:
        self.count: Counter = store.counter("pygents_turns_total", labels)
        self.duration: Histogram = store.histogram("pygents_turn_duration_seconds", labels)
        self.attrs: Any = None
        if otel is not None:
            self.attrs = otel.attributes("pygents_turn_duration_seconds", labels)


class ToolCells:
    """Series of invocations of one tool with one outcome (``ok`` / ``error``)."""

    __slots__ = ("attrs", "count", "duration", "label")

    def __init__(self, store: MetricStore, otel: OtelMetrics | None, tool: str, outcome: str):
        self.label = tool
        self.count = store.counter("pygents_tool_invocations_total", (tool, outcome))
        self.duration = store.histogram("pygents_tool_duration_seconds", (tool,))
        self.attrs = otel.attributes("pygents_tool_duration_seconds", (tool,)) if otel else None


class Cells:
    """Caches of the cells above, keyed by names (labels are capped once, on first use)."""

    def __init__(
        self,
        store: MetricStore,
        otel: OtelMetrics | None,
        agent_label: LabelLimiter,
        tool_label: LabelLimiter,
    ) -> None:
        self.store = store
        self.otel = otel
        self._agent_label = agent_label
        self._tool_label = tool_label
        self._agents: BoundedCache[str, AgentCells] = BoundedCache()
        self._turns: BoundedCache[tuple[str, str, str], TurnCells] = BoundedCache()
        self._tools: BoundedCache[tuple[str, str], ToolCells] = BoundedCache()
        self._values: BoundedCache[tuple[str, str], Counter] = BoundedCache()

    def agent(self, name: str) -> AgentCells:
        """The cells of the agent called ``name``."""
        found = self._agents.get(name)
        if found is None:
            found = self._agents[name] = AgentCells(self.store, self.otel, self._agent_label(name))
        return found

    def busy(self, cells: AgentCells) -> BusyTime:
        """The busy-time cell of an agent's cells (looked up once)."""
        found = cells.busy = self.store.busy(cells.labels)
        return found

    def turn(self, agent: str, tool: str, reason: str, error_type: str | None = None) -> TurnCells:
        """The cells of a turn of ``tool`` run by ``agent`` ("" for none) ending ``reason``.

        ``error_type`` does not label these series (only ``pygents_turn_errors_total``) and is
        ignored; the parameter stays for callers that still pass it.
        """
        key = (agent, tool, reason)
        found = self._turns.get(key)
        if found is None:
            labels = (self._agent_label(agent) if agent else "", self._tool_label(tool), reason)
            found = self._turns[key] = TurnCells(self.store, self.otel, labels)
        return found

    def tool(self, tool: str, outcome: str) -> ToolCells:
        """The cells of invocations of ``tool`` with ``outcome``."""
        key = (tool, outcome)
        found = self._tools.get(key)
        if found is None:
            found = self._tools[key] = ToolCells(
                self.store, self.otel, self._tool_label(tool), outcome
            )
        return found

    def values(self, agent: str, tool: str) -> Counter:
        """The counter of values yielded by ``agent`` from turns of ``tool``."""
        key = (agent, tool)
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = self.store.counter(
                "pygents_turn_values_total", (self._agent_label(agent), self._tool_label(tool))
            )
        return found


class Lane:
    """What turns of one tool, run by one agent (or none) with one timeout, record.

    Looked up once per turn (when it starts); the common outcome's cells (completed, tool
    ``ok``) and the span's names and attribute dicts are filled on first use and then reused,
    so a turn that completes normally builds no dict and no label tuple.
    """

    __slots__ = (
        "agent",
        "agent_name",
        "done_attributes",
        "span_name",
        "start_attributes",
        "tool",
        "tool_ok",
        "turn_ok",
        "values",
    )

    def __init__(self, agent_name: str, tool: Any) -> None:
        self.agent_name = agent_name
        self.tool = tool
        self.agent: AgentCells | None = None
        self.turn_ok: TurnCells | None = None
        self.tool_ok: ToolCells | None = None
        self.values: Counter | None = None
        self.span_name = ""
        self.start_attributes: dict[str, Any] = {}
        self.done_attributes: dict[str, Any] = {}
