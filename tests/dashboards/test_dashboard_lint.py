"""Lint of the committed Grafana dashboards (dashboards/json/): generated and up to date, valid,
uniquely identified, on the datasource variable, and every PromQL expression parses and names
only metrics and labels of the telemetry contract."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from dashboard_support import (
    BUCKET_LABELS,
    DASHBOARD_JSON,
    ROOT,
    TARGET_LABELS,
    dashboard_contract,
    dashboard_files,
    lint_expression,
    load_dashboards,
    load_generator,
    panels,
    queries,
    substitute,
    variable_values,
    variables,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

#: What issue 5 asks each dashboard to show: (dashboard uid, words a panel title must contain).
REQUIRED_PANELS = {
    "pygents-agent-runs": [
        ("turns/s", "stop reason"),
        ("timeout", "error", "ratio"),
        ("queue depth",),
        ("time in queue",),
        ("errors", "error type"),
        ("busy",),
        ("context queue", "evictions", "items"),
        ("context pool", "items", "evictions"),
        ("agent", "stop reason"),
    ],
    "pygents-turn-tool-latency": [
        ("p50", "p95", "p99"),
        ("heatmap",),
        ("p95 by agent",),
        ("tool p95",),
        ("tool calls/s",),
        ("timeout", "tool"),
        ("per-tool summary",),
        ("slo",),
    ],
    # Issue 13: the service on Redis.
    "pygents-redis-workers": [
        ("queue depth", "agent"),
        ("leases held",),
        ("takeovers",),
        ("redeliveries",),
        ("dead letters",),
    ],
}


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    loaded = load_dashboards()
    assert loaded, f"no dashboards in {DASHBOARD_JSON}"
    return loaded


def by_uid(dashboards: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in dashboards.values()}


# --------------------------------------------------------------------------- generated


def test_committed_json_is_what_the_generator_produces() -> None:
    generator = load_generator()
    rendered = generator.render()
    committed = {path.name: path.read_text(encoding="utf-8") for path in dashboard_files()}
    assert sorted(committed) == sorted(rendered), "dashboards/json/ has extra or missing files"
    stale = [name for name, text in rendered.items() if committed[name] != text]
    assert not stale, f"out of date: {stale}; run `python dashboards/generate.py`"
    assert generator.main(["--check"]) == 0


def test_the_check_mode_reports_a_stale_file(tmp_path: Any, monkeypatch: Any) -> None:
    generator = load_generator()
    for name, text in generator.render().items():
        (tmp_path / name).write_text(text.replace("Queue depth", "Queue dpth"), encoding="utf-8")
    monkeypatch.setattr(generator, "OUT_DIR", tmp_path)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0  # rewrites the stale file
    assert generator.main(["--check"]) == 0


def test_the_generator_pins_a_grafana_11_flavour_of_the_sdk() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pin = re.search(r'"grafana-foundation-sdk==(\d+)!(\d+)\.(\d+)\.(\d+)"', text)
    assert pin, "pyproject's dev extra must pin grafana-foundation-sdk (epoch!version)"
    assert int(pin.group(2)) >= 11


# --------------------------------------------------------------------------- structure


def test_valid_json_with_unique_uids_and_panel_ids(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d.get("uid") for d in dashboards.values()]
    assert all(uids) and len(set(uids)) == len(uids), uids
    for name, dashboard in dashboards.items():
        json.dumps(dashboard)  # round-trips
        assert dashboard.get("title"), name
        assert dashboard["schemaVersion"] >= 39, f"{name}: not a Grafana 11 dashboard"
        ids = [p["id"] for p in dashboard["panels"]] + [
            sub["id"] for p in dashboard["panels"] for sub in p.get("panels", [])
        ]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        titles = [p["title"] for p in panels(dashboard)]
        assert len(set(titles)) == len(titles), f"{name}: duplicate panel titles"


def test_every_issue_panel_is_present(dashboards: dict[str, dict[str, Any]]) -> None:
    boards = by_uid(dashboards)
    assert set(REQUIRED_PANELS) <= set(boards)
    for uid, wanted in REQUIRED_PANELS.items():
        titles = [p["title"].lower() for p in panels(boards[uid])]
        for words in wanted:
            assert any(all(w in t for w in words) for t in titles), (uid, words, titles)


def test_panels_fit_the_grid_without_overlap(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        cells: dict[tuple[int, int], str] = {}
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps {cells[x, y]}"
                    cells[x, y] = panel["title"]


def test_datasource_variable_is_used_by_every_panel_and_target(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        var = variables(dashboard).get("datasource")
        assert var is not None, f"{name}: no `datasource` variable"
        assert var["type"] == "datasource" and var["query"] == "prometheus", var
        for panel in panels(dashboard):
            assert panel.get("datasource") == DATASOURCE_REF, (name, panel["title"])
            assert panel.get("targets"), (name, panel["title"], "no queries")
            for target in panel["targets"]:
                assert target.get("datasource") == DATASOURCE_REF, (name, panel["title"])
        for var in variables(dashboard).values():
            if var["type"] == "query":
                assert var.get("datasource") == DATASOURCE_REF, (name, var["name"])


def hard_coded_datasources(node: Any, path: str = "") -> list[str]:
    """Every ``datasource`` reference anywhere in the JSON that is not the variable."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value not in (DATASOURCE_REF, None):
                found.append(f"{path}.{key}={value!r}")
            found += hard_coded_datasources(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += hard_coded_datasources(value, f"{path}[{i}]")
    return found


def test_no_hard_coded_datasource_anywhere(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        assert hard_coded_datasources(dashboard) == [], name
        assert '"uid": "prometheus"' not in json.dumps(dashboard), name
        assert '"uid": "jaeger"' not in json.dumps(dashboard), name


def test_the_hard_coded_datasource_check_can_fail() -> None:
    bad = {"panels": [{"targets": [{"datasource": {"type": "prometheus", "uid": "abc"}}]}]}
    assert hard_coded_datasources(bad) == [
        ".panels[0].targets[0].datasource={'type': 'prometheus', 'uid': 'abc'}"
    ]


_LABEL_VALUES = re.compile(r"label_values\((\w+)(\{[^}]*\})?, (\w+)\)")


def test_target_agent_and_tool_variables_come_from_label_values(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        found = variables(dashboard)
        assert [v for v in found if v != "datasource"][:2] == ["job", "instance"], name
        for var_name in ("job", "instance", "agent", "tool"):
            var = found.get(var_name)
            if var is None and var_name in ("agent", "tool"):
                continue  # none of the dashboard's metrics has the label (Redis workers: tool)
            assert var is not None, f"{name}: no {var_name} variable"
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = _LABEL_VALUES.fullmatch(query)
            assert match and match.group(3) == var_name, query
            labels = set(dashboard_contract()[match.group(1)][1]) | TARGET_LABELS
            assert var_name in labels, query
            assert var["includeAll"] and var["allValue"] == ".*", var
        # The instance list follows the chosen jobs; agents and tools follow both.
        for var_name, wanted in (
            ("instance", ('job=~"$job"',)),
            ("agent", ('job=~"$job"', 'instance=~"$instance"')),
            ("tool", ('job=~"$job"', 'instance=~"$instance"')),
        ):
            if var_name not in found:
                continue
            query = found[var_name]["query"]["query"]
            assert all(w in query for w in wanted), (name, var_name, query)


def test_every_variable_is_used(dashboards: dict[str, dict[str, Any]]) -> None:
    """A variable no query reads is a control that does nothing (e.g. an slo picker on a
    dashboard without the SLO panel)."""
    for name, dashboard in dashboards.items():
        texts = [t["expr"] for _, t in queries(dashboard)] + [
            v["query"]["query"] if isinstance(v["query"], dict) else str(v["query"])
            for v in variables(dashboard).values()
        ]
        for var_name, var in variables(dashboard).items():
            if var["type"] == "datasource":
                continue
            pattern = re.compile(rf"\$(\{{)?{var_name}\b")
            assert any(pattern.search(t) for t in texts), f"{name}: ${var_name} is unused"


def test_every_selector_is_filtered_by_job_and_instance(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    """Several processes are never silently summed: every series a panel selects is narrowed
    to the chosen jobs and instances."""
    for name, dashboard in dashboards.items():
        for panel, target in queries(dashboard):
            for selector in re.findall(r"pygents_\w+(\{[^}]*\}|\b)", target["expr"]):
                assert 'job=~"$job"' in selector, (name, panel["title"], target["expr"])
                assert 'instance=~"$instance"' in selector, (name, panel["title"])


def test_slo_choices_are_bucket_bounds(dashboards: dict[str, dict[str, Any]]) -> None:
    for dashboard in dashboards.values():
        slo = variables(dashboard).get("slo")
        if slo is None:
            continue
        choices = slo["query"].split(",")
        assert set(choices) <= BUCKET_LABELS, choices
        assert slo["current"]["value"] in choices


# --------------------------------------------------------------------------- queries


def test_every_expression_parses_and_names_only_contract_metrics(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    problems = []
    for name, dashboard in dashboards.items():
        values = variable_values(dashboard)
        for panel, target in queries(dashboard):
            found, families = lint_expression(target["expr"], values)
            problems += [f"{name} / {panel['title']} / {target['refId']}: {p}" for p in found]
            if not families:
                problems.append(f"{name} / {panel['title']}: selects no pygents metric")
    assert problems == []


def test_rates_use_the_rate_interval_macro(dashboards: dict[str, dict[str, Any]]) -> None:
    for dashboard in dashboards.values():
        for panel, target in queries(dashboard):
            expr = target["expr"]
            if target.get("instant"):
                continue  # summary tables cover the dashboard's time range: [$__range]
            for window in re.findall(r"\[([^\]]*)\]", expr):
                assert window == "$__rate_interval", (panel["title"], expr)


def test_every_contract_metric_is_on_a_dashboard(dashboards: dict[str, dict[str, Any]]) -> None:
    shown: set[str] = set()
    for dashboard in dashboards.values():
        values = variable_values(dashboard)
        for _, target in queries(dashboard):
            shown |= lint_expression(target["expr"], values)[1]
    assert shown == set(dashboard_contract())


def test_latency_panels_have_exemplars_on(dashboards: dict[str, dict[str, Any]]) -> None:
    latency_panels = 0
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            exprs = [t["expr"] for t in panel["targets"]]
            is_latency = panel["type"] in ("timeseries", "heatmap") and any(
                "_duration_seconds_bucket" in e for e in exprs
            )
            if is_latency:
                latency_panels += 1
                assert any(t.get("exemplar") for t in panel["targets"]), panel["title"]
    assert latency_panels >= 4


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('sum(rate(pygents_turns_totl{agent=~"$agent"}[$__rate_interval]))', "not a metric"),
        ("sum(rate(pygents_turns_total[5m]))", "range [5m]"),
        ("sum(rate(pygents_turns_total[$__rate_interval])", "does not parse"),
        ('sum(rate(pygents_tool_invocations_total{agent=~"$agent"}[$__rate_interval]))', "label"),
        (
            "sum by (agent) (rate(pygents_tool_duration_seconds_count[$__rate_interval]))",
            "grouping",
        ),
        ('pygents_turn_duration_seconds_bucket{le="0.3"}', "bucket bound"),
        ("sum(rate(pygents_turns_total[$__rate_interval])) / $nope", "unknown variable"),
        ("pygents_turn_duration_seconds", "not a metric"),  # a histogram family, no suffix
    ],
)
def test_the_expression_lint_can_fail(expr: str, problem: str) -> None:
    values = {"__rate_interval": "1m", "agent": ".*"}
    problems, _ = lint_expression(expr, values)
    assert any(problem in p for p in problems), problems


def test_substitution_of_macros_and_variables() -> None:
    values = {"__rate_interval": "1m", "agent": ".*", "slo": "1.0"}
    assert (
        substitute('rate(x{agent=~"$agent", le="${slo}"}[$__rate_interval])', values)
        == 'rate(x{agent=~".*", le="1.0"}[1m])'
    )


# --------------------------------------------------------------------------- docs


def test_docs_describe_every_panel_and_variable(dashboards: dict[str, dict[str, Any]]) -> None:
    docs = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in docs.splitlines() if line.startswith("| ")}
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            assert panel["title"] in rows, f"docs/dashboards.md has no row for {panel['title']!r}"
        for name in variables(dashboard):
            assert f"`{name}`" in rows, f"docs/dashboards.md does not describe ${name}"


def test_docs_name_the_pinned_images() -> None:
    docs = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    images = re.findall(r"^\s+image:\s+(\S+/\S+:\S+)$", compose, re.M)
    images += re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert len(images) >= 4
    for image in images:
        assert f"`{image}`" in docs, f"docs/dashboards.md does not name {image}"
