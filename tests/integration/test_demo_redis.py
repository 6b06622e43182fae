"""``pygents demo`` over Redis, in subprocesses against a real redis-server on loopback.

Two ``pygents demo worker`` processes serve the team; ``pygents demo --redis URL --turns N``
feeds questions through ``RedisQueue``. Every question ends either in a completed ``answer``
turn or in exactly one dead letter (a failing request fails again on every retry, by the
seed), so the two counts, read from the workers' ``/metrics``, add up to the questions sent.
SIGTERM then stops each worker cleanly (143), its leases given back.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_server import redis_server, stopped

ROOT = Path(__file__).resolve().parents[2]
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def env() -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "PYGENTS_TELEMETRY"
    }
    clean["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), clean.get("PYTHONPATH")])
    )
    return clean


def metrics_port(log: Path, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = re.search(r"metrics: http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
        if found and "serving" in log.read_text():
            return int(found.group(1))
        time.sleep(0.1)
    pytest.fail(f"the worker did not start:\n{log.read_text()}")


def samples(port: int, family: str, **labels: str) -> float:
    with _http.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            if sample.name == family and labels.items() <= sample.labels.items():
                total += sample.value
    return total


@pytest.mark.timeout(150)
def test_workers_serve_what_the_redis_feeder_sends(redis_url: str, tmp_path: Path) -> None:
    common = ["--redis", redis_url, "--namespace", "t-demo", "--seed", "3"]
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for i, log in enumerate(logs, 1):
            with log.open("wb") as out:
                args = [sys.executable, "-m", "pygents", "demo", "worker", *common]
                args += ["--name", f"w{i}", "--metrics-port", "0", "--lease-ttl", "3"]
                workers.append(
                    subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env())
                )
        ports = [metrics_port(log) for log in logs]

        feed = ["demo", *common, "--turns", "80", "--metrics-port", "0"]
        feeder = subprocess.run(
            [sys.executable, "-m", "pygents", *feed],
            capture_output=True,
            text=True,
            env=env(),
            timeout=90,
            check=False,
        )
        assert feeder.returncode == 0, feeder.stdout + feeder.stderr
        sent = re.search(r"sent (\d+) questions", feeder.stdout)
        assert sent, feeder.stdout
        questions = int(sent.group(1))
        assert questions >= 10

        def settled() -> tuple[float, float]:
            answered = sum(
                samples(p, "pygents_turns_total", tool="answer", stop_reason="completed")
                for p in ports
            )
            dead = sum(samples(p, "pygents_redis_dead_letters_total") for p in ports)
            return answered, dead

        deadline = time.monotonic() + 60
        answered, dead = settled()
        while answered + dead < questions and time.monotonic() < deadline:
            time.sleep(0.5)
            answered, dead = settled()
        details = "\n".join(log.read_text(errors="replace")[-3000:] for log in logs)
        assert answered + dead == questions, (answered, dead, questions, details)
        assert answered > 0 and dead > 0  # the seed makes some questions fail
        # Both workers served (the leases are shared out), and retries were counted.
        assert all(samples(p, "pygents_redis_leases_held") > 0 for p in ports), details
        assert sum(samples(p, "pygents_redis_redeliveries_total") for p in ports) >= 2 * dead
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
    for worker, log in zip(workers, logs, strict=True):
        assert stopped(worker, log) == 143, log.read_text()
        assert "'leases_held': 0" in log.read_text()


def test_help_shows_the_redis_mode_and_the_worker() -> None:
    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "pygents", "demo", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "--redis" in run() and "worker" in run()
    shown = run("worker")
    assert shown.startswith("usage: python -m pygents demo worker"), shown
    for option in ("--redis", "--namespace", "--name", "--lease-ttl", "--max-attempts"):
        assert option in shown


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "feeder"])
def test_an_unreachable_redis_is_reported(worker: bool) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    args = ["worker", "--redis", url] if worker else ["--redis", url, "--turns", "5"]
    result = subprocess.run(
        [sys.executable, "-m", "pygents", "demo", *args, "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"Redis at {url} failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_feeder_stops_when_a_redis_command_swallows_its_cancellation(redis_url: str) -> None:
    # Python 3.11's asyncio.wait_for() (redis-py sends commands through it) can hand a reply
    # to a task cancelled as it arrives and drop the cancellation: the feeder must stop anyway.
    # In a process of its own, as the demo runs (its tools are registered at import).
    code = """
import argparse, asyncio, sys
from pygents.demo import _cli
from pygents.demo._redis import feed_redis
from pygents.redis import RedisQueue

swallowed = []

async def slow_depth(self, name):
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        swallowed.append(1)  # the reply "arrived": the cancellation is lost
    return 0

RedisQueue.depth = slow_depth
parser = argparse.ArgumentParser()
_cli.add_arguments(parser)
options = parser.parse_args(
    ["--redis", sys.argv[1], "--duration", "0.3", "--namespace", "lost-cancel"]
)
questions, _planned = asyncio.run(feed_redis(options, 7, []))
print("swallowed", len(swallowed), "questions", questions)
"""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, redis_url],
            env={**env(), "PYGENTS_TELEMETRY": "off"},
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:  # without the halt, the feeder fed on: no end
        pytest.fail(f"the feeder did not stop: {exc.stderr!r}")
    assert done.returncode == 0, done.stderr
    found = re.search(r"swallowed (\d+) questions (\d+)", done.stdout)
    assert found, done.stdout
    assert int(found.group(1)) == 1 and int(found.group(2)) >= 1
