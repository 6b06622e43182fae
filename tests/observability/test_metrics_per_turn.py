"""What the bridge does per turn for metrics, and what it reads or derives instead.

The queue-depth gauge is read from the agents' queues when collected; a returned value is
counted when its turn ends and a streamed one as it comes, so no agent hook is dispatched per
turn for metrics; a routed turn's span ends at the routing's event; the OpenTelemetry SDK's
histograms are recorded in a span-less context (no SDK exemplar, no context lookup), on SDKs
whose ``record`` takes a context and on those (1.27) whose ``record`` does not.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry import trace

from pygents import Agent, AgentHook, AgentRegistry, HookRegistry, Turn, tool
from pygents.observability._metrics import NO_CONTEXT, OtelMetrics
from pygents.observability._store import MetricStore


async def drain(agent: Agent) -> list[tuple[str, Any]]:
    return [(turn.tool_name, value) async for turn, value in agent.run()]


def depth(telemetry: Any, agent: str) -> float | None:
    return telemetry.sample("pygents_agent_queue_depth", {"agent": agent})


async def test_no_agent_hook_is_registered_for_every_turn(telemetry: Any) -> None:
    assert HookRegistry.get_by_type(AgentHook.BEFORE_TURN) is None
    assert HookRegistry.get_by_type(AgentHook.ON_TURN_VALUE) is None


async def test_queue_depth_is_the_queue_length_when_collected(telemetry: Any) -> None:
    @tool()
    async def idle() -> None:
        return None

    agent = Agent("depth", "d", [idle])
    for _ in range(3):
        await agent.put(Turn(idle))
    assert depth(telemetry, "depth") == 3
    await agent.pop()  # no hook says so: the gauge reads the queue itself
    assert depth(telemetry, "depth") == 2
    await drain(agent)
    assert depth(telemetry, "depth") == 0


async def test_queue_depth_adds_agents_sharing_a_name_and_forgets_collected_ones(
    telemetry: Any,
) -> None:
    @tool()
    async def idle() -> None:
        return None

    first = Agent("twin", "d", [idle])
    AgentRegistry.unregister("twin")  # the registry holds one agent per name
    second = Agent("twin", "d", [idle])
    await first.put(Turn(idle))
    for _ in range(2):
        await second.put(Turn(idle))
    assert depth(telemetry, "twin") == 3
    AgentRegistry.unregister("twin")
    del second
    gc.collect()
    assert depth(telemetry, "twin") == 1  # the series stays, with what is left
    await drain(first)
    assert depth(telemetry, "twin") == 0


async def test_returned_and_streamed_values_are_counted(telemetry: Any) -> None:
    seen: list[float | None] = []

    @tool()
    async def one() -> int:
        return 1

    @tool()
    async def nothing() -> None:
        return None

    @tool()
    async def stream() -> AsyncIterator[int]:
        for i in range(3):
            yield i
            # The agent delivered the value before asking for the next one.
            seen.append(
                telemetry.sample("pygents_turn_values_total", {"agent": "vals", "tool": "stream"})
            )

    agent = Agent("vals", "d", [one, nothing, stream])
    for turn in (Turn(one), Turn(nothing), Turn(stream), Turn(one)):
        await agent.put(turn)
    assert [v for _, v in await drain(agent)] == [1, None, 0, 1, 2, 1]
    assert telemetry.sample("pygents_turn_values_total", {"agent": "vals", "tool": "one"}) == 2
    assert telemetry.sample("pygents_turn_values_total", {"agent": "vals", "tool": "nothing"}) == 1
    assert seen == [1, 2, 3]
    # Turns run outside an agent produce no agent value.
    await Turn(one).returning()
    assert telemetry.sample("pygents_turn_values_total", {"agent": "", "tool": "one"}) is None


async def test_a_routed_turns_span_ends_at_its_routing_event(telemetry: Any) -> None:
    ended_before_next: list[bool] = []

    @tool()
    async def follow() -> None:
        ended_before_next.append(bool(telemetry.by_name("execute_tool lead")))

    @tool()
    async def lead() -> Turn:
        return Turn(follow)

    agent = Agent("router", "d", [lead, follow])
    await agent.put(Turn(lead))
    await drain(agent)
    assert ended_before_next == [True]  # ended at the put, not at the run's end
    (span,) = telemetry.by_name("execute_tool lead")
    assert [e.name for e in span.events] == ["pygents.agent.put"]


async def test_sdk_histograms_carry_no_exemplar_of_the_ambient_span(telemetry: Any) -> None:
    @tool()
    async def traced() -> int:
        return 1

    agent = Agent("plain", "d", [traced])
    await agent.put(Turn(traced))
    with trace.get_tracer("test", tracer_provider=telemetry.tracer_provider).start_as_current_span(
        "outer"
    ):
        await drain(agent)
    data = telemetry.metric_reader.get_metrics_data()
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name in ("pygents.turn.duration", "pygents.tool.duration")
        for point in metric.data.data_points
    ]
    assert points and all(point.count >= 1 for point in points)
    assert all(not point.exemplars for point in points)


class _Meter:
    """A meter whose histograms take ``record(amount, attributes)`` only, as SDK 1.27's."""

    def __init__(self) -> None:
        self.recorded: list[tuple[float, Any]] = []

    def create_observable_counter(self, *args: Any, **kwargs: Any) -> None:
        return None

    def create_observable_gauge(self, *args: Any, **kwargs: Any) -> None:
        return None

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        recorded = self.recorded

        class Histogram:
            def record(self, amount: float, attributes: Any = None) -> None:
                recorded.append((amount, attributes))

        return Histogram()


def test_records_pass_a_context_only_where_record_takes_one(telemetry: Any) -> None:
    old = OtelMetrics(_Meter(), MetricStore())  # type: ignore[arg-type]
    assert old.record_extra == ()
    meter = telemetry.meter_provider.get_meter("probe")
    new = OtelMetrics(meter, MetricStore())
    assert new.record_extra == (NO_CONTEXT,)
    # Truthy (the SDK takes "context or get_current()") and without a span.
    assert NO_CONTEXT
    assert not trace.get_current_span(NO_CONTEXT).get_span_context().is_valid


async def test_histograms_are_recorded_on_a_record_without_context() -> None:
    from pygents.observability._bridge_metrics import MetricRecorder
    from pygents.observability._settings import LabelLimiter

    meter = _Meter()
    store = MetricStore()
    otel = OtelMetrics(meter, store)  # type: ignore[arg-type]
    recorder = MetricRecorder(
        store, otel, LabelLimiter("agent", 10), LabelLimiter("tool", 10), LabelLimiter("e", 10)
    )

    @tool()
    async def direct() -> int:
        return 1

    recorder.call_done(direct, "ok", 0.5, None)
    assert meter.recorded == [(0.5, {"tool": "direct"})]
