"""Scale-out with real parts: 3 worker processes, 100 agents, 10,000 turns, one SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from redis_server import redis_server, stopped

from pygents import Agent, Turn, tool
from pygents.redis import RedisQueue

WORKER = Path(__file__).with_name("redis_worker.py")
AGENTS, STEPS = 100, 100


def records(logs: list[Path]) -> list[dict[str, Any]]:
    found = []
    for log in logs:
        if log.exists():
            # A line cut by SIGKILL is not a record.
            lines = log.read_text().splitlines()
            found.extend(json.loads(line) for line in lines if line.endswith("}"))
    return found


def wait_until(logs: list[Path], predicate: Any, within: float, what: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        lines = records(logs)
        if predicate(lines):
            return lines
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_three_workers_100_agents_10000_turns_one_worker_killed(tmp_path: Path) -> None:
    # The producer (this process) builds turns of the workers' tools: the same names.
    @tool()
    async def step(n: int) -> None: ...

    for i in range(AGENTS):
        Agent(f"agent-{i:03d}", "works", [step])

    started = time.monotonic()
    with redis_server() as url:
        logs = [tmp_path / f"w{k}.jsonl" for k in range(3)]
        # Each worker's stderr in a file: a worker that does not stop writes its tasks there.
        errors = [log.with_suffix(".err") for log in logs]
        workers = []
        for k, (log, error) in enumerate(zip(logs, errors, strict=True)):
            with error.open("wb") as err:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, str(WORKER), url, str(log), f"w{k}", str(AGENTS)],
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                        stderr=err,
                    )
                )
        try:
            wait_until(logs, lambda ls: sum(r["t"] == "ready" for r in ls) == 3, 30, "workers")

            async def produce() -> None:
                queue = RedisQueue(url, tracer_provider=False)
                for n in range(STEPS):
                    for i in range(AGENTS):
                        await queue.send(f"agent-{i:03d}", Turn("step", kwargs={"n": n}))
                await queue.aclose()

            asyncio.run(produce())
            wait_until(logs, lambda ls: sum(r["t"] == "step" for r in ls) >= 3000, 60, "progress")
            victim = workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            assert victim.wait(10) == -signal.SIGKILL
            killed_at = time.monotonic()

            def complete(ls: list[dict[str, Any]]) -> bool:
                steps = {(r["a"], r["n"]) for r in ls if r["t"] == "step"}
                return len(steps) == AGENTS * STEPS and sum(r["t"] == "ping" for r in ls) >= 1000

            lines = wait_until(logs, complete, 90, "every turn")
            finished = time.monotonic()
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
            for w, error in zip(workers[1:], errors[1:], strict=True):
                assert stopped(w, error) == 0, error.read_text()
            lines = records(logs)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
                    w.wait(10)

    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in lines:
        if r["t"] == "step":
            steps[r["a"]].append(r)
    reruns = []
    for agent, runs in sorted(steps.items()):
        # In the order they ran: an agent may move between live workers too (rebalancing
        # while the workers start, a lease lost under load), so the logs' order is not it.
        runs.sort(key=lambda r: r["ts"])
        # Order kept: without the re-runs (a turn run again right after a takeover), each
        # agent ran its turns exactly in the order they were sent.
        ns = [r["n"] for r in runs]
        distinct = [n for k, n in enumerate(ns) if k == 0 or ns[k - 1] != n]
        assert distinct == list(range(STEPS)), agent
        for k in range(1, len(runs)):
            if runs[k]["n"] == runs[k - 1]["n"]:
                assert runs[k - 1]["w"] == "w0" and runs[k]["w"] != "w0", (agent, runs[k])
                assert runs[k]["at"] == runs[k - 1]["at"] + 1
                reruns.append((agent, runs[k]["n"]))
    assert len(steps) == AGENTS
    # Each agent re-ran at most its one turn in flight, and only agents the killed worker held.
    assert len(reruns) == len({a for a, _ in reruns})
    # Tool-returned turns stayed with their agent; sent ones reached the next agent.
    tails = {(r["a"], r["n"]) for r in lines if r["t"] == "tail"}
    assert tails == {(f"agent-{i:03d}", n) for i in range(AGENTS) for n in range(9, STEPS, 10)}
    pings = {(r["a"], r["n"]) for r in lines if r["t"] == "ping"}
    assert pings == {
        (f"agent-{(i + 1) % AGENTS:03d}", n) for i in range(AGENTS) for n in range(0, STEPS, 10)
    }
    stats = [r for r in lines if r["t"] == "stats"]
    assert len(stats) == 2
    took_over = {r["a"] for r in lines if r["t"] == "step" and r["w"] == "w0"}
    assert sum(s["takeovers"] for s in stats) >= 1
    report = {
        "turns_sent": AGENTS * STEPS,
        "step_runs": sum(len(v) for v in steps.values()),
        "reruns": len(reruns),
        "agents_of_killed_worker": len(took_over),
        "takeovers": sum(s["takeovers"] for s in stats),
        "redeliveries": sum(s["redeliveries"] for s in stats),
        "seconds_total": round(finished - started, 1),
        "seconds_after_kill": round(finished - killed_at, 1),
    }
    print("redis scale-out:", json.dumps(report))
