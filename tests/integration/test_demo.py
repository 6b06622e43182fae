"""``pygents demo`` end to end, in subprocesses: what it serves while it runs, how it ends.

- While a 6 s run is going, ``/metrics`` (Prometheus text and OpenMetrics) has samples for every
  metric of the telemetry contract, the failure and eviction counters are not zero, and the
  OpenMetrics exposition carries trace-id exemplars.
- ``--turns N --seed S`` twice gives the same per-agent turns, timeouts and errors.
- SIGINT / SIGTERM stop it cleanly (130 / 143), with the summary printed and the spans flushed
  to an OTLP receiver.
- ``--help`` works, and a missing telemetry extra gives a clear message and exit code 2.
"""

from __future__ import annotations

import gzip
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from loopback import free_port
from pygents.observability._semconv import METRICS

DEFAULT_AGENTS = [
    "planner-1",
    "fetcher-1",
    "fetcher-2",
    "fetcher-3",
    "writer-1",
    "writer-2",
    "supervisor",
]
MUST_BE_NONZERO = (
    "pygents_turn_timeouts_total",
    "pygents_turn_errors_total",
    "pygents_context_queue_evictions_total",
    "pygents_context_pool_evictions_total",
    "pygents_turn_values_total",
)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
ROW = re.compile(
    r"^(?P<agent>[a-z]+(?:-\d+)?)\s+(?P<turns>\d+)\s+(?P<p50>[\d.]+|-)\s+(?P<p95>[\d.]+|-)"
    r"\s+(?P<timeouts>\d+)\s+(?P<errors>\d+)\s+(?P<cq>\d+)\s+(?P<pool>\d+)$",
    re.MULTILINE,
)
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Loopback only, never through a proxy.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def demo_env(**extra: str) -> dict[str, str]:
    """The test's environment without telemetry switches or OTLP settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "PYGENTS_TELEMETRY"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Demo:
    """``python -m pygents demo ...`` in a subprocess, its output collected as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pygents", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else demo_env(),
        )
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:  # one by one, so that other threads see each line as it comes
            into.append(line)  # noqa: PERF402

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.stdout)
            if match:
                return match
            if not self.running():
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"no {pattern!r} in the output\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}")

    def finish(self, timeout: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the demo did not exit\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}")
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        """Kill it if it still runs, and close its pipes."""
        self.kill()
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    """Demos started by a test; any still running at the end are killed."""
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.close()


def summary(stdout: str) -> dict[str, dict[str, str]]:
    """The summary table's rows, by agent (and "total")."""
    return {m["agent"]: m.groupdict() for m in ROW.finditer(stdout)}


def counts(rows: dict[str, dict[str, str]]) -> dict[str, tuple[int, int, int]]:
    return {
        agent: (int(row["turns"]), int(row["timeouts"]), int(row["errors"]))
        for agent, row in rows.items()
    }


# --------------------------------------------------------------------------- scraping


