"""Helpers for the dashboard, compose and Prometheus tests: load the committed files, substitute
Grafana macros, lint PromQL against the telemetry contract, find and start external tools.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import promql_parser
import pytest
from ruamel.yaml import YAML

from pygents.observability._semconv import DURATION_BUCKETS, METRICS
from pygents.redis._telemetry import METRICS as REDIS_METRICS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DASHBOARD_JSON = DASHBOARDS / "json"
PROVISIONING = DASHBOARDS / "provisioning"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
DOCKERFILE = ROOT / "Dockerfile"

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")

#: Values the tests give Grafana's built-in macros.
MACROS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def missing(what: str) -> None:
    """A tool the test needs is not installed: fail in CI (it must run there), else skip."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: this test must run, not skip)")
    pytest.skip(what)


# --------------------------------------------------------------------------- files


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into plain dicts and lists."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def load_generator() -> ModuleType:
    """Import dashboards/generate.py (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "pygents_dashboards_generate", DASHBOARDS / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_JSON.glob("*.json"))


def load_dashboards() -> dict[str, dict[str, Any]]:
    """``{file name: dashboard}`` for every committed dashboard."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in dashboard_files()}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that queries data (rows excluded, panels of collapsed rows included)."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(panel, target)`` for every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


# --------------------------------------------------------------------------- macros


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """What each dashboard variable stands for in a test: "All" for multi-value query
    variables (their ``allValue``), the current value of the others."""
    values = dict(MACROS)
    for name, var in variables(dashboard).items():
        if var["type"] == "datasource":
            continue
        if var.get("includeAll") and var.get("allValue"):
            values[name] = var["allValue"]
        else:
            current = var.get("current", {}).get("value")
            assert isinstance(current, str), f"variable {name!r} has no current value"
            values[name] = current
    return values


_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` (macros and dashboard variables) in a query."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


# --------------------------------------------------------------------------- the contract


def contract() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{metric family: (type, labels)}`` from _semconv.METRICS (every instrumented process)."""
    return {name: (kind, labels) for name, kind, labels, *_ in METRICS}


def redis_contract() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{metric family: (type, labels)}`` of pygents.redis (processes running a RedisWorker)."""
    return {prom: (kind, labels) for _otel, _unit, prom, kind, labels, _help in REDIS_METRICS}


def dashboard_contract() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every metric family a dashboard may query: pygents.observability's and pygents.redis'."""
    return {**contract(), **redis_contract()}


def series_names() -> dict[str, tuple[str, frozenset[str]]]:
    """Every series name a query may select, with its family and its label names.

    Counters and gauges: the family name itself (counters already end in ``_total``);
    histograms: ``_bucket`` (plus ``le``), ``_sum`` and ``_count``.
    """
    names: dict[str, tuple[str, frozenset[str]]] = {}
    for family, (kind, labels) in dashboard_contract().items():
        base = frozenset(labels) | TARGET_LABELS
        if kind == "histogram":
            names[f"{family}_bucket"] = (family, base | {"le"})
            names[f"{family}_sum"] = (family, base)
            names[f"{family}_count"] = (family, base)
        else:
            names[family] = (family, base)
    return names


def bucket_label(bound: float) -> str:
    """The ``le`` label value pygents' exposition writes for a bucket bound."""
    return repr(float(bound))


BUCKET_LABELS = frozenset(bucket_label(b) for b in DURATION_BUCKETS) | {"+Inf"}


def _selectors(ast: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(ast, visit)
    return found


def _groupings(ast: Any) -> list[str]:
    labels: list[str] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.extend(node.modifier.labels)
        return True

    promql_parser.walk(ast, visit)
    return labels


def _ranges(ast: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.MatrixSelector):
            found.append(node.range)
        return True

    promql_parser.walk(ast, visit)
    return found


def lint_expression(raw: str, values: dict[str, str]) -> tuple[list[str], set[str]]:
    """Check one panel query; return ``(problems, metric families it selects)``."""
    # Ranges come from Grafana's macros, never a literal window that ignores the scrape interval.
    problems = [
        f"range [{window}] is not [$__rate_interval] or [$__range]"
        for window in re.findall(r"\[([^\]]*)\]", raw)
        if window not in ("$__rate_interval", "$__range")
    ]
    try:
        expr = substitute(raw, values)
    except KeyError as exc:
        return [*problems, str(exc)], set()
    try:
        ast = promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        return [*problems, f"does not parse: {exc} in {expr!r}"], set()
    known = series_names()
    families: set[str] = set()
    used_labels: set[str] = set()
    for selector in _selectors(ast):
        name = selector.name
        if name is None:
            problems.append(f"a selector without a metric name: {selector}")
            continue
        if name not in known:
            problems.append(f"{name!r} is not a metric of the telemetry contract")
            continue
        family, labels = known[name]
        families.add(family)
        used_labels |= labels
        for matcher in selector.matchers.matchers:
            if matcher.name == "__name__":
                continue
            if matcher.name not in labels:
                problems.append(f"{name} has no label {matcher.name!r}")
            if matcher.name == "le" and matcher.value not in BUCKET_LABELS:
                problems.append(f"{name}: le={matcher.value!r} is not a bucket bound")
    problems += [
        f"grouping by {label!r}, a label none of its metrics has"
        for label in _groupings(ast)
        if label not in used_labels
    ]
    if not _ranges(ast) and re.search(r"\b(rate|increase|irate)\(", expr):
        problems.append("a rate without a range")
    return problems, families


# --------------------------------------------------------------------------- processes


def find_executable(name: str) -> str | None:
    return shutil.which(name) or (
        f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
    )


def prometheus_version(binary: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    assert match, f"cannot read the version of {binary}: {out.stdout!r}"
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


#: ``scrape_protocols`` (scrape-format negotiation) exists from Prometheus 2.49 on.
SCRAPE_PROTOCOLS_SINCE = (2, 49, 0)


class HTTPStatusError(OSError):
    """An HTTP error status, with the response already closed (no leaked socket)."""


def _read(request: urllib.request.Request | str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        # An HTTPError holds the open response; close it here, or polling a server that is
        # still starting (503) leaks a socket per attempt.
        with exc:
            raise HTTPStatusError(f"HTTP {exc.code} from {exc.url}") from None


def http_get_json(url: str, params: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    return json.loads(_read(url, timeout).decode())


def http_get_text(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> str:
    return _read(urllib.request.Request(url, headers=headers or {}), timeout).decode()


def stop(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Terminate a process this test started, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


@contextlib.contextmanager
def started(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run a process for the duration of a ``with`` block, output to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        try:
            yield process
        finally:
            stop(process)


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    interval: float = 0.25,
    what: str = "",
    details: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s
    (with ``details()``, such as the processes' logs, in the message)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except OSError as exc:  # connection refused while the server starts, and the like
            last_error = exc
            result = None
        if result:
            return result
        time.sleep(interval)
    more = f"\n{details()}" if details is not None else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what or condition}: {last_error}{more}")
