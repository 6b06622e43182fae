#!/usr/bin/env python3
"""Generate pygents' Grafana dashboards (``dashboards/json/*.json``) from code.

    python dashboards/generate.py           # rewrite the committed JSON
    python dashboards/generate.py --check   # exit 1 if the committed JSON is out of date

Built with ``grafana-foundation-sdk`` in its Grafana 11.6 flavour (pinned in the ``dev`` extra
of pyproject.toml). The panels are declared once, below, as data; the builders turn them into
provisioning-ready dashboard JSON. ``tests/dashboards/`` fails when the committed files differ
from what this script produces, lints every PromQL expression, and runs every expression
against a real Prometheus scraping the demo.

Conventions every panel follows (the tests check them):

- every panel and every query uses the ``${datasource}`` variable, never a data-source uid;
- rates use ``$__rate_interval``; summary tables use ``$__range``;
- every selector is filtered by the ``job`` and ``instance`` variables, so the processes shown
  are a choice, never silently summed; agent and tool filters come from the ``agent`` / ``tool``
  variables (``label_values``); a variable no query uses is left out of the dashboard;
- latency panels query with exemplars on, so a slow point links to its trace in Jaeger.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import heatmap as heatmap_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import heatmap as heatmap_m
from grafana_foundation_sdk.models import prometheus as prom_m

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "json"

#: Every panel and query points at the dashboard's data-source variable.
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")

#: Label filters shared by the queries: the scrape target first (Prometheus' ``job`` and
#: ``instance``; over OTLP, ``service.name`` and ``service.instance.id``), then agent and tool.
TARGET = 'job=~"$job", instance=~"$instance"'
AGENT = f'{TARGET}, agent=~"$agent"'
TOOL = f'{TARGET}, tool=~"$tool"'
AGENT_TOOL = f'{AGENT}, tool=~"$tool"'
RATE = "[$__rate_interval]"
RANGE = "[$__range]"

#: SLO thresholds offered by the ``slo`` variable: bucket bounds of pygents' duration
#: histograms, written as the exposition writes the ``le`` label (``repr(float)``).
SLO_CHOICES = ("0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0")
SLO_DEFAULT = "0.25"


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    fmt: str = "time_series"  # or "table", "heatmap"


@dataclass(frozen=True)
class PanelSpec:
    """One panel: what it shows, which hooks feed it, how it is drawn."""

    title: str
    kind: str  # timeseries | heatmap | table | stat
    queries: tuple[Query, ...]
    description: str
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False
    #: Draw queries whose refId is listed here on a right-hand axis with this unit.
    right_axis: tuple[tuple[str, str], ...] = ()
    #: Decimals shown (None: Grafana's automatic choice).
    decimals: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _hist_quantile(q: float, metric: str, by: str, selector: str, window: str = RATE) -> str:
    group = f"{by}, le" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}{window})))"
    )


AGENT_RUNS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Throughput",
        (
            PanelSpec(
                "Turns/s by stop reason",
                "timeseries",
                (
                    Query(
                        f"sum by (stop_reason) (rate(pygents_turns_total{{{AGENT_TOOL}}}{RATE}))",
                        "{{stop_reason}}",
                    ),
                ),
                "Finished turns per second, stacked by stop reason (completed, timeout, error, "
                "cancelled). Source: pygents_turns_total, TurnHook ON_COMPLETE.",
                unit="ops",
                stacked=True,
            ),
            PanelSpec(
                "Timeout and error ratio",
                "timeseries",
                (
                    Query(
                        f"sum(rate(pygents_turn_timeouts_total{{{AGENT_TOOL}}}{RATE})) / "
                        f"sum(rate(pygents_turns_total{{{AGENT_TOOL}}}{RATE}))",
                        "timeouts",
                    ),
                    Query(
                        f"sum(rate(pygents_turn_errors_total{{{AGENT_TOOL}}}{RATE})) / "
                        f"sum(rate(pygents_turns_total{{{AGENT_TOOL}}}{RATE}))",
                        "errors",
                    ),
                ),
                "Share of finished turns that timed out (TurnHook ON_TIMEOUT, "
                "pygents_turn_timeouts_total) or failed (TurnHook ON_ERROR, "
                "pygents_turn_errors_total); stacked, so the top is the failure ratio.",
                unit="percentunit",
                stacked=True,
            ),
            PanelSpec(
                "Turn errors/s by error type",
                "timeseries",
                (
                    Query(
                        "sum by (error_type) "
                        f"(rate(pygents_turn_errors_total{{{AGENT_TOOL}}}{RATE}))",
                        "{{error_type}}",
                    ),
                ),
                "Failed turns per second, stacked by the exception's class name (the "
                "error_type label; timeouts are not errors). Source: pygents_turn_errors_total, "
                "TurnHook ON_ERROR.",
                unit="ops",
                stacked=True,
            ),
            PanelSpec(
                "Turns enqueued and values yielded /s",
                "timeseries",
                (
                    Query(
                        "sum by (agent) "
                        f"(rate(pygents_agent_turns_enqueued_total{{{AGENT}}}{RATE}))",
                        "{{agent}} enqueued",
                    ),
                    Query(
                        f"sum by (agent) (rate(pygents_turn_values_total{{{AGENT_TOOL}}}{RATE}))",
                        "{{agent}} values",
                    ),
                ),
                "Turns put on each agent's queue (AgentHook AFTER_PUT, "
                "pygents_agent_turns_enqueued_total) and values its turns yielded "
                "(pygents_turn_values_total), per second.",
                unit="ops",
            ),
        ),
    ),
    (
        "Queues and state",
        (
            PanelSpec(
                "Queue depth per agent",
                "timeseries",
                (
                    Query(
                        f"sum by (agent) (pygents_agent_queue_depth{{{AGENT}}})",
                        "{{agent}}",
                    ),
                ),
                "Turns waiting in each agent's queue. Source: pygents_agent_queue_depth, the "
                "queue's length read at each scrape.",
            ),
            PanelSpec(
                "Time in queue",
                "timeseries",
                (
                    Query(
                        _hist_quantile(0.95, "pygents_turn_queue_wait_seconds", "agent", AGENT),
                        "{{agent}} p95",
                    ),
                    Query(
                        "sum by (agent) "
                        f"(rate(pygents_turn_queue_wait_seconds_sum{{{AGENT}}}{RATE})) / "
                        "sum by (agent) "
                        f"(rate(pygents_turn_queue_wait_seconds_count{{{AGENT}}}{RATE}))",
                        "{{agent}} mean",
                    ),
                ),
                "How long a turn waited between being put on the queue (AgentHook AFTER_PUT) "
                "and starting to run (TurnHook BEFORE_RUN): p95 and mean per agent. Source: "
                "pygents_turn_queue_wait_seconds.",
                unit="s",
            ),
            PanelSpec(
                "Agent busy share",
                "timeseries",
                (
                    Query(
                        f"sum by (agent) (rate(pygents_agent_busy_seconds_total{{{AGENT}}}{RATE}))",
                        "{{agent}}",
                    ),
                ),
                "Share of the time each agent's run loop was active: the rate of "
                "pygents_agent_busy_seconds_total (AgentHook ON_RUN_START → ON_RUN_END, counted "
                "up to each scrape), so runs shorter than the scrape interval and runs still "
                "going both show. 1 = always running; more than 1 when several agents share a "
                "name or several processes are selected.",
                unit="percentunit",
            ),
            PanelSpec(
                "Agents running and paused",
                "timeseries",
                (
                    Query(f"sum(pygents_agent_running{{{AGENT}}})", "running"),
                    Query(f"sum(pygents_agent_paused{{{AGENT}}})", "paused"),
                ),
                "How many agents' run loops were active (pygents_agent_running, AgentHook "
                "ON_RUN_START / ON_RUN_END) and how many of them paused (pygents_agent_paused, "
                "ON_PAUSE / ON_RESUME) at each scrape. A gauge is read at the scrape only: a "
                "run or pause between two scrapes does not show here; Agent busy share counts it.",
                decimals=0,
            ),
        ),
    ),
    (
        "Context",
        (
            PanelSpec(
                "Context queue: evictions/s and items",
                "timeseries",
                (
                    Query(
                        "sum by (owner) "
                        f"(rate(pygents_context_queue_evictions_total{{{TARGET}}}{RATE}))",
                        "{{owner}} evictions/s",
                    ),
                    Query(
                        f"sum by (owner) (pygents_context_queue_items{{{TARGET}}})",
                        "{{owner}} items",
                    ),
                ),
                "Context-queue evictions per second (ContextQueueHook ON_EVICT, "
                "pygents_context_queue_evictions_total) and items held (AFTER_APPEND, "
                "AFTER_CLEAR, ON_EVICT; pygents_context_queue_items, right axis), by owner.",
                unit="ops",
                right_axis=(("B", "short"),),
            ),
            PanelSpec(
                "Context pool: items and evictions/s",
                "timeseries",
                (
                    Query(
                        f"sum by (owner) (pygents_context_pool_items{{{TARGET}}})",
                        "{{owner}} items",
                    ),
                    Query(
                        "sum by (owner) "
                        f"(rate(pygents_context_pool_evictions_total{{{TARGET}}}{RATE}))",
                        "{{owner}} evictions/s",
                    ),
                ),
                "Items in each context pool (ContextPoolHook AFTER_ADD, AFTER_REMOVE, "
                "AFTER_CLEAR, ON_EVICT; pygents_context_pool_items) and pool evictions per "
                "second (ON_EVICT, pygents_context_pool_evictions_total, right axis), by owner.",
                right_axis=(("B", "ops"),),
            ),
        ),
    ),
    (
        "Totals",
        (
            PanelSpec(
                "Turns by agent and stop reason",
                "table",
                (
                    Query(
                        "sum by (agent, stop_reason) "
                        f"(increase(pygents_turns_total{{{AGENT_TOOL}}}{RANGE}))",
                        instant=True,
                        fmt="table",
                    ),
                ),
                "Turns finished in the selected time range, one row per agent and one column "
                "per stop reason. Source: pygents_turns_total, TurnHook ON_COMPLETE.",
                width=24,
                decimals=0,
                options={
                    "transformations": [
                        (
                            "groupingToMatrix",
                            {
                                "columnField": "stop_reason",
                                "rowField": "agent",
                                "valueField": "Value",
                                "emptyValue": "zero",
                            },
                        )
                    ]
                },
            ),
        ),
    ),
)

LATENCY: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Turns",
        (
            PanelSpec(
                "Turn latency p50 / p95 / p99",
                "timeseries",
                (
                    Query(
                        _hist_quantile(0.5, "pygents_turn_duration_seconds", "", AGENT_TOOL),
                        "p50",
                        exemplar=True,
                    ),
                    Query(
                        _hist_quantile(0.95, "pygents_turn_duration_seconds", "", AGENT_TOOL),
                        "p95",
                    ),
                    Query(
                        _hist_quantile(0.99, "pygents_turn_duration_seconds", "", AGENT_TOOL),
                        "p99",
                    ),
                ),
                "Turn duration from TurnHook BEFORE_RUN to ON_COMPLETE "
                "(pygents_turn_duration_seconds). The dots are exemplars: each carries the "
                "trace id of a real turn; click one to open its trace in Jaeger.",
                unit="s",
            ),
            PanelSpec(
                "Turn latency heatmap",
                "heatmap",
                (
                    Query(
                        "sum by (le) "
                        f"(rate(pygents_turn_duration_seconds_bucket{{{AGENT_TOOL}}}{RATE}))",
                        "{{le}}",
                        exemplar=True,
                        fmt="heatmap",
                    ),
                ),
                "Turns per second in each latency bucket of pygents_turn_duration_seconds "
                "(TurnHook BEFORE_RUN → ON_COMPLETE), with exemplars: a hot cell high up is a "
                "slow turn, and its exemplar opens the trace.",
                unit="s",
            ),
            PanelSpec(
                "Turn p95 by agent",
                "timeseries",
                (
                    Query(
                        _hist_quantile(0.95, "pygents_turn_duration_seconds", "agent", AGENT_TOOL),
                        "{{agent}}",
                        exemplar=True,
                    ),
                ),
                "95th percentile turn duration per agent (pygents_turn_duration_seconds, "
                "TurnHook BEFORE_RUN → ON_COMPLETE), with exemplars.",
                unit="s",
            ),
            PanelSpec(
                "Turns under the SLO threshold",
                "stat",
                (
                    Query(
                        "sum(rate(pygents_turn_duration_seconds_bucket"
                        f'{{{AGENT_TOOL}, le="$slo"}}{RATE})) / '
                        f"sum(rate(pygents_turn_duration_seconds_count{{{AGENT_TOOL}}}{RATE}))",
                        "under $slo s",
                    ),
                ),
                "Share of turns that finished within the SLO threshold chosen in the `slo` "
                "variable (a bucket bound of pygents_turn_duration_seconds; TurnHook "
                "BEFORE_RUN → ON_COMPLETE).",
                unit="percentunit",
            ),
        ),
    ),
    (
        "Tools",
        (
            PanelSpec(
                "Tool p95 by tool",
                "timeseries",
                (
                    Query(
                        _hist_quantile(0.95, "pygents_tool_duration_seconds", "tool", TOOL),
                        "{{tool}}",
                        exemplar=True,
                    ),
                ),
                "95th percentile tool invocation duration per tool "
                "(pygents_tool_duration_seconds, ToolHook BEFORE_INVOKE → AFTER_INVOKE / "
                "ON_ERROR), with exemplars.",
                unit="s",
            ),
            PanelSpec(
                "Tool calls/s",
                "timeseries",
                (
                    Query(
                        "sum by (tool, outcome) "
                        f"(rate(pygents_tool_invocations_total{{{TOOL}}}{RATE}))",
                        "{{tool}} {{outcome}}",
                    ),
                ),
                "Tool invocations per second by tool and outcome (ok / error). Source: "
                "pygents_tool_invocations_total, ToolHook BEFORE_INVOKE, AFTER_INVOKE, ON_ERROR.",
                unit="ops",
                stacked=True,
            ),
            PanelSpec(
                "Timeout ratio by tool",
                "timeseries",
                (
                    Query(
                        "(sum by (tool) "
                        f"(rate(pygents_turn_timeouts_total{{{AGENT_TOOL}}}{RATE})) or "
                        f"sum by (tool) (rate(pygents_turns_total{{{AGENT_TOOL}}}{RATE})) * 0) / "
                        f"sum by (tool) (rate(pygents_turns_total{{{AGENT_TOOL}}}{RATE}))",
                        "{{tool}}",
                    ),
                ),
                "Share of each tool's turns that timed out (TurnHook ON_TIMEOUT, "
                "pygents_turn_timeouts_total, over pygents_turns_total from ON_COMPLETE); 0 for "
                "a tool that ran without timeouts.",
                unit="percentunit",
                width=24,
            ),
            PanelSpec(
                "Per-tool summary",
                "table",
                (
                    Query(
                        "sum by (tool) "
                        f"(increase(pygents_tool_invocations_total{{{TOOL}}}{RANGE}))",
                        instant=True,
                        fmt="table",
                    ),
                    Query(
                        "(sum by (tool) (increase(pygents_tool_invocations_total"
                        f'{{{TOOL}, outcome="error"}}{RANGE})) or sum by (tool) '
                        f"(increase(pygents_tool_invocations_total{{{TOOL}}}{RANGE})) * 0) / "
                        "sum by (tool) "
                        f"(increase(pygents_tool_invocations_total{{{TOOL}}}{RANGE}))",
                        instant=True,
                        fmt="table",
                    ),
                    Query(
                        _hist_quantile(0.5, "pygents_tool_duration_seconds", "tool", TOOL, RANGE),
                        instant=True,
                        fmt="table",
                    ),
                    Query(
                        _hist_quantile(0.95, "pygents_tool_duration_seconds", "tool", TOOL, RANGE),
                        instant=True,
                        fmt="table",
                    ),
                    Query(
                        "sum by (tool) "
                        f"(rate(pygents_tool_duration_seconds_sum{{{TOOL}}}{RANGE})) / "
                        "sum by (tool) "
                        f"(rate(pygents_tool_duration_seconds_count{{{TOOL}}}{RANGE}))",
                        instant=True,
                        fmt="table",
                    ),
                ),
                "One row per tool over the selected time range: calls, error share, p50, "
                "p95 and mean duration. Sources: pygents_tool_invocations_total and "
                "pygents_tool_duration_seconds (ToolHook BEFORE_INVOKE → AFTER_INVOKE / "
                "ON_ERROR).",
                width=24,
                options={
                    "columns": {
                        "Value #A": ("calls", "none"),
                        "Value #B": ("error share", "percentunit"),
                        "Value #C": ("p50", "s"),
                        "Value #D": ("p95", "s"),
                        "Value #E": ("mean", "s"),
                    },
                },
            ),
        ),
    ),
)

REDIS_WORKERS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Scale-out over Redis",
        (
            PanelSpec(
                "Redis queue depth per agent",
                "timeseries",
                (
                    Query(
                        f"sum by (agent) (pygents_redis_queue_depth{{{AGENT}}})",
                        "{{agent}}",
                    ),
                ),
                "Turns waiting for each agent: in its Redis stream plus queued at the worker "
                "that holds its lease (reported by that worker only). A line that keeps "
                "growing is an agent its worker cannot keep up with, or one no worker serves. "
                "Source: pygents_redis_queue_depth (RedisWorker).",
            ),
            PanelSpec(
                "Leases held per worker",
                "timeseries",
                (
                    Query(
                        f"sum by (instance) (pygents_redis_leases_held{{{TARGET}}})",
                        "{{instance}}",
                    ),
                ),
                "Agents each worker holds the lease of (serves). The workers share the agents "
                "out evenly; when one dies, its leases expire and the others' lines rise. "
                "Source: pygents_redis_leases_held (RedisWorker).",
                stacked=True,
                decimals=0,
            ),
            PanelSpec(
                "Takeovers by agent",
                "timeseries",
                (
                    Query(
                        "sum by (agent) "
                        f"(increase(pygents_redis_takeovers_total{{{AGENT}}}{RATE}))",
                        "{{agent}}",
                    ),
                ),
                "Agents taken over from a worker that died or stalled past its lease (each "
                "resumes from its checkpoint, its turn in flight re-run). Source: "
                "pygents_redis_takeovers_total (RedisWorker).",
                width=8,
            ),
            PanelSpec(
                "Redeliveries/s by agent",
                "timeseries",
                (
                    Query(
                        f"sum by (agent) (rate(pygents_redis_redeliveries_total{{{AGENT}}}{RATE}))",
                        "{{agent}}",
                    ),
                ),
                "Turns delivered again per second: claimed from a lost worker, resumed in "
                "flight after a takeover, or retried after a failure (at-least-once "
                "delivery). Source: pygents_redis_redeliveries_total (RedisWorker).",
                unit="ops",
                width=8,
            ),
            PanelSpec(
                "Dead letters/s by agent",
                "timeseries",
                (
                    Query(
                        f"sum by (agent) (rate(pygents_redis_dead_letters_total{{{AGENT}}}{RATE}))",
                        "{{agent}}",
                    ),
                ),
                "Turns moved to the dead-letter stream per second (failed max_attempts "
                "times, or undecodable); read them with RedisQueue.dead_letters(). Source: "
                "pygents_redis_dead_letters_total (RedisWorker).",
                unit="ops",
                width=8,
            ),
        ),
    ),
)

#: The metric each variable takes its values from (``label_values``), and what they are: a
#: metric every process the dashboard shows exports. Turn metrics appear with a process's
#: first turn; a Redis worker that holds leases but has run no turn exports only its own.
RUN_SOURCES = {
    "job": ("pygents_turns_total", "Scrape jobs"),
    "agent": ("pygents_agent_running", "Agents (run loops)"),
    "tool": ("pygents_tool_invocations_total", "Tools"),
}
REDIS_SOURCES = {
    "job": ("pygents_redis_leases_held", "Scrape jobs"),
    "agent": ("pygents_redis_queue_depth", "Agents (their Redis streams)"),
}

DASHBOARDS = (
    (
        "pygents-agent-runs",
        "pygents · Agent runs",
        "Turns, queues, agent state and context of pygents agents "
        "(metrics of pygents.observability).",
        AGENT_RUNS,
        RUN_SOURCES,
    ),
    (
        "pygents-turn-tool-latency",
        "pygents · Turn & tool latency",
        "Turn and tool latency of pygents agents, with exemplars linking to traces.",
        LATENCY,
        RUN_SOURCES,
    ),
    (
        "pygents-redis-workers",
        "pygents · Redis workers",
        "Agents served by pygents.redis workers: queue depth per agent, leases, takeovers, "
        "redeliveries and dead letters.",
        REDIS_WORKERS,
        REDIS_SOURCES,
    ),
)


# --------------------------------------------------------------------------- builders


def _target(query: Query, ref_id: str) -> prom_b.Dataquery:
    target = (
        prom_b.Dataquery()
        .expr(query.expr)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .editor_mode(prom_m.QueryEditorMode.CODE)
        .format(prom_m.PromQueryFormat(query.fmt))
    )
    target = target.instant() if query.instant else target.range()
    if query.legend:
        target = target.legend_format(query.legend)
    if query.exemplar:
        target = target.exemplar(True)
    return target


def _legend() -> common_b.VizLegendOptions:
    return (
        common_b.VizLegendOptions()
        .display_mode(common_m.LegendDisplayMode.LIST)
        .placement(common_m.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def _panel(spec: PanelSpec) -> Any:
    panel: Any
    if spec.kind == "timeseries":
        panel = (
            timeseries_b.Panel()
            .legend(_legend())
            .line_width(1)
            .fill_opacity(15 if spec.stacked else 5)
            .show_points(common_m.VisibilityMode.NEVER)
        )
        if spec.stacked:
            panel = panel.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
        for ref_id, unit in spec.right_axis:
            panel = panel.override_by_query(
                ref_id,
                [
                    dash_m.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                    dash_m.DynamicConfigValue(id_val="unit", value=unit),
                ],
            )
    elif spec.kind == "heatmap":
        panel = (
            heatmap_b.Panel()
            .calculate(False)
            .y_axis(heatmap_b.YAxisConfig().unit(spec.unit))
            .color(
                heatmap_b.HeatmapColorOptions()
                .mode(heatmap_m.HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .scale(heatmap_m.HeatmapColorScale.EXPONENTIAL)
                .exponent(0.5)
                .steps(64)
            )
            .cell_values(heatmap_b.CellValues().unit("ops"))
            .exemplars_color("rgba(0,211,255,0.7)")
            .show_legend()
        )
    elif spec.kind == "table":
        panel = table_b.Panel().show_header(True)
        if "transformations" in spec.options:
            panel = panel.transformations(
                [
                    dash_m.DataTransformerConfig(id_val=name, options=opts)
                    for name, opts in spec.options["transformations"]
                ]
            )
        if "columns" in spec.options:
            columns = spec.options["columns"]
            panel = panel.transformations(
                [
                    dash_m.DataTransformerConfig(id_val="merge", options={}),
                    dash_m.DataTransformerConfig(
                        id_val="organize",
                        options={
                            "excludeByName": {"Time": True},
                            "renameByName": {k: name for k, (name, _) in columns.items()},
                            "indexByName": {
                                "tool": 0,
                                **{k: i + 1 for i, k in enumerate(columns)},
                            },
                        },
                    ),
                ]
            )
            for name, unit in columns.values():
                properties = [dash_m.DynamicConfigValue(id_val="unit", value=unit)]
                if unit == "none":  # a count over the range: increase() extrapolates
                    properties.append(dash_m.DynamicConfigValue(id_val="decimals", value=0))
                panel = panel.override_by_name(name, properties)
    elif spec.kind == "stat":
        panel = (
            stat_b.Panel()
            .graph_mode(common_m.BigValueGraphMode.AREA)
            .color_mode(common_m.BigValueColorMode.VALUE)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
            .min(0)
            .max(1)
            .thresholds(
                dash_b.ThresholdsConfig()
                .mode(dash_m.ThresholdsMode.ABSOLUTE)
                .steps(
                    [
                        dash_m.Threshold(value=None, color="red"),
                        dash_m.Threshold(value=0.9, color="orange"),
                        dash_m.Threshold(value=0.99, color="green"),
                    ]
                )
            )
        )
    else:  # pragma: no cover - a typo in the declarations above
        raise ValueError(f"unknown panel kind {spec.kind!r}")
    if spec.decimals is not None:
        panel = panel.decimals(spec.decimals)
    return (
        panel.title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
        .height(spec.height)
        .targets([_target(q, chr(ord("A") + i)) for i, q in enumerate(spec.queries)])
    )


def _variables(rows: Any, sources: dict[str, tuple[str, str]]) -> list[Any]:
    """The dashboard's variables: the data source, then every variable its queries use.

    ``sources``: the metric each takes its values from, and what the values are.
    """

    def label_values(
        name: str, label: str, metric: str, what: str, selector: str = TARGET
    ) -> dash_b.QueryVariable:
        series = f"{metric}{{{selector}}}" if selector else metric
        query = f"label_values({series}, {name})"
        return (
            dash_b.QueryVariable(name)
            .label(label)
            .description(f"{what}; values from {query}.")
            .datasource(DATASOURCE)
            .query({"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"})
            .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dash_m.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(dash_m.VariableOption(text="All", value="$__all"))
        )

    slo = (
        dash_b.CustomVariable("slo")
        .label("SLO threshold (s)")
        .description(
            "Latency threshold for the 'Turns under the SLO threshold' panel: a bucket bound "
            "of pygents_turn_duration_seconds."
        )
        .values(",".join(SLO_CHOICES))
        .current(dash_m.VariableOption(text=SLO_DEFAULT, value=SLO_DEFAULT))
        .options(
            [
                dash_m.VariableOption(selected=value == SLO_DEFAULT, text=value, value=value)
                for value in SLO_CHOICES
            ]
        )
    )
    jobs = sources["job"][0]
    candidates = [
        ("job", label_values("job", "Job", *sources["job"], "")),
        (
            "instance",
            label_values(
                "instance",
                "Instance",
                jobs,
                "Processes (scrape targets) of the chosen jobs",
                'job=~"$job"',
            ),
        ),
        *(
            (name, label_values(name, name.capitalize(), *sources[name]))
            for name in ("agent", "tool")
            if name in sources
        ),
        ("slo", slo),
    ]
    exprs = " ".join(
        query.expr for _title, specs in rows for spec in specs for query in spec.queries
    )
    used = {name for name, _var in candidates if f"${name}" in exprs}
    return [
        dash_b.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus data source every panel queries."),
        *(var for name, var in candidates if name in used),
    ]


def build(
    uid: str, title: str, description: str, rows: Any, sources: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Build one dashboard and return it as a JSON-ready dict."""
    board = (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["pygents", "agents"])
        .editable()
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .time("now-15m", "now")
        .refresh("10s")
        .timezone("browser")
        .variables(_variables(rows, sources))
        .link(
            dash_b.DashboardLink("pygents dashboards")
            .type(dash_m.DashboardLinkType.DASHBOARDS)
            .tags(["pygents"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for row_title, panels in rows:
        # An expanded row: its panels follow it at the top level (Grafana nests panels in a
        # row only while the row is collapsed).
        board = board.with_row(dash_b.Row(row_title).collapsed(False))
        for spec in panels:
            board = board.with_panel(_panel(spec))
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    data["annotations"] = {"list": []}
    # Panel ids: stable, unique, in reading order (Grafana needs them for links and repeats).
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    return data


def render() -> dict[str, str]:
    """Return ``{file name: JSON text}`` for every dashboard."""
    return {
        f"{uid}.json": json.dumps(build(uid, title, desc, *rest), indent=2, ensure_ascii=False)
        + "\n"
        for uid, title, desc, *rest in DASHBOARDS
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report the ones that are out of date."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file is out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT_DIR / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run: python dashboards/generate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
