"""Metrics produced by the telemetry bridge: the Prometheus exposition (names, types, labels,
values, buckets, exemplars), the OpenTelemetry instruments, gauges, cardinality limits and
correctness under concurrency.

Every test uses the ``telemetry`` fixture (fresh SDK providers, private CollectorRegistry).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import re
import time
from collections import defaultdict
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from pygents import (
    Agent,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextQueue,
    Turn,
    TurnTimeoutError,
    current_agent,
    tool,
)
from pygents.observability import _semconv, instrument, uninstrument

# The contract (/work/shared/TELEMETRY.md, "Metrics"), written out independently of _semconv so
# that a drift of the code from the contract fails here.
CONTRACT: dict[str, tuple[str, tuple[str, ...]]] = {
    "pygents_turns_total": ("counter", ("agent", "tool", "stop_reason")),
    "pygents_turn_duration_seconds": ("histogram", ("agent", "tool", "stop_reason")),
    "pygents_turn_timeouts_total": ("counter", ("agent", "tool")),
    "pygents_turn_errors_total": ("counter", ("agent", "tool", "error_type")),
    "pygents_turn_values_total": ("counter", ("agent", "tool")),
    "pygents_tool_invocations_total": ("counter", ("tool", "outcome")),
    "pygents_tool_duration_seconds": ("histogram", ("tool",)),
    "pygents_agent_turns_enqueued_total": ("counter", ("agent",)),
    "pygents_agent_queue_depth": ("gauge", ("agent",)),
    "pygents_agent_running": ("gauge", ("agent",)),
    "pygents_agent_busy_seconds_total": ("counter", ("agent",)),
    "pygents_agent_paused": ("gauge", ("agent",)),
    "pygents_context_queue_items": ("gauge", ("owner",)),
    "pygents_context_queue_evictions_total": ("counter", ("owner",)),
    "pygents_context_pool_items": ("gauge", ("owner",)),
    "pygents_context_pool_evictions_total": ("counter", ("owner",)),
    "pygents_turn_queue_wait_seconds": ("histogram", ("agent",)),
}
HISTOGRAMS = [name for name, (kind, _) in CONTRACT.items() if kind == "histogram"]
HEX32 = re.compile(r"[0-9a-f]{32}")


# --------------------------------------------------------------------------- helpers


def exposition(telemetry: Any) -> dict[str, Any]:
    """Parse the Prometheus text exposition of the fixture's registry, by family name."""
    text = generate_latest(telemetry.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def family_for(families: dict[str, Any], metric: str, kind: str) -> Any:
    """The parsed family of a contract metric (the parser strips ``_total`` from counters)."""
    key = metric[: -len("_total")] if kind == "counter" else metric
    assert key in families, f"{metric} missing from the exposition"
    return families[key]


def series(telemetry: Any, sample_name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """All samples called ``sample_name``, keyed by their sorted labels."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in exposition(telemetry).values():
        for sample in family.samples:
            if sample.name == sample_name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def otel_metrics(telemetry: Any) -> dict[str, Any]:
    """The OpenTelemetry metrics collected so far, by instrument name."""
    data = telemetry.metric_reader.get_metrics_data()
    found: dict[str, Any] = {}
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found[metric.name] = metric
    return found


async def drain(agent: Agent) -> list[tuple[str, Any]]:
    return [(turn.tool_name, value) async for turn, value in agent.run()]


def executed_spans(telemetry: Any) -> list[Any]:
    return [s for s in telemetry.finished() if s.name.startswith("execute_tool ")]


def fmt_trace(span: Any) -> str:
    return f"{span.context.trace_id:032x}"


# --------------------------------------------------------------------------- the workload


class Boom(ValueError):
    pass


async def full_workload() -> None:
    """Exercise every metric of the contract, with known exact outcomes.

    Agent ``wk`` (context queue limit 2, pool limit 2) is given nine turns:
    ok(1) stream(3) ctx nap ok(2) slow[timeout] | ok(3) boom[error] | ok(4)
    and runs three times (a timeout and an error end the first two runs). Then a turn runs
    outside any agent, a tool is called directly and two stand-alone context containers
    (one unnamed, one named) are used.
    """

    @tool()
    async def ok(x: int) -> int:
        await asyncio.sleep(0)
        return x

    @tool()
    async def stream(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @tool()
    async def ctx(pool: ContextPool):
        for i in range(3):
            yield ContextItem(content=f"note {i}")  # queue limit 2: one eviction
        for i in range(3):
            yield ContextItem(content=i, id=f"p{i}", description=f"item {i}")  # one eviction
        await pool.remove("p2")

    @tool()
    async def nap() -> str:
        agent = current_agent()
        assert agent is not None
        agent.pause()
        asyncio.get_running_loop().call_soon(agent.resume)
        return "zz"

    @tool()
    async def slow() -> None:
        await asyncio.sleep(5)

    @tool()
    async def boom() -> None:
        raise Boom("boom")

    agent = Agent(
        "wk",
        "workload",
        [ok, stream, ctx, nap, slow, boom],
        context_queue=ContextQueue(limit=2),
        context_pool=ContextPool(limit=2),
    )
    for turn in [
        Turn(ok, args=[1]),
        Turn(stream, args=[3]),
        Turn(ctx),
        Turn(nap),
        Turn(ok, args=[2]),
        Turn(slow, timeout=0.01),
        Turn(ok, args=[3]),
        Turn(boom),
        Turn(ok, args=[4]),
    ]:
        await agent.put(turn)

    with pytest.raises(TurnTimeoutError):
        await drain(agent)
    assert len(agent) == 3
    with pytest.raises(Boom):
        await drain(agent)
    assert len(agent) == 1
    assert await drain(agent) == [("ok", 4)]

    assert await Turn(ok, args=[5]).returning() == 5  # outside an agent: agent=""
    assert await ok(6) == 6  # a direct call: a tool invocation, not a turn

    loose = ContextQueue(limit=1)
    await loose.append(ContextItem(content="a"), ContextItem(content="b"))
    scratch = ContextPool(limit=1, name="scratch")
    await scratch.add(ContextItem(content=1, id="x", description="x"))
    await scratch.add(ContextItem(content=2, id="y", description="y"))
    await scratch.clear()


EXPECTED_SAMPLES: list[tuple[str, dict[str, str], float]] = [
    ("pygents_turns_total", {"agent": "wk", "tool": "ok", "stop_reason": "completed"}, 4),
    ("pygents_turns_total", {"agent": "wk", "tool": "stream", "stop_reason": "completed"}, 1),
    ("pygents_turns_total", {"agent": "wk", "tool": "ctx", "stop_reason": "completed"}, 1),
    ("pygents_turns_total", {"agent": "wk", "tool": "nap", "stop_reason": "completed"}, 1),
    ("pygents_turns_total", {"agent": "wk", "tool": "slow", "stop_reason": "timeout"}, 1),
    ("pygents_turns_total", {"agent": "wk", "tool": "boom", "stop_reason": "error"}, 1),
    ("pygents_turns_total", {"agent": "", "tool": "ok", "stop_reason": "completed"}, 1),
    ("pygents_turn_timeouts_total", {"agent": "wk", "tool": "slow"}, 1),
    ("pygents_turn_errors_total", {"agent": "wk", "tool": "boom", "error_type": "Boom"}, 1),
    ("pygents_turn_values_total", {"agent": "wk", "tool": "ok"}, 4),
    ("pygents_turn_values_total", {"agent": "wk", "tool": "stream"}, 3),
    ("pygents_turn_values_total", {"agent": "wk", "tool": "ctx"}, 6),
    ("pygents_turn_values_total", {"agent": "wk", "tool": "nap"}, 1),
    ("pygents_tool_invocations_total", {"tool": "ok", "outcome": "ok"}, 6),
    ("pygents_tool_invocations_total", {"tool": "stream", "outcome": "ok"}, 1),
    ("pygents_tool_invocations_total", {"tool": "ctx", "outcome": "ok"}, 1),
    ("pygents_tool_invocations_total", {"tool": "nap", "outcome": "ok"}, 1),
    ("pygents_tool_invocations_total", {"tool": "boom", "outcome": "error"}, 1),
    ("pygents_tool_duration_seconds_count", {"tool": "ok"}, 6),
    ("pygents_tool_duration_seconds_count", {"tool": "boom"}, 1),
    ("pygents_agent_turns_enqueued_total", {"agent": "wk"}, 9),
    ("pygents_turn_queue_wait_seconds_count", {"agent": "wk"}, 9),
    (
        "pygents_turn_duration_seconds_count",
        {"agent": "wk", "tool": "ok", "stop_reason": "completed"},
        4,
    ),
    (
        "pygents_turn_duration_seconds_count",
        {"agent": "", "tool": "ok", "stop_reason": "completed"},
        1,
    ),
    (
        "pygents_turn_duration_seconds_count",
        {"agent": "wk", "tool": "slow", "stop_reason": "timeout"},
        1,
    ),
    ("pygents_context_queue_evictions_total", {"owner": "wk"}, 1),
    ("pygents_context_queue_evictions_total", {"owner": "unowned"}, 1),
    ("pygents_context_pool_evictions_total", {"owner": "wk"}, 1),
    ("pygents_context_pool_evictions_total", {"owner": "scratch"}, 1),
    # Gauges after the workload.
    ("pygents_agent_running", {"agent": "wk"}, 0),
    ("pygents_agent_paused", {"agent": "wk"}, 0),
    ("pygents_agent_queue_depth", {"agent": "wk"}, 0),
    ("pygents_context_queue_items", {"owner": "wk"}, 2),
    ("pygents_context_queue_items", {"owner": "unowned"}, 1),
    ("pygents_context_pool_items", {"owner": "wk"}, 1),
    ("pygents_context_pool_items", {"owner": "scratch"}, 0),
]


# --------------------------------------------------------------------------- the table


def test_semconv_metrics_table_matches_the_contract() -> None:
    table = {name: (kind, tuple(labels)) for name, kind, labels, *_ in _semconv.METRICS}
    assert table == CONTRACT
    assert len(_semconv.METRICS) == len(CONTRACT)  # no duplicate rows


async def test_every_contract_metric_is_exposed_with_its_type_and_labels(telemetry: Any) -> None:
    await full_workload()
    families = exposition(telemetry)

    for source, rows in (
        ("contract", [(n, k, labels) for n, (k, labels) in CONTRACT.items()]),
        ("_semconv", [(n, k, tuple(labels)) for n, k, labels, *_ in _semconv.METRICS]),
    ):
        for name, kind, labels in rows:
            family = family_for(families, name, kind)
            assert family.type == kind, (source, name)
            assert family.samples, f"{name} has no samples after the workload"
            names = {s.name for s in family.samples}
            if kind == "counter":
                assert name in names, (source, name, names)
            elif kind == "gauge":
                assert names == {name}, (source, name, names)
            else:
                assert {f"{name}_bucket", f"{name}_count", f"{name}_sum"} <= names
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                keys = set(sample.labels) - ({"le"} if sample.name.endswith("_bucket") else set())
                assert keys == set(labels), (source, sample)

    # Nothing more, nothing less. (The text format carries a counter's ``_created`` series
    # as a separate gauge family; OpenMetrics keeps it inside the counter family.)
    pygents_families = {n for n in families if n.startswith("pygents_")}
    expected = {n[: -len("_total")] if k == "counter" else n for n, (k, _) in CONTRACT.items()}
    created = {n[: -len("_total")] + "_created" for n, (k, _) in CONTRACT.items() if k == "counter"}
    assert expected <= pygents_families <= expected | created
    for name in pygents_families - expected:
        assert families[name].type == "gauge"
    om_families = {
        f.name
        for f in parse_openmetrics(generate_openmetrics(telemetry.registry).decode())
        if f.name.startswith("pygents_")
    }
    assert om_families == expected


async def test_counters_have_created_samples(telemetry: Any) -> None:
    started = time.time()
    await full_workload()
    text = generate_openmetrics(telemetry.registry).decode()
    families = {f.name: f for f in parse_openmetrics(text)}
    for name, (kind, _labels) in CONTRACT.items():
        if kind != "counter":
            continue
        family = families[name[: -len("_total")]]
        created = {
            tuple(sorted(s.labels.items())): s.value
            for s in family.samples
            if s.name == name[: -len("_total")] + "_created"
        }
        totals = {tuple(sorted(s.labels.items())) for s in family.samples if s.name == name}
        assert totals, name
        assert set(created) == totals, f"{name}: every series needs a _created sample"
        assert all(started - 1 <= v <= time.time() + 1 for v in created.values()), name


async def test_exact_values_for_a_known_workload(telemetry: Any) -> None:
    await full_workload()
    mismatches = []
    for name, labels, expected in EXPECTED_SAMPLES:
        got = telemetry.sample(name, labels)
        if got != expected:
            mismatches.append((name, labels, expected, got))
    assert mismatches == []

    # A timeout is not an error, and nothing else was counted.
    errors = series(telemetry, "pygents_turn_errors_total")
    assert list(errors.values()) == [1]
    assert sum(series(telemetry, "pygents_turns_total").values()) == 10
    assert sum(series(telemetry, "pygents_turn_timeouts_total").values()) == 1
    assert sum(series(telemetry, "pygents_turn_values_total").values()) == 14
    # No series for the agent label "" where only agents count (values, enqueued, waits).
    assert telemetry.sample("pygents_turn_values_total", {"agent": "", "tool": "ok"}) is None
    assert telemetry.sample("pygents_agent_turns_enqueued_total", {"agent": ""}) is None


async def test_turn_outside_an_agent_has_empty_agent_label(telemetry: Any) -> None:
    @tool()
    async def lone() -> int:
        return 1

    @tool()
    async def lone_fail() -> None:
        raise Boom("x")

    await Turn(lone).returning()
    with pytest.raises(Boom):
        await Turn(lone_fail).returning()
    labels = {"agent": "", "tool": "lone", "stop_reason": "completed"}
    assert telemetry.sample("pygents_turns_total", labels) == 1
    assert telemetry.sample("pygents_turn_duration_seconds_count", labels) == 1
    errors = {"agent": "", "tool": "lone_fail", "error_type": "Boom"}
    assert telemetry.sample("pygents_turn_errors_total", errors) == 1


async def test_histogram_buckets_span_1ms_to_10min(telemetry: Any) -> None:
    assert _semconv.DURATION_BUCKETS[0] == 0.001
    assert _semconv.DURATION_BUCKETS[-1] == 600.0
    assert list(_semconv.DURATION_BUCKETS) == sorted(set(_semconv.DURATION_BUCKETS))
    assert any(b > 10 for b in _semconv.DURATION_BUCKETS)  # past prometheus_client's default

    await full_workload()
    families = exposition(telemetry)
    for name in HISTOGRAMS:
        family = family_for(families, name, "histogram")
        by_series: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                rest = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                by_series[rest].append(sample.labels["le"])
        assert by_series, name
        for les in by_series.values():
            assert les[-1] == "+Inf"
            assert [float(le) for le in les[:-1]] == list(_semconv.DURATION_BUCKETS)


async def test_histogram_buckets_are_cumulative_and_match_count(telemetry: Any) -> None:
    await full_workload()
    family = family_for(exposition(telemetry), "pygents_turn_duration_seconds", "histogram")
    labels = {"agent": "wk", "tool": "slow", "stop_reason": "timeout"}
    buckets = [
        (float(s.labels["le"]), s.value)
        for s in family.samples
        if s.name.endswith("_bucket") and {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert values[-1] == telemetry.sample("pygents_turn_duration_seconds_count", labels) == 1
    # The timed-out turn took at least its 10 ms timeout: it is not in the 1 ms..5 ms buckets.
    assert dict(buckets)[0.005] == 0
    assert telemetry.sample("pygents_turn_duration_seconds_sum", labels) >= 0.01


# --------------------------------------------------------------------------- exemplars


async def test_openmetrics_exemplars_carry_the_trace_id(telemetry: Any) -> None:
    @tool()
    async def traced(x: int) -> int:
        await asyncio.sleep(0)
        return x

    agent = Agent("ex", "d", [traced])
    await agent.put(Turn(traced, args=[1]))
    await drain(agent)
    span = next(s for s in telemetry.finished() if s.name == "execute_tool traced")
    trace_id = fmt_trace(span)

    text = generate_openmetrics(telemetry.registry).decode()
    assert re.search(r'pygents_turn_duration_seconds_bucket\{[^}]*\} \S+ # \{trace_id="', text)
    families = {f.name: f for f in parse_openmetrics(text)}
    for name in ("pygents_turn_duration_seconds", "pygents_tool_duration_seconds"):
        exemplars = [
            s.exemplar
            for s in families[name].samples
            if s.name == f"{name}_bucket"
            and s.labels.get("tool") == "traced"
            and s.exemplar is not None
        ]
        assert exemplars, f"{name}: no exemplar"
        for exemplar in exemplars:
            assert set(exemplar.labels) == {"trace_id"}
            assert HEX32.fullmatch(exemplar.labels["trace_id"])
            assert exemplar.labels["trace_id"] == trace_id
    # The plain text exposition stays valid (no exemplars there).
    assert "trace_id" not in generate_latest(telemetry.registry).decode()


async def test_exemplars_of_separate_runs_point_at_their_own_traces(telemetry: Any) -> None:
    @tool()
    async def fast() -> int:
        return 1

    for name in ("one", "two"):
        agent = Agent(name, "d", [fast])
        await agent.put(Turn(fast))
        await drain(agent)
    spans = {s.parent.span_id: s for s in telemetry.finished() if s.name == "execute_tool fast"}
    runs = {s.attributes["gen_ai.agent.name"]: s for s in telemetry.finished() if s.parent is None}
    text = generate_openmetrics(telemetry.registry).decode()
    family = next(f for f in parse_openmetrics(text) if f.name == "pygents_turn_duration_seconds")
    for agent_name, run in runs.items():
        expected = fmt_trace(spans[run.context.span_id])
        exemplars = [
            s.exemplar.labels["trace_id"]
            for s in family.samples
            if s.labels.get("agent") == agent_name and s.exemplar is not None
        ]
        assert exemplars == [expected]


# --------------------------------------------------------------------------- OpenTelemetry


def _prom_labels(name: str, attributes: dict[str, Any]) -> dict[str, str]:
    labels = CONTRACT[name][1]
    return {label: attributes[_semconv.OTEL_ATTRIBUTE_FOR_LABEL[label]] for label in labels}


async def test_otel_instruments_mirror_the_prometheus_metrics(telemetry: Any) -> None:
    await full_workload()
    metrics = otel_metrics(telemetry)

    assert "pygents.turns" in metrics
    assert metrics["pygents.turn.duration"].unit == "s"
    for prom_name, kind, labels, otel_name, unit, _src, doc in _semconv.METRICS:
        assert otel_name in metrics, otel_name
        metric = metrics[otel_name]
        assert metric.unit == unit, otel_name
        assert metric.description == doc, otel_name  # the same text as the Prometheus HELP
        points = list(metric.data.data_points)
        assert points, otel_name
        keys = {_semconv.OTEL_ATTRIBUTE_FOR_LABEL[label] for label in labels}
        for point in points:
            attributes = dict(point.attributes)
            assert set(attributes) == keys, (otel_name, attributes)
            prom_labels = _prom_labels(prom_name, attributes)
            if kind == "histogram":
                assert tuple(point.explicit_bounds) == _semconv.DURATION_BUCKETS
                count = telemetry.sample(f"{prom_name}_count", prom_labels)
                total = telemetry.sample(f"{prom_name}_sum", prom_labels)
                assert point.count == count, (otel_name, attributes)
                assert point.sum == pytest.approx(total), (otel_name, attributes)
            else:
                prom_value = telemetry.sample(prom_name, prom_labels)
                assert point.value == prom_value, (otel_name, attributes)
        # And every Prometheus series has its OTel data point.
        otel_series = {
            tuple(sorted(_prom_labels(prom_name, dict(p.attributes)).items())) for p in points
        }
        sample = f"{prom_name}_count" if kind == "histogram" else prom_name
        assert set(series(telemetry, sample)) == otel_series, otel_name


async def test_no_gen_ai_instrument_the_semantic_conventions_do_not_define(
    telemetry: Any,
) -> None:
    """``gen_ai.*`` is the conventions' namespace: an instrument may use it only for a metric
    they define (``gen_ai.execute_tool.duration`` and ``gen_ai.invoke_agent.duration`` are
    not in the pinned version, nor in the installed package)."""
    from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

    defined = {
        value
        for name, value in vars(gen_ai_metrics).items()
        if name.startswith("GEN_AI_") and isinstance(value, str)
    }
    assert "gen_ai.client.operation.duration" in defined  # the module is what we think it is
    await full_workload()
    names = set(otel_metrics(telemetry))
    assert {spec.otel_name for spec in _semconv.METRICS} <= names
    assert {n for n in names if n.startswith("gen_ai.")} <= defined
    assert not {n for n in names if not n.startswith("pygents.")}, names
    assert not [n for n in vars(_semconv) if n.startswith(("GEN_AI_METRICS", "METRIC_"))]


async def test_otel_metrics_follow_a_reinstrument_on_the_same_meter_provider(
    telemetry: Any,
) -> None:
    """instrument() with different arguments re-instruments; the OTel instruments must then
    report the new bridge's values, like the Prometheus ones do."""

    @tool()
    async def tick() -> int:
        return 1

    async def run(name: str) -> None:
        agent = Agent(name, "d", [tick])
        await agent.put(Turn(tick))
        await drain(agent)

    await run("before")
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
        capture_content=True,
    )
    await run("after")
    labels = {"agent": "after", "tool": "tick", "stop_reason": "completed"}
    assert telemetry.sample("pygents_turns_total", labels) == 1
    points = {
        p.attributes["agent"]: p.value
        for p in otel_metrics(telemetry)["pygents.turns"].data.data_points
    }
    assert points.get("after") == 1, points


def _om_samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every pygents sample of a registry's exposition, scope labels dropped, by name+labels."""
    out = {}
    text = generate_openmetrics(registry).decode()
    for family in parse_openmetrics(text):
        for sample in family.samples:
            if not sample.name.startswith("pygents_") or sample.name.endswith("_created"):
                continue
            labels = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_")}
            out[sample.name, tuple(sorted(labels.items()))] = sample.value
    return out


async def test_both_pipelines_give_the_same_series_after_the_standard_translation() -> None:
    """The OpenTelemetry instruments, through the official PrometheusMetricReader, give exactly
    the Prometheus collector's families, labels and values: the dashboards work on either."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import REGISTRY, CollectorRegistry

    native = CollectorRegistry()
    if "registry" in inspect.signature(PrometheusMetricReader).parameters:
        translated = CollectorRegistry()
        reader = PrometheusMetricReader(registry=translated)
    else:  # exporter-prometheus before 0.63b0 registers on the global registry, always
        translated = REGISTRY  # its shutdown() (meter_provider's) unregisters it
        reader = PrometheusMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    assert instrument(
        tracer_provider=False, meter_provider=meter_provider, prometheus_registry=native
    )
    try:
        await full_workload()
        ours, theirs = _om_samples(native), _om_samples(translated)
    finally:
        uninstrument()
        meter_provider.shutdown()
    busy = "pygents_agent_busy_seconds_total"
    assert {k for k in ours if k[0] != busy} == {k for k in theirs if k[0] != busy}
    for key, value in ours.items():
        if key[0] == busy:  # read at each collection: the second read is later, never lower
            assert theirs[key] >= value > 0
        elif key[0].endswith("_sum"):
            assert theirs[key] == pytest.approx(value), key
        else:
            assert theirs[key] == value, key
    families = {name for name, _labels in ours}
    for name, (kind, _labels) in CONTRACT.items():
        wanted = f"{name}_count" if kind == "histogram" else name
        assert wanted in families, name


async def test_busy_time_counts_a_run_while_it_goes_and_stops_with_it(telemetry: Any) -> None:
    labels = {"agent": "busy"}
    during: list[float | None] = []
    release, sampled = asyncio.Event(), asyncio.Event()

    @tool()
    async def wait_for_release() -> None:
        during.append(telemetry.sample("pygents_agent_busy_seconds_total", labels))
        await asyncio.sleep(0.01)
        during.append(telemetry.sample("pygents_agent_busy_seconds_total", labels))
        sampled.set()
        await release.wait()

    agent = Agent("busy", "d", [wait_for_release])
    await agent.put(Turn(wait_for_release))
    running = asyncio.create_task(drain(agent))
    await sampled.wait()
    first, second = during
    assert first is not None and second is not None
    assert second > first >= 0  # growing mid-run, before the run ends
    release.set()
    await running
    ended = telemetry.sample("pygents_agent_busy_seconds_total", labels)
    assert ended is not None and ended >= second
    await asyncio.sleep(0.01)
    assert telemetry.sample("pygents_agent_busy_seconds_total", labels) == ended  # stopped
    # The OpenTelemetry counter reads the same value.
    points = otel_metrics(telemetry)["pygents.agent.busy"].data.data_points
    assert [p.value for p in points if p.attributes == {"agent": "busy"}] == [ended]


def test_busy_time_adds_concurrent_runs_and_ignores_an_end_without_a_start() -> None:
    from pygents.observability._store import BusyTime, MetricStore

    cell = BusyTime()
    cell.start(10.0)
    cell.start(11.0)  # two runs under one label (same name, or capped to "other")
    cell.end(13.0)
    cell.end(14.0)
    assert cell._total == pytest.approx(1 + 2 * 2 + 1)  # agent-seconds
    cell.end(20.0)  # instrumented mid-run: its start was never seen
    assert cell._total == pytest.approx(6) and cell.value == pytest.approx(6)

    store = MetricStore()
    store.busy(("never-started",)).end(time.monotonic())
    store.busy(("a",)).start(time.monotonic())
    [(labels, (value, created))] = [
        item for item in store.snapshot("pygents_agent_busy_seconds_total") if item[0] == ("a",)
    ]
    assert labels == ("a",) and value >= 0 and created > 0
    assert dict(store.snapshot("pygents_agent_busy_seconds_total"))[("never-started",)][0] == 0


async def test_observable_instruments_keep_final_values_until_replaced(telemetry: Any) -> None:
    @tool()
    async def once() -> int:
        return 1

    def turns() -> list[float]:
        metric = otel_metrics(telemetry).get("pygents.turns")
        return [p.value for p in metric.data.data_points] if metric is not None else []

    await Turn(once).returning()
    assert turns() == [1]
    uninstrument()
    assert turns() == [1]  # a last export after uninstrument() still has the final values
    # Another installation without these instruments silences them; otherwise they would go
    # on reporting next to its metrics (the SDK cannot forget an instrument).
    assert instrument(
        tracer_provider=False, meter_provider=False, prometheus_registry=telemetry.registry
    )
    assert turns() == []


# --------------------------------------------------------------------------- gauges


async def test_running_and_queue_depth_gauges_during_and_after_a_run(telemetry: Any) -> None:
    seen: list[tuple[float | None, float | None]] = []

    @tool()
    async def probe() -> None:
        seen.append(
            (
                telemetry.sample("pygents_agent_running", {"agent": "gauge"}),
                telemetry.sample("pygents_agent_queue_depth", {"agent": "gauge"}),
            )
        )

    agent = Agent("gauge", "d", [probe])
    for _ in range(3):
        await agent.put(Turn(probe))
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "gauge"}) == 3
    await drain(agent)
    assert seen == [(1, 2), (1, 1), (1, 0)]
    assert telemetry.sample("pygents_agent_running", {"agent": "gauge"}) == 0
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "gauge"}) == 0


async def test_agents_replacing_each_other_under_one_name_are_each_watched(
    telemetry: Any,
) -> None:
    # Each agent is dropped before the next is made, so a new one may land at the address
    # (the id) of the one before: the put's and the run's metrics follow the live agent.
    @tool()
    async def step() -> None:
        return None

    for generation in range(1, 13):
        agent = Agent("reborn", "d", [step])
        for _ in range(generation):
            await agent.put(Turn(step))
        assert telemetry.sample("pygents_agent_queue_depth", {"agent": "reborn"}) == generation
        if generation % 2:
            await drain(agent)
            assert telemetry.sample("pygents_agent_queue_depth", {"agent": "reborn"}) == 0
        AgentRegistry.discard("reborn", agent)
        del agent
        gc.collect()
    assert telemetry.sample("pygents_agent_turns_enqueued_total", {"agent": "reborn"}) == 78
    # The last agent is gone with its turns queued: the gauge reads 0 (no live agent).
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "reborn"}) == 0


async def test_a_renamed_agent_is_counted_under_its_new_name(telemetry: Any) -> None:
    seen: list[float | None] = []

    @tool()
    async def work() -> None:
        seen.append(telemetry.sample("pygents_agent_running", {"agent": "renamed-after"}))

    agent = Agent("renamed-before", "d", [work])
    await agent.put(Turn(work))
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "renamed-before"}) == 1
    agent.name = "renamed-after"  # idle: allowed
    await agent.put(Turn(work))
    enqueued = "pygents_agent_turns_enqueued_total"
    assert telemetry.sample(enqueued, {"agent": "renamed-before"}) == 1
    assert telemetry.sample(enqueued, {"agent": "renamed-after"}) == 1
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "renamed-after"}) == 2
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "renamed-before"}) == 0
    await drain(agent)
    assert seen == [1, 1]
    assert telemetry.sample("pygents_agent_running", {"agent": "renamed-after"}) == 0
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "renamed-after"}) == 0


async def test_queue_depth_after_an_error_is_what_remains(telemetry: Any) -> None:
    @tool()
    async def fine() -> int:
        return 1

    @tool()
    async def broken() -> None:
        raise Boom("stop")

    agent = Agent("halted", "d", [fine, broken])
    for turn in [Turn(fine), Turn(broken), Turn(fine), Turn(fine)]:
        await agent.put(turn)
    with pytest.raises(Boom):
        await drain(agent)
    assert len(agent) == 2
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "halted"}) == 2
    assert telemetry.sample("pygents_agent_running", {"agent": "halted"}) == 0
    await drain(agent)
    assert telemetry.sample("pygents_agent_queue_depth", {"agent": "halted"}) == 0


async def test_paused_gauge_while_paused_and_after_resume(telemetry: Any) -> None:
    during: list[float | None] = []

    @tool()
    async def hold() -> None:
        agent = current_agent()
        assert agent is not None
        agent.pause()

        def check_and_resume() -> None:
            during.append(telemetry.sample("pygents_agent_paused", {"agent": "sleepy"}))
            agent.resume()

        asyncio.get_running_loop().call_soon(check_and_resume)

    @tool()
    async def then() -> None:
        return None

    agent = Agent("sleepy", "d", [hold, then])
    await agent.put(Turn(hold))
    await agent.put(Turn(then))
    await drain(agent)
    assert during == [1]
    assert telemetry.sample("pygents_agent_paused", {"agent": "sleepy"}) == 0


async def test_context_item_gauges_after_evictions_and_clear(telemetry: Any) -> None:
    @tool()
    async def fill():
        for i in range(5):
            yield ContextItem(content=i)
            yield ContextItem(content=i, id=f"k{i}", description=f"key {i}")

    @tool()
    async def wipe(cq: ContextQueue, pool: ContextPool) -> None:
        await cq.clear()
        await pool.clear()

    agent = Agent(
        "filler",
        "d",
        [fill, wipe],
        context_queue=ContextQueue(limit=3),
        context_pool=ContextPool(limit=2),
    )
    await agent.put(Turn(fill))
    await drain(agent)
    owner = {"owner": "filler"}
    assert telemetry.sample("pygents_context_queue_items", owner) == 3 == len(agent.context_queue)
    assert telemetry.sample("pygents_context_pool_items", owner) == 2 == len(agent.context_pool)
    assert telemetry.sample("pygents_context_queue_evictions_total", owner) == 2
    assert telemetry.sample("pygents_context_pool_evictions_total", owner) == 3

    await agent.put(Turn(wipe))
    await drain(agent)
    assert telemetry.sample("pygents_context_queue_items", owner) == 0
    assert telemetry.sample("pygents_context_pool_items", owner) == 0

    # Removing and re-adding keeps the gauge equal to the pool's length.
    await agent.context_pool.add(ContextItem(content=1, id="a", description="a"))
    await agent.context_pool.add(ContextItem(content=2, id="b", description="b"))
    await agent.context_pool.remove("a")
    assert telemetry.sample("pygents_context_pool_items", owner) == 1


async def test_owner_label_of_stand_alone_containers(telemetry: Any) -> None:
    plain = ContextQueue(limit=2)
    named = ContextQueue(limit=2, name="notes")
    await plain.append(ContextItem(content=1))
    await named.append(ContextItem(content=1), ContextItem(content=2), ContextItem(content=3))
    pool = ContextPool(name="store")
    await pool.add(ContextItem(content=1, id="a", description="a"))
    assert telemetry.sample("pygents_context_queue_items", {"owner": "unowned"}) == 1
    assert telemetry.sample("pygents_context_queue_items", {"owner": "notes"}) == 2
    assert telemetry.sample("pygents_context_queue_evictions_total", {"owner": "notes"}) == 1
    assert telemetry.sample("pygents_context_pool_items", {"owner": "store"}) == 1

    # Once an agent adopts a container, the agent's name is the owner.
    Agent("adopter", "d", [], context_queue=named)
    await named.append(ContextItem(content=4))
    assert telemetry.sample("pygents_context_queue_items", {"owner": "adopter"}) == 2


async def test_paused_gauge_of_a_run_instrumented_after_it_started(telemetry: Any) -> None:
    """An agent whose run start the bridge did not see is read from once it pauses."""
    uninstrument()
    go = asyncio.Event()

    @tool()
    async def first() -> None:
        await go.wait()
        agent.pause()

    @tool()
    async def second() -> None:
        return None

    agent = Agent("late", "d", [first, second])
    await agent.put(Turn(first))
    await agent.put(Turn(second))
    run = asyncio.create_task(drain(agent))
    await asyncio.sleep(0)
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
    )
    go.set()
    for _ in range(20):  # until the loop waits at its gate (ON_PAUSE fired)
        await asyncio.sleep(0)
    assert telemetry.sample("pygents_agent_paused", {"agent": "late"}) == 1
    agent.resume()
    await run
    assert telemetry.sample("pygents_agent_paused", {"agent": "late"}) == 0


async def test_agent_gauges_are_read_from_the_agent_when_collected(telemetry: Any) -> None:
    """Queue depth, paused and the context-item gauges of an agent that ran or was put to
    are read from it at collection, so a change made without hooks shows at once."""

    @tool()
    async def note(n: int):
        yield ContextItem(content=n)
        yield ContextItem(content=n, id=f"k{n}", description=f"key {n}")

    shared = ContextPool(name="shared")
    first = Agent("first", "d", [note], context_pool=shared)
    second = Agent("second", "d", [note], context_pool=shared)
    for agent in (first, second):
        await agent.put(Turn(note, kwargs={"n": 1}))
        await drain(agent)
    await second.put(Turn(note, kwargs={"n": 2}))
    second.pause()

    def gauges(agent: str, owner: str) -> tuple[float | None, ...]:
        return (
            telemetry.sample("pygents_agent_queue_depth", {"agent": agent}),
            telemetry.sample("pygents_agent_paused", {"agent": agent}),
            telemetry.sample("pygents_context_queue_items", {"owner": owner}),
            telemetry.sample("pygents_context_pool_items", {"owner": owner}),
        )

    # The pool both agents hold is counted once, under its owner (its first adopter).
    assert gauges("first", "first") == (0, 0, 1, 1)
    assert gauges("second", "second") == (1, 1, 1, None)
    assert len(shared) == 1

    # reset() empties the queues and unpauses without firing a hook: no run needed to see it.
    second.reset()
    first.reset()
    assert gauges("first", "first") == (0, 0, 0, 0)
    assert gauges("second", "second") == (0, 0, 0, None)

    # The OpenTelemetry instruments read the same values.
    await first.context_queue.append(ContextItem(content="x"))
    points = {
        name: {
            tuple(sorted(point.attributes.items())): point.value
            for point in otel_metrics(telemetry)[name].data.data_points
        }
        for name in ("pygents.context_queue.items", "pygents.agent.paused")
    }
    assert points["pygents.context_queue.items"][(("owner", "first"),)] == 1
    assert points["pygents.context_queue.items"][(("owner", "second"),)] == 0
    assert points["pygents.agent.paused"][(("agent", "second"),)] == 0


# --------------------------------------------------------------------------- cardinality


def capped(telemetry: Any, monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    """Instrument again, with at most ``cap`` values per metric label."""
    uninstrument()
    monkeypatch.setenv("PYGENTS_METRICS_MAX_LABEL_VALUES", str(cap))
    assert instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        prometheus_registry=telemetry.registry,
    )


async def test_label_cardinality_is_capped(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pygents.observability")
    capped(telemetry, monkeypatch, 20)

    @tool()
    async def step() -> int:
        return 1

    for i in range(1000):
        agent = Agent(f"dynamic-{i}", "d", [step])
        await agent.put(Turn(step))
        await drain(agent)

    turns = series(telemetry, "pygents_turns_total")
    agents = {dict(labels)["agent"] for labels in turns}
    assert "other" in agents
    assert len(agents - {"other"}) <= 20
    assert sum(turns.values()) == 1000  # nothing lost, only folded into "other"
    assert turns[(("agent", "other"), ("stop_reason", "completed"), ("tool", "step"))] >= 980

    for sample_name in ("pygents_agent_running", "pygents_turn_values_total"):
        labels = {dict(k)["agent"] for k in series(telemetry, sample_name)}
        assert len(labels - {"other"}) <= 20, sample_name

    warnings = [
        r
        for r in caplog.records
        if r.name == "pygents.observability" and r.levelno == logging.WARNING
    ]
    about_agent = [r for r in warnings if "'agent'" in r.getMessage()]
    assert len(about_agent) == 1, [r.getMessage() for r in warnings]
    # The tool label stayed under the cap: no warning about it.
    assert not [r for r in warnings if "'tool'" in r.getMessage()]


async def test_running_gauge_of_a_shared_label_stays_up_while_any_run_goes_on(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agents folded into ``other`` (past the label cap) share its running gauge: 1 until the
    last of their overlapping runs ends, as their busy time counts them."""
    capped(telemetry, monkeypatch, 1)
    release = {name: asyncio.Event() for name in ("first", "second", "third")}
    seen: list[tuple[str, float | None]] = []

    @tool()
    async def hold(name: str) -> None:
        await release[name].wait()

    def running(label: str) -> float | None:
        return telemetry.sample("pygents_agent_running", {"agent": label})

    agents = {name: Agent(name, "d", [hold]) for name in release}
    for name, agent in agents.items():
        await agent.put(Turn(hold, kwargs={"name": name}))
    runs = [asyncio.create_task(drain(agent)) for agent in agents.values()]
    await asyncio.sleep(0.01)
    seen.append(("all", running("other")))
    release["second"].set()
    await runs[1]
    seen.append(("second done", running("other")))
    release["third"].set()
    await runs[2]
    seen.append(("third done", running("other")))
    release["first"].set()
    await runs[0]
    assert seen == [("all", 1), ("second done", 1), ("third done", 0)]
    assert running("first") == 0


async def test_every_opentelemetry_attribute_is_capped_error_type_included(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap holds on the OpenTelemetry side too, for every attribute: a program raising a new
    exception class per call cannot grow the error series without end."""
    capped(telemetry, monkeypatch, 5)
    kinds = [type(f"Failure{i}", (Exception,), {}) for i in range(12)]

    for i, kind in enumerate(kinds):

        async def fails(kind: type[Exception] = kind) -> None:
            raise kind("x")

        fails.__name__ = fails.__qualname__ = f"fails_{i}"  # a new tool name each time too
        with pytest.raises(kind):
            await Turn(tool()(fails)).returning()

    metrics = otel_metrics(telemetry)
    values: dict[str, set[str]] = defaultdict(set)
    for name in ("pygents.turn.errors", "pygents.turns", "pygents.turn.duration"):
        for point in metrics[name].data.data_points:
            for key, value in point.attributes.items():
                values[key].add(value)
    for key in ("error.type", "tool"):
        assert "other" in values[key], key
        assert len(values[key] - {"other"}) <= 5, (key, values[key])
    errors = {
        p.attributes["error.type"]: p.value for p in metrics["pygents.turn.errors"].data.data_points
    }
    assert sum(errors.values()) == 12  # nothing lost, only folded into "other"


async def test_a_new_agent_name_per_request_does_not_grow_the_bridge_forever(
    telemetry: Any,
) -> None:
    """A service naming one agent per request (ids in names) must not leak memory."""
    from pygents.observability import _instrument

    @tool()
    async def per_request() -> int:
        return 1

    for i in range(6000):
        agent = Agent(f"request-{i}", "d", [per_request])
        await agent.put(Turn(per_request, timeout=1 + i % 7))
        await drain(agent)
        AgentRegistry.discard(agent.name, agent)

    bridge = _instrument._bridge
    assert bridge is not None
    caches = {
        "lanes": bridge._lanes,
        "span attributes": bridge.spans._tool_attrs,
        "agent cells": bridge.metrics.cells._agents,
        "turn cells": bridge.metrics.cells._turns,
        "value counters": bridge.metrics.cells._values,
    }
    for name, cache in caches.items():
        assert len(cache) <= 4096, f"{name}: {len(cache)} entries"
    assert not bridge._turns and not bridge._runs and not bridge._routing and not bridge._open
    # Nothing lost: every turn counted, under capped labels.
    assert sum(series(telemetry, "pygents_turns_total").values()) == 6000


# --------------------------------------------------------------------------- concurrency

AGENTS = 50
WORK_TURNS = 10
STREAM_VALUES = 5


def _build_concurrent_agents() -> list[Agent]:
    agents = []
    for i in range(AGENTS):

        async def work(n: int) -> int:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return n

        async def stream(n: int):
            for j in range(n):
                await asyncio.sleep(0)
                yield j

        work.__name__ = work.__qualname__ = f"work_{i}"
        stream.__name__ = stream.__qualname__ = f"stream_{i}"
        work_tool = tool(work)
        stream_tool = tool(stream)
        agents.append(Agent(f"agent_{i}", "d", [work_tool, stream_tool]))
    return agents


async def _fill(agents: list[Agent]) -> None:
    for i, agent in enumerate(agents):
        for n in range(WORK_TURNS // 2):
            await agent.put(Turn(f"work_{i}", args=[n]))
        await agent.put(Turn(f"stream_{i}", args=[STREAM_VALUES]))
        for n in range(WORK_TURNS // 2, WORK_TURNS):
            await agent.put(Turn(f"work_{i}", args=[n]))


def _check_concurrent_spans(telemetry: Any, results: list[list[tuple[str, Any]]]) -> None:
    for i, result in enumerate(results):
        assert len(result) == WORK_TURNS + STREAM_VALUES, i
    runs = {
        s.attributes["gen_ai.agent.name"]: s
        for s in telemetry.finished()
        if s.name.startswith("invoke_agent ")
    }
    assert len(runs) == AGENTS
    per_agent: dict[str, int] = defaultdict(int)
    for span in executed_spans(telemetry):
        index = span.attributes["gen_ai.tool.name"].rsplit("_", 1)[1]
        run = runs[f"agent_{index}"]
        assert span.parent is not None, span.name
        assert span.parent.span_id == run.context.span_id, span.name
        assert span.context.trace_id == run.context.trace_id, span.name
        assert run.start_time <= span.start_time <= span.end_time <= run.end_time
        per_agent[f"agent_{index}"] += 1
        if span.attributes["gen_ai.tool.name"].startswith("stream_"):
            assert span.attributes["pygents.turn.values"] == STREAM_VALUES
    assert per_agent == {f"agent_{i}": WORK_TURNS + 1 for i in range(AGENTS)}
    for run in runs.values():
        assert run.attributes["pygents.agent.turns"] == WORK_TURNS + 1
    turns = series(telemetry, "pygents_turns_total")
    assert sum(turns.values()) == AGENTS * (WORK_TURNS + 1)
    values = series(telemetry, "pygents_turn_values_total")
    assert sum(values.values()) == AGENTS * (WORK_TURNS + STREAM_VALUES)
    running = series(telemetry, "pygents_agent_running")
    assert len(running) == AGENTS
    assert set(running.values()) == {0}


def _no_detach_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if "Failed to detach context" in r.getMessage()]
    assert bad == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_concurrent_agents_with_gather(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agents = _build_concurrent_agents()
    await _fill(agents)
    results = await asyncio.gather(*(drain(agent) for agent in agents))
    _check_concurrent_spans(telemetry, list(results))
    _no_detach_errors(caplog)


async def test_concurrent_agents_with_task_group(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agents = _build_concurrent_agents()
    await _fill(agents)
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(drain(agent)) for agent in agents]
    _check_concurrent_spans(telemetry, [t.result() for t in tasks])
    _no_detach_errors(caplog)


async def test_concurrent_agents_under_a_user_span_and_early_breaks(
    telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Consumers that stop early while other agents keep streaming never lose a parent."""
    caplog.set_level(logging.DEBUG)
    agents = _build_concurrent_agents()
    await _fill(agents)

    async def consume(agent: Agent, stop_after: int | None) -> int:
        seen = 0
        async with contextlib.aclosing(agent.run()) as stream:
            async for _turn, _value in stream:
                seen += 1
                if stop_after is not None and seen == stop_after:
                    break
        return seen

    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("batch"):
        counts = await asyncio.gather(
            *(consume(a, 7 if i % 2 else None) for i, a in enumerate(agents))
        )
    assert counts == [7 if i % 2 else WORK_TURNS + STREAM_VALUES for i in range(AGENTS)]
    runs = {
        s.attributes["gen_ai.agent.name"]: s
        for s in telemetry.finished()
        if s.name.startswith("invoke_agent ")
    }
    assert len(runs) == AGENTS
    for span in executed_spans(telemetry):
        index = span.attributes["gen_ai.tool.name"].rsplit("_", 1)[1]
        assert span.parent is not None
        assert span.parent.span_id == runs[f"agent_{index}"].context.span_id
    # The consumer stopped during the stream: that turn ended cancelled.
    cancelled = [
        s
        for s in executed_spans(telemetry)
        if s.attributes["pygents.turn.stop_reason"] == "cancelled"
    ]
    assert len(cancelled) == AGENTS // 2
    assert all(s.name.startswith("execute_tool stream_") for s in cancelled)
    assert all(s.attributes["pygents.turn.values"] == 2 for s in cancelled)
    _no_detach_errors(caplog)
