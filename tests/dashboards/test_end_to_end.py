"""End to end, without Docker, on both metric pipelines: the same demo workload runs twice at
once, as `pygents demo` serving pygents' own /metrics (the Prometheus collector), and as a
program whose OpenTelemetry SDK exposes the metrics through the official
`PrometheusMetricReader` (otel_workload.py). Each job also has a Redis worker serving the demo's
team, fed by `pygents demo --redis` through a real redis-server on loopback (`pygents demo
worker`, and otel_worker.py on the OpenTelemetry pipeline), for the Redis panels. A real
Prometheus (exemplar storage on,
OpenMetrics, 1 s scrapes) scrapes both, as two jobs; every expression of every dashboard panel,
macros substituted and the `job` variable set to each job in turn, returns data through the
HTTP API; the exemplars Prometheus kept from the native job carry 32-hex trace ids; each
/metrics exposition passes `promtool check metrics` and has every pygents family once."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    COMPOSE_FILE,
    ROOT,
    SCRAPE_PROTOCOLS_SINCE,
    find_executable,
    http_get_json,
    http_get_text,
    load_dashboards,
    load_yaml,
    missing,
    panels,
    prometheus_version,
    started,
    stop,
    substitute,
    variable_values,
    wait_until,
)
from ruamel.yaml import YAML

from loopback import free_ports

DEMO_SECONDS = 25
#: Scraped data the first round of queries waits for (rates need two samples; pauses,
#: timeouts and errors need a few jobs to have gone through).
WARM_UP_SECONDS = 12
#: The last moment, after the demo starts, at which a round of queries may begin: the demo
#: stops feeding questions at DEMO_SECONDS and its /metrics goes away soon after.
LAST_ROUND_AT = DEMO_SECONDS - 3
HEX32 = re.compile(r"[0-9a-f]{32}")


def demo_available() -> bool:
    return (
        importlib.util.find_spec("pygents.demo") is not None
        and importlib.util.find_spec("pygents.__main__") is not None
    )


#: The two scrape jobs: pygents' own collector, and the OpenTelemetry SDK's exporter.
NATIVE_JOB = "pygents-demo"
OTEL_JOB = "pygents-otel"


def prometheus_config(targets: dict[str, list[int]], with_protocols: bool) -> dict[str, Any]:
    jobs = []
    for job_name, ports in targets.items():
        job: dict[str, Any] = {
            "job_name": job_name,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}],
        }
        if with_protocols:
            job["scrape_protocols"] = ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1"]
        jobs.append(job)
    # Older Prometheus (Debian's 2.42) has no `scrape_protocols`; it asks for OpenMetrics first
    # by default. The exemplars checked below exist only if the scrape really was OpenMetrics.
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": jobs,
    }


def all_queries(job: str = ".*") -> list[tuple[str, str, str, str, bool]]:
    """``(dashboard, panel, refId, expression with macros substituted, exemplar?)``, with the
    ``job`` variable set to ``job`` (the other variables at *All*)."""
    return [
        (
            name,
            panel["title"],
            target["refId"],
            substitute(target["expr"], {**variable_values(dashboard), "job": job}),
            bool(target.get("exemplar")),
        )
        for name, dashboard in load_dashboards().items()
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


def check_exposition(promtool: str | None, url: str) -> None:
    """``promtool check metrics`` finds nothing, and no pygents family appears twice."""
    text = http_get_text(url)
    helps = re.findall(r"^# HELP (pygents_\w+) ", text, re.M)
    assert helps, f"no pygents metric at {url}"
    assert len(helps) == len(set(helps)), f"{url}: a family twice: {sorted(helps)}"
    if promtool is not None:
        lint = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), (
            f"{url}: {lint.stdout}{lint.stderr}"
        )


def instant_query(base: str, expr: str, at: float) -> list[Any]:
    body = http_get_json(f"{base}/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
    assert body["status"] == "success", body
    result: list[Any] = body["data"]["result"]
    return result


@pytest.mark.timeout(150)
def test_every_panel_expression_returns_data_on_both_pipelines_from_a_real_prometheus(
    tmp_path: Path,
) -> None:
    with contextlib.ExitStack() as stack:
        run_end_to_end(tmp_path, stack)


def run_end_to_end(tmp_path: Path, stack: contextlib.ExitStack) -> None:
    """The body of the test above; ``stack`` holds Redis and the Redis side of each job."""
    if not demo_available():
        missing("`python -m pygents demo` is not available")
    prometheus = find_executable("prometheus")
    if prometheus is None:
        missing("prometheus is not installed (apt-get install prometheus)")
    assert prometheus is not None
    promtool = find_executable("promtool")
    queries = {job: all_queries(job) for job in (NATIVE_JOB, OTEL_JOB)}
    assert len(queries[NATIVE_JOB]) >= 20

    # Every port this test hands out, Redis's too, chosen together so no two coincide.
    chosen = iter(free_ports(6))
    ports = {NATIVE_JOB: next(chosen), OTEL_JOB: next(chosen)}
    worker_ports = {NATIVE_JOB: next(chosen), OTEL_JOB: next(chosen)}
    web_port, redis_port = next(chosen), next(chosen)
    config_path = tmp_path / "prometheus.yml"
    with config_path.open("w", encoding="utf-8") as out:
        config = prometheus_config(
            {job: [ports[job], worker_ports[job]] for job in ports},
            prometheus_version(prometheus) >= SCRAPE_PROTOCOLS_SINCE,
        )
        YAML(typ="safe", pure=True).dump(config, out)
    redis_url = stack.enter_context(
        load_helper("integration", "redis_server").redis_server(redis_port)
    )

    # The workloads' own environment: telemetry on (the suite turns auto-instrumentation off)
    # and no OTLP exporter inherited from the caller.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "PYGENTS_TELEMETRY"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    demo_args = [
        sys.executable,
        "-m",
        "pygents",
        "demo",
        "--duration",
        str(DEMO_SECONDS),
        "--metrics-port",
        str(ports[NATIVE_JOB]),
        "--seed",
        "3",
    ]
    otel_args = [
        sys.executable,
        str(Path(__file__).with_name("otel_workload.py")),
        str(ports[OTEL_JOB]),
        str(DEMO_SECONDS),
    ]
    # The Redis side of each job: a worker serving the demo's team, and a feeder.
    namespaces = {NATIVE_JOB: "e2e-native", OTEL_JOB: "e2e-otel"}
    worker_args = {
        NATIVE_JOB: [
            *[sys.executable, "-m", "pygents", "demo", "worker", "--redis", redis_url],
            *["--namespace", namespaces[NATIVE_JOB], "--seed", "3", "--lease-ttl", "3"],
            *["--metrics-port", str(worker_ports[NATIVE_JOB])],
        ],
        OTEL_JOB: [
            sys.executable,
            str(Path(__file__).with_name("otel_worker.py")),
            str(worker_ports[OTEL_JOB]),
            redis_url,
            namespaces[OTEL_JOB],
        ],
    }
    feeder_args = {
        job: [
            *[sys.executable, "-m", "pygents", "demo", "--redis", redis_url, "--seed", "3"],
            *["--namespace", namespace, "--duration", str(DEMO_SECONDS), "--metrics-port", "0"],
        ]
        for job, namespace in namespaces.items()
    }
    prometheus_args = [
        prometheus,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web_port}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    base = f"http://127.0.0.1:{web_port}"
    demo_log, otel_log = tmp_path / "demo.log", tmp_path / "otel.log"
    prometheus_log = tmp_path / "prometheus.log"
    worker_logs = {job: tmp_path / f"worker-{job}.log" for job in worker_args}
    feeder_logs = {job: tmp_path / f"feeder-{job}.log" for job in feeder_args}

    def logs() -> str:
        return "\n".join(
            f"--- {p.name}:\n{p.read_text(errors='replace')[-4000:]}"
            for p in (
                demo_log,
                otel_log,
                prometheus_log,
                *worker_logs.values(),
                *feeder_logs.values(),
            )
            if p.exists()
        )

    workers = {
        job: stack.enter_context(started(args, worker_logs[job], env=env, cwd=tmp_path))
        for job, args in worker_args.items()
    }
    for job, args in feeder_args.items():
        stack.enter_context(started(args, feeder_logs[job], env=env, cwd=tmp_path))

    with (
        started(demo_args, demo_log, env=env, cwd=tmp_path) as demo,
        started(otel_args, otel_log, env=env, cwd=tmp_path) as otel,
        started(prometheus_args, prometheus_log, cwd=tmp_path) as server,
    ):
        demo_started = time.monotonic()
        wait_until(
            lambda: server.poll() is None and http_get_text(f"{base}/-/ready"),
            30,
            what="Prometheus to be ready",
            details=logs,
        )

        def workloads_alive() -> None:
            assert demo.poll() is None, "the demo exited early\n" + logs()
            assert otel.poll() is None, "the OpenTelemetry workload exited early\n" + logs()
            for job, worker in workers.items():
                assert worker.poll() is None, f"the {job} Redis worker exited\n" + logs()

        def targets_up() -> bool:
            workloads_alive()
            targets = http_get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
            return len(targets) == 4 and all(t["health"] == "up" for t in targets)

        wait_until(targets_up, 20, what="all four /metrics to be scraped", details=logs)
        scraping_since = time.time()

        # The live expositions, as Prometheus gets them: OpenMetrics from pygents' collector,
        # each family once and lint-free on both pipelines.
        native_url = f"http://127.0.0.1:{ports[NATIVE_JOB]}/metrics"
        openmetrics = http_get_text(
            native_url, {"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert openmetrics.rstrip().endswith("# EOF"), "not an OpenMetrics exposition"
        for job in (NATIVE_JOB, OTEL_JOB):
            check_exposition(promtool, f"http://127.0.0.1:{ports[job]}/metrics")
            check_exposition(promtool, f"http://127.0.0.1:{worker_ports[job]}/metrics")

        # Rounds of queries, each evaluating every expression for both jobs at one instant,
        # until a round in which all of them return data (bounded by the workloads' run).
        time.sleep(max(0.0, WARM_UP_SECONDS - (time.time() - scraping_since)))
        empty: list[str] = []
        rounds = 0
        while True:
            rounds += 1
            at = time.time()
            empty = [
                f"{job}: {board} / {title} / {ref}: {expr}"
                for job, job_queries in queries.items()
                for board, title, ref, expr, _ in job_queries
                if not instant_query(base, expr, at)
            ]
            if not empty or time.monotonic() - demo_started > LAST_ROUND_AT:
                break
            workloads_alive()
            time.sleep(1.0)
        total = sum(len(q) for q in queries.values())
        assert not empty, (
            f"{len(empty)} of {total} panel expressions returned no data after "
            f"{rounds} rounds:\n  " + "\n  ".join(empty) + "\n" + logs()
        )
        # Nothing was counted twice: each job's turns come from one pipeline only.
        for job in (NATIVE_JOB, OTEL_JOB):
            families = instant_query(
                base, f'count by (__name__) ({{job="{job}", __name__=~"pygents_turns_total"}})', at
            )
            assert len(families) == 1, families

        # Exemplars (pygents' collector only: the OpenTelemetry exporter writes none): every
        # latency query with exemplars on finds some, each a trace id.
        exemplar_queries = [(title, expr) for _, title, _, expr, ex in queries[NATIVE_JOB] if ex]
        assert exemplar_queries
        for title, expr in exemplar_queries:
            body = http_get_json(
                f"{base}/api/v1/query_exemplars",
                {"query": expr, "start": f"{scraping_since - 5:.3f}", "end": f"{time.time():.3f}"},
            )
            assert body["status"] == "success", body
            exemplars = [e for series in body["data"] for e in series["exemplars"]]
            assert exemplars, f"{title}: no exemplars for {expr}"
            for exemplar in exemplars:
                assert set(exemplar["labels"]) == {"trace_id"}, exemplar
                assert HEX32.fullmatch(exemplar["labels"]["trace_id"]), exemplar

        # A finished run exits 0, on both sides.
        for process, what in ((demo, "the demo"), (otel, "the OpenTelemetry workload")):
            try:
                code = process.wait(
                    timeout=max(1.0, DEMO_SECONDS + 20 - (time.monotonic() - demo_started))
                )
            except subprocess.TimeoutExpired:
                stop(process)
                pytest.fail(f"{what} did not finish its --duration run\n" + logs())
            assert code == 0, logs()


def load_otlp_receiver() -> Any:
    """The OTLP/HTTP receiver helper of tests/observability (a plain module, not a package)."""
    return load_helper("observability", "otlp_receiver")


def load_helper(directory: str, name: str) -> Any:
    """A helper module of another test directory (a plain module, not a package)."""
    path = ROOT / "tests" / directory / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pygents_tests_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(90)
def test_the_compose_demo_environment_sends_its_spans_to_jaeger_otlp(tmp_path: Path) -> None:
    """The demo service's OTEL_* variables of docker-compose.yml, with `jaeger` replaced by a
    real OTLP/HTTP receiver on loopback: spans arrive on /v1/traces under the compose service
    name, and no OTLP metrics are pushed (Jaeger takes none; Prometheus scrapes /metrics)."""
    if not demo_available():
        missing("`python -m pygents demo` is not available")
    compose_env = load_yaml(COMPOSE_FILE)["services"]["demo"]["environment"]
    receiver_module = load_otlp_receiver()
    with receiver_module.OTLPReceiver() as receiver:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("OTEL_") and k != "PYGENTS_TELEMETRY"
        }
        for key, value in compose_env.items():
            env[key] = re.sub(r"//jaeger:\d+", f"//127.0.0.1:{receiver.port}", str(value))
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])
        )
        log = tmp_path / "demo.log"
        args = [sys.executable, "-m", "pygents", "demo", "--duration", "3", "--seed", "3"]
        with started([*args, "--metrics-port", "0"], log, env=env, cwd=tmp_path) as demo:
            try:
                code = demo.wait(timeout=45)
            except subprocess.TimeoutExpired:
                pytest.fail("the demo did not finish\n" + log.read_text(errors="replace"))
        assert code == 0, log.read_text(errors="replace")
        spans = receiver.spans()  # the demo flushed its spans before exiting
        assert spans, f"no spans arrived\n{log.read_text(errors='replace')}"
        assert {s.resource.get("service.name") for s in spans} == {compose_env["OTEL_SERVICE_NAME"]}
        names = {s.name.split(" ")[0] for s in spans}
        assert {"invoke_agent", "execute_tool"} <= names, names
        assert receiver.requests("/v1/metrics") == 0
        assert receiver.errors == []
