"""`promtool check config` on deploy/prometheus.yml and `promtool check metrics` on the
exposition of a real pygents run (timeouts, errors, evictions, pause/resume)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    PROMETHEUS_CONFIG,
    ROOT,
    SCRAPE_PROTOCOLS_SINCE,
    contract,
    find_executable,
    load_yaml,
    missing,
    prometheus_version,
)
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from pygents import (
    Agent,
    ContextItem,
    ContextPool,
    ContextQueue,
    Turn,
    TurnTimeoutError,
    current_agent,
    tool,
)
from pygents.observability import instrument, uninstrument

#: Every scrape protocol name Prometheus (v2.49 .. v3) accepts in `scrape_protocols`.
SCRAPE_PROTOCOLS = {
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusProto",
}
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = find_executable("promtool")
    if binary is None:
        missing("promtool is not installed (apt-get install prometheus)")
    assert binary is not None
    return binary


def run_promtool(promtool: str, *args: str, stdin: str | None = None) -> Any:
    return subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


# --------------------------------------------------------------------------- check config


def checkable_config(promtool: str, tmp_path: Path) -> Path:
    """The config as this promtool can check it.

    `scrape_protocols` exists from Prometheus 2.49 on; the stack runs v3. An older promtool
    (Debian bookworm ships 2.42) checks a copy without that one key, which is checked here
    instead: known protocol names, OpenMetrics first.
    """
    if prometheus_version(promtool) >= SCRAPE_PROTOCOLS_SINCE:
        return PROMETHEUS_CONFIG
    config = load_yaml(PROMETHEUS_CONFIG)
    for job in config["scrape_configs"]:
        protocols = job.pop("scrape_protocols", None)
        if protocols is not None:
            assert set(protocols) <= SCRAPE_PROTOCOLS, protocols
            assert len(set(protocols)) == len(protocols), protocols
    copy = tmp_path / "prometheus.yml"
    with copy.open("w", encoding="utf-8") as out:
        YAML(typ="safe", pure=True).dump(config, out)
    return copy


def test_promtool_check_config(promtool: str, tmp_path: Path) -> None:
    result = run_promtool(promtool, "check", "config", str(checkable_config(promtool, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_check_config_can_fail(promtool: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        PROMETHEUS_CONFIG.read_text(encoding="utf-8").replace(
            "scrape_interval: 5s", "scrape_interval: 5 seconds"
        ),
        encoding="utf-8",
    )
    result = run_promtool(promtool, "check", "config", str(bad))
    assert result.returncode != 0


# --------------------------------------------------------------------------- check metrics


class Flaky(RuntimeError):
    pass


async def workload() -> None:
    """A small agent run touching every metric: timeouts, errors, evictions, pause/resume."""

    @tool()
    async def fetch(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield ContextItem(content=f"line {i}")  # context queue, limit 2: evictions
            yield ContextItem(content=i, id=f"page-{i}", description=f"page {i}")  # pool: evicts

    @tool()
    async def tidy(pool: ContextPool) -> int:
        if "page-2" in pool:
            await pool.remove("page-2")
        return len(pool)

    @tool()
    async def checkpoint() -> str:
        agent = current_agent()
        assert agent is not None
        agent.pause()
        asyncio.get_running_loop().call_soon(agent.resume)
        return "ok"

    @tool()
    async def hang() -> None:
        await asyncio.sleep(5)

    @tool()
    async def flaky() -> None:
        raise Flaky("503")

    agent = Agent(
        "exposition",
        "promtool workload",
        [fetch, tidy, checkpoint, hang, flaky],
        context_queue=ContextQueue(limit=2),
        context_pool=ContextPool(limit=2),
    )
    for turn in (
        Turn(fetch, args=[4]),
        Turn(tidy),
        Turn(checkpoint),
        Turn(hang, timeout=0.01),
        Turn(flaky),
        Turn(fetch, args=[1]),
    ):
        await agent.put(turn)
    for expected in (TurnTimeoutError, Flaky):
        with pytest.raises(expected):
            async for _ in agent.run():
                pass
    async for _ in agent.run():
        pass
    assert await Turn(tidy, kwargs={"pool": ContextPool(limit=1)}).returning() == 0


@pytest.fixture
def exposition() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    tracer_provider = TracerProvider()  # a recording provider: exemplars carry trace ids
    assert instrument(
        tracer_provider=tracer_provider,
        meter_provider=NoOpMeterProvider(),  # this test reads the Prometheus side only
        prometheus_registry=registry,
    )
    try:
        asyncio.run(workload())
        yield registry
    finally:
        uninstrument()
        tracer_provider.shutdown()


def test_promtool_check_metrics_on_a_real_run(promtool: str, exposition: CollectorRegistry) -> None:
    text = generate_latest(exposition).decode()
    for name in contract():  # the run produced every metric, so the lint sees them all
        family = name.removesuffix("_total")
        assert re.search(rf"^{family}(_total|_bucket|_sum|_count)?{{", text, re.M), name
    result = run_promtool(promtool, "check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )


def test_promtool_check_metrics_can_fail(promtool: str) -> None:
    bad = "# HELP pygents_turns counted\n# TYPE pygents_turns counter\npygents_turns 1\n"
    result = run_promtool(promtool, "check", "metrics", stdin=bad)
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_openmetrics_exposition_parses_with_trace_id_exemplars(
    exposition: CollectorRegistry,
) -> None:
    text = generate_openmetrics(exposition).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {name.removesuffix("_total") for name in contract()} <= set(families)
    exemplars = [
        sample.exemplar
        for name in ("pygents_turn_duration_seconds", "pygents_tool_duration_seconds")
        for sample in families[name].samples
        if sample.exemplar is not None
    ]
    assert exemplars
    for exemplar in exemplars:
        # Grafana's exemplarTraceIdDestinations names this label (see test_compose.py).
        assert set(exemplar.labels) == {"trace_id"}
        assert HEX32.fullmatch(exemplar.labels["trace_id"]), exemplar


def test_the_without_docker_steps_give_a_config_this_promtool_accepts(
    promtool: str, tmp_path: Path
) -> None:
    """docs/dashboards.md's "Without Docker" steps write a Prometheus config for local binaries
    (Debian's 2.42 among them): it must pass `promtool check config` as written."""
    docs = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    section = docs[docs.index("### Without Docker") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block under Without Docker"
    heredoc = re.search(r"cat > (\S+) <<'(\w+)'\n(.*?)\n\2\n", block.group(1), re.S)
    assert heredoc, "the steps no longer write the config with a heredoc"
    name, _marker, text = heredoc.groups()
    assert f"--config.file={name}" in block.group(1)
    assert "--enable-feature=exemplar-storage" in block.group(1)
    config = tmp_path / name
    config.write_text(text + "\n", encoding="utf-8")
    result = run_promtool(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    targets = load_yaml(config)["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9464"]  # where `pygents demo --metrics-port 9464` serves