def scrape(port: int, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with _http.open(request, timeout=5) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


def samples_by_name(families: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in families:
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def contract_problems(samples: dict[str, list[Any]], exposition: str) -> list[str]:
    """What the exposition lacks: a metric of the contract without samples, a zero counter."""
    problems = []
    for name, kind, *_ in METRICS:
        wanted = f"{name}_count" if kind == "histogram" else name
        if not samples.get(wanted):
            problems.append(f"{exposition}: no samples of {name}")
    problems += [
        f"{exposition}: {name} is still 0"
        for name in MUST_BE_NONZERO
        if sum(s.value for s in samples.get(name, [])) <= 0
    ]
    agents = {s.labels["agent"] for s in samples.get("pygents_turns_total", [])}
    if missing := set(DEFAULT_AGENTS) - agents:
        problems.append(f"{exposition}: no turns yet for {sorted(missing)}")
    return problems


def exemplar_trace_ids(samples: dict[str, list[Any]]) -> set[str]:
    return {
        s.exemplar.labels.get("trace_id", "")
        for name in ("pygents_turn_duration_seconds_bucket", "pygents_tool_duration_seconds_bucket")
        for s in samples.get(name, [])
        if s.exemplar is not None
    }


def check_metrics(port: int) -> list[str]:
    """Scrape both formats; return what is still missing (empty when all is there)."""
    text_type, text = scrape(port)
    om_type, om = scrape(port, accept=OPENMETRICS)
    problems = []
    if not text_type.startswith("text/plain"):
        problems.append(f"text exposition served as {text_type!r}")
    if not om_type.startswith("application/openmetrics-text"):
        problems.append(f"OpenMetrics exposition served as {om_type!r}")
    problems += contract_problems(samples_by_name(parse_text(text)), "text")
    om_samples = samples_by_name(parse_openmetrics(om))
    problems += contract_problems(om_samples, "openmetrics")
    trace_ids = exemplar_trace_ids(om_samples)
    if not trace_ids:
        problems.append("openmetrics: no exemplar on the duration histograms")
    elif bad := {t for t in trace_ids if not TRACE_ID.match(t)}:
        problems.append(f"openmetrics: exemplar trace ids that are not 32 hex digits: {bad}")
    return problems


# --------------------------------------------------------------------------- the tests


def test_a_six_second_run_serves_every_metric_and_ends_with_a_summary(demos: list[Demo]) -> None:
    port = free_port()
    demo = Demo("--duration", "6", "--metrics-port", str(port), "--seed", "1")
    demos.append(demo)
    demo.wait_for(rf"metrics: http://127\.0\.0\.1:{port}/metrics")

    problems = ["never scraped"]
    while demo.running():
        try:
            problems = check_metrics(port)
        except OSError as exc:  # the demo ended between two scrapes
            problems.append(f"scrape failed: {exc!r}")
            break
        if not problems:
            break
        time.sleep(0.5)
    assert not problems, "\n".join(problems) + f"\nstderr:\n{demo.stderr}"

    assert demo.finish() == 0, demo.stderr
    assert "Traceback" not in demo.stderr, demo.stderr
    assert re.search(r"pygents demo finished in \d+\.\d s", demo.stdout), demo.stdout
    rows = summary(demo.stdout)
    assert list(rows) == [*DEFAULT_AGENTS, "total"], demo.stdout
    for agent in DEFAULT_AGENTS:
        assert int(rows[agent]["turns"]) > 0, demo.stdout
        assert rows[agent]["p50"] != "-" and rows[agent]["p95"] != "-", demo.stdout
        assert float(rows[agent]["p50"]) <= float(rows[agent]["p95"]), demo.stdout
    total = rows["total"]
    assert int(total["turns"]) == sum(int(rows[a]["turns"]) for a in DEFAULT_AGENTS)
    assert int(total["timeouts"]) > 0 and int(total["errors"]) > 0, demo.stdout
    assert int(total["cq"]) > 0 and int(total["pool"]) > 0, demo.stdout
    # Not a TTY: a plain progress line every few seconds.
    assert re.search(r"\d+ turns +[\d.]+ turns/s +\d+ timeouts +\d+ errors", demo.stderr)


def test_the_same_seed_runs_the_same_turns(demos: list[Demo]) -> None:
    args = ("--turns", "250", "--metrics-port", "0")
    runs = [Demo(*args, "--seed", "7"), Demo(*args, "--seed", "7"), Demo(*args, "--seed", "8")]
    demos.extend(runs)
    results = []
    for demo in runs:
        assert demo.finish(timeout=30) == 0, demo.stderr
        rows = summary(demo.stdout)
        assert list(rows) == [*DEFAULT_AGENTS, "total"], demo.stdout
        planned = re.search(r"planned turns: (\d+) \(--turns 250", demo.stdout)
        assert planned, demo.stdout
        # Whole questions: at least the budget, and exactly what was planned.
        assert int(rows["total"]["turns"]) == int(planned[1]) >= 250, demo.stdout
        results.append(counts(rows))
    same, other = results[:2], results[2]
    assert same[0] == same[1], f"seed 7 twice:\n{runs[0].stdout}\n{runs[1].stdout}"
    _, timeouts, errors = same[0]["total"]
    assert timeouts > 0 and errors > 0, "the comparison must cover failures"
    assert other != same[0], "another seed should give another run"


# --------------------------------------------------------------------------- stopping


class _OTLPHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.server.trace_requests.append(request)  # type: ignore[attr-defined]
            reply = ExportTraceServiceResponse().SerializeToString()
        else:
            reply = b""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OTLPHandler)
    server.trace_requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def span_names(server: http.server.ThreadingHTTPServer) -> list[tuple[str, str]]:
    """(service.name, span name) of every span received."""
    found = []
    for request in server.trace_requests:  # type: ignore[attr-defined]
        for resource_spans in request.resource_spans:
            service = next(
                (
                    kv.value.string_value
                    for kv in resource_spans.resource.attributes
                    if kv.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                found += [(service, span.name) for span in scope_spans.spans]
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_it_cleanly_with_summary_and_flushed_spans(
    demos: list[Demo], otlp: http.server.ThreadingHTTPServer, signum: int, code: int
) -> None:
    endpoint = f"http://127.0.0.1:{otlp.server_address[1]}"
    env = demo_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="60000",  # nothing is exported before the shutdown flush
    )
    demo = Demo("--metrics-port", "0", "--seed", "3", env=env)  # runs until stopped
    demos.append(demo)
    demo.wait_for(f"traces:  OTLP to {re.escape(endpoint)}")
    time.sleep(2.0)
    assert demo.running(), demo.stderr
    demo.proc.send_signal(signum)

    assert demo.finish(timeout=15) == code, demo.stderr
    assert "Traceback" not in demo.stderr, demo.stderr
    name = signal.Signals(signum).name
    assert re.search(rf"pygents demo interrupted by {name} after \d+\.\d s", demo.stdout)
    rows = summary(demo.stdout)
    assert list(rows) == [*DEFAULT_AGENTS, "total"], demo.stdout
    assert int(rows["total"]["turns"]) > 0, demo.stdout

    spans = span_names(otlp)
    assert spans, "no span reached the OTLP receiver: the shutdown did not flush them"
    assert {service for service, _ in spans} == {"pygents-demo"}
    names = {span for _, span in spans}
    # Agent run spans end only when the signal cancels the runs: they came with the flush.
    assert {f"invoke_agent {agent}" for agent in DEFAULT_AGENTS} <= names, sorted(names)
    assert {"execute_tool plan", "execute_tool gather", "execute_tool answer"} <= names


# --------------------------------------------------------------------------- the command line


def test_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pygents", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=demo_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m pygents demo"), result.stdout
    for option in (
        "--duration",
        "--turns",
        "--agents",
        "--seed",
        "--metrics-port",
        "--metrics-host",
        "--console-spans",
    ):
        assert option in result.stdout


def test_the_console_script_runs_the_demo() -> None:
    script = Path(sys.executable).with_name("pygents")
    if not script.exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"no console script at {script}: is [project.scripts] in pyproject.toml?")
        pytest.skip("the `pygents` console script is installed by `pip install -e .`")
    result = subprocess.run(
        [str(script), "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env=demo_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pygents demo"), result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--turns", "10", "--duration", "5"], "not allowed with argument"),
        (["--turns", "0"], "must be at least 1"),
        (["--metrics-port", "-1"], "must be 0..65535"),
        # These failed later, after the banner, with a traceback and exit 1:
        (["--redis", "notaurl"], "must be a Redis URL"),
        (["--redis", "http://localhost:6379"], "must be a Redis URL"),
        (["--metrics-host", ""], "--metrics-host: must not be empty"),
        (["--namespace", ""], "--namespace: must not be empty"),
        (["--namespace", "mine"], "--namespace: only with --redis"),  # was ignored
        (["--duration", "inf"], "must be a finite number"),
        (["--duration", "abc"], "invalid positive number value"),  # not "_positive_float"
        (["--agents", "100000"], "must be at most 1000"),  # stopping took minutes
        (["worker", "--redis", "redis://localhost:1", "--lease-ttl", "0.001"], "at least 0.01"),
        (["worker", "--redis", "redis://localhost:1", "--name", ""], "--name: must not be empty"),
    ],
)
def test_conflicting_or_invalid_options_are_usage_errors(args: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pygents", "demo", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=demo_env(),
        check=False,
    )
    assert result.returncode == 2, (args, result.stderr)
    assert "usage:" in result.stderr, result.stderr
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_sigterm_while_the_spans_are_flushed_still_prints_the_summary() -> None:
    # The run has ended and the exit waits (up to 5 s) for an endpoint that is not there:
    # the run loop's signal handlers are gone, and SIGTERM's default ended the process, no
    # summary. It stops the wait instead, as Ctrl-C does.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    env = demo_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed}")
    demo = Demo("--turns", "20", "--seed", "4", "--metrics-port", "0", env=env)
    try:
        demo.wait_for("traces:  OTLP to")
        # The run (20 turns) takes about a second; the final metric export, which fails at
        # once on the closed port, says the flush has begun.
        deadline = time.monotonic() + 10
        while "exporting metrics" not in demo.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
        assert demo.running(), demo.stderr
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.finish(timeout=15) == 143, demo.stderr
    finally:
        demo.close()
    assert "Traceback" not in demo.stderr, demo.stderr
    assert re.search(r"pygents demo interrupted by SIGTERM after \d+\.\d s", demo.stdout)
    assert list(summary(demo.stdout))[-1] == "total"


PORT_0 = ("--metrics-port", "0")


def test_stdout_closed_early_ends_it_quietly() -> None:
    # `pygents demo | head -1`: the summary's print meets a closed pipe. It was a
    # BrokenPipeError traceback (exit 1); now the shell's convention for a closed pipe.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pygents", "demo", "--turns", "30", "--seed", "1", *PORT_0],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=demo_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"pygents demo: seed 1")
    proc.stdout.close()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_a_busy_metrics_port_is_reported() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pygents", "demo", "--turns", "5", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=demo_env(),
            check=False,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in result.stderr
    assert "--metrics-port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("blocked", ["prometheus_client", "opentelemetry.sdk"])
def test_missing_telemetry_extras_say_what_to_install(blocked: str) -> None:
    # A None entry in sys.modules makes the import fail, as if the package were not installed.
    program = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from pygents.__main__ import main\n"
        "sys.exit(main(['demo', '--turns', '5', '--metrics-port', '0']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        env=demo_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert 'pip install "pygents[all]"' in result.stderr
    assert "Traceback" not in result.stderr
