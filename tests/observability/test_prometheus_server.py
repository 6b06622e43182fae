"""Real Prometheus: a real server scrapes a running pygents workload's ``/metrics``.

Needs the ``prometheus`` binary (``.ci/run`` installs Debian's package). Without it the test is
skipped locally, but fails in CI (``CI=true``): there it must run.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from loopback import free_port
from pygents import Agent, Turn, tool
from pygents.observability import configure, is_instrumented

AGENT = "prom-agent"
TOOL = "lookup"
SCRAPE_INTERVAL = 1  # seconds
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

# Loopback only, never through a proxy.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.access("/usr/bin/prometheus", os.X_OK):
        return "/usr/bin/prometheus"
    return None


def prometheus_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=20, check=False
    )
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    assert match, f"cannot read the Prometheus version from: {out.stdout!r} {out.stderr!r}"
    return tuple(int(part) for part in match.groups())


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _http.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:  # close the response it holds: no leaked socket while polling
            return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def poll(what: str, attempt: Callable[[], Any], timeout: float, log: Path | None = None) -> Any:
    """Call ``attempt`` until it returns something truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = attempt()
        if last:
            return last
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\nPrometheus log (tail):\n" + "\n".join(log.read_text().splitlines()[-30:])
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r}){tail}")


# --------------------------------------------------------------------------- the workload


@dataclass
class Workload:
    """An agent running batches of turns in a background thread until stopped."""

    stop: threading.Event = field(default_factory=threading.Event)
    turns_done: int = 0
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._main, name="pygents-workload", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:
            self.error = exc

    async def _loop(self) -> None:
        @tool()
        async def lookup(key: int) -> int:
            """Look a key up (takes a couple of milliseconds)."""
            await asyncio.sleep(0.002)
            return key

        agent = Agent(AGENT, "keeps Prometheus busy", [lookup])
        while not self.stop.is_set():
            for i in range(10):
                await agent.put(Turn(TOOL, kwargs={"key": i}))
            async for _turn, _value in agent.run():
                self.turns_done += 1
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "the workload did not stop"


@pytest.fixture
def workload(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Workload, int]]:
    for name in list(os.environ):
        if name.startswith("OTEL_EXPORTER_OTLP"):
            monkeypatch.delenv(name)
    handle = configure(
        service_name="prom-test",
        set_global=False,
        prometheus_port=0,
        prometheus_registry=CollectorRegistry(),  # /metrics serves this registry
    )
    load = Workload()
    try:
        assert is_instrumented()
        port = handle.metrics_port
        assert port is not None
        load.start()
        yield load, port
    finally:
        load.close()
        handle.shutdown(timeout=3)
    assert load.error is None, f"the workload failed: {load.error!r}"


# --------------------------------------------------------------------------- Prometheus


@dataclass
class Prometheus:
    url: str
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert status == 200, f"query {promql!r}: HTTP {status}: {body[:300]!r}"
        data = json.loads(body)
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def exemplars(self, promql: str) -> list[dict[str, Any]]:
        now = time.time()
        params = {"query": promql, "start": f"{now - 600:.3f}", "end": f"{now + 60:.3f}"}
        status, body = get(f"{self.url}/api/v1/query_exemplars?" + urllib.parse.urlencode(params))
        assert status == 200, f"exemplars {promql!r}: HTTP {status}: {body[:300]!r}"
        data = json.loads(body)
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"] or []
        return result


@pytest.fixture
def prometheus_bin() -> str:
    binary = prometheus_binary()
    if binary is None:
        message = "the prometheus binary is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}; this test must run in CI")
        pytest.skip(message)
    return binary


@pytest.fixture
def prometheus(
    prometheus_bin: str, workload: tuple[Workload, int], tmp_path: Path
) -> Iterator[Prometheus]:
    _load, target_port = workload
    protocols = ""
    if prometheus_version(prometheus_bin) >= (2, 49, 0):  # older versions reject the key
        protocols = "    scrape_protocols: [OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL}s\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL}s\n"
        "scrape_configs:\n"
        "  - job_name: pygents\n"
        f"    scrape_interval: {SCRAPE_INTERVAL}s\n"
        f"    scrape_timeout: {SCRAPE_INTERVAL}s\n"
        f"{protocols}"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    storage = tmp_path / "tsdb"
    storage.mkdir()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
                "--log.level=info",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
        )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", log)

        def ready() -> bool:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text().splitlines()[-30:])
                pytest.fail(f"prometheus exited with {proc.returncode}:\n{tail}")
            return get(f"{server.url}/-/ready", timeout=1)[0] == 200

        poll("Prometheus /-/ready", ready, timeout=20, log=log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(90)
def test_prometheus_scrapes_pygents_metrics_with_exemplars(
    prometheus: Prometheus, workload: tuple[Workload, int]
) -> None:
    load, _port = workload
    log = prometheus.log

    series = poll(
        "pygents_turns_total series",
        lambda: prometheus.query("pygents_turns_total"),
        timeout=30,
        log=log,
    )
    for s in series:
        labels = s["metric"]
        assert labels["__name__"] == "pygents_turns_total"
        assert labels["job"] == "pygents"
        assert (labels["agent"], labels["tool"], labels["stop_reason"]) == (
            AGENT,
            TOOL,
            "completed",
        ), labels

    (total,) = prometheus.query("sum(pygents_turns_total)")
    assert float(total["value"][1]) > 0
    (by_labels,) = prometheus.query(
        f'sum by (agent, tool) (pygents_turns_total{{agent="{AGENT}", tool="{TOOL}"}})'
    )
    assert by_labels["metric"] == {"agent": AGENT, "tool": TOOL}
    assert 0 < float(by_labels["value"][1]) <= load.turns_done

    quantile = (
        "histogram_quantile(0.95, sum by (le) (rate(pygents_turn_duration_seconds_bucket[30s])))"
    )

    def finite_quantile() -> float | None:
        result = prometheus.query(quantile)
        if len(result) != 1:
            return None
        value = float(result[0]["value"][1])
        return value if math.isfinite(value) else None

    p95 = poll("a finite p95 turn duration", finite_quantile, timeout=30, log=log)
    # the tool sleeps 2 ms: the p95 lies within the pygents buckets, well below 10 s
    assert 0.001 <= p95 <= 10.0, p95

    # buckets are the pygents ones (1 ms .. 10 min), not prometheus_client's defaults
    les = {
        s["metric"]["le"]
        for s in prometheus.query(f'pygents_turn_duration_seconds_bucket{{agent="{AGENT}"}}')
    }
    assert {"0.001", "600.0", "+Inf"} <= les, sorted(les)

    exemplar_sets = poll(
        "exemplars on pygents_turn_duration_seconds_bucket",
        lambda: prometheus.exemplars(f'pygents_turn_duration_seconds_bucket{{agent="{AGENT}"}}'),
        timeout=20,
        log=log,
    )
    exemplars = [e for s in exemplar_sets for e in s.get("exemplars", [])]
    assert exemplars, exemplar_sets
    for exemplar in exemplars:
        trace_id = exemplar["labels"].get("trace_id", "")
        assert TRACE_ID.match(trace_id), exemplar
        assert trace_id != "0" * 32, exemplar
    assert all(s["seriesLabels"]["agent"] == AGENT for s in exemplar_sets)
