"""Durability with real parts: a worker process SIGKILLed mid-turn and restarted, SQLite."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("durable_worker.py")


def records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def stored_state(db: Path, agent: str) -> dict[str, Any]:
    with closing(sqlite3.connect(db)) as conn:
        (data,) = conn.execute(
            "SELECT data FROM pygents_checkpoints WHERE agent = ?", (agent,)
        ).fetchone()
    state: dict[str, Any] = json.loads(data)["state"]
    return state


def test_a_worker_sigkilled_mid_turn_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    db, log = tmp_path / "state.db", tmp_path / "log.jsonl"
    steps, crash_at = 40, 23
    first = subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(log), str(steps), str(crash_at)]
    )
    try:
        deadline = time.monotonic() + 30
        while not any(r.get("marker") == "hanging" for r in records(log)):
            assert first.poll() is None, "the worker exited before the crash point"
            assert time.monotonic() < deadline, "the worker never reached the crash point"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()

    # What the crashed worker left: the interrupted turn is the one in flight.
    state = stored_state(db, "worker")
    assert state["current_turn"]["kwargs"] == {"n": crash_at}
    assert state["current_turn"]["metadata"].get("attempt", 1) == 1
    checkpointed_context = [item["content"] for item in state["context_queue"]["items"]]
    assert checkpointed_context == [f"step {n}" for n in range(crash_at)]

    second = subprocess.run(
        [sys.executable, str(WORKER), str(db), str(log), str(steps)], timeout=60, check=True
    )
    assert second.returncode == 0
    lines = records(log)
    started = [r for r in lines if r.get("marker") == "started"]
    assert [s["fresh"] for s in started] == [True, False]
    # Restored: the context identical to the last checkpoint, the interrupted turn first.
    assert started[1]["context"] == checkpointed_context
    assert started[1]["queue"][0] == {"n": crash_at} and started[1]["attempts"][0] == 2

    runs = [(r["n"], r["attempt"]) for r in lines if r.get("tool") == "step"]
    # Every step ran once, in order, except the interrupted one: it ran again, once, as attempt 2.
    assert runs == [(n, 1) for n in range(crash_at + 1)] + [(crash_at, 2)] + [
        (n, 1) for n in range(crash_at + 1, steps)
    ]
    rerun = next(r for r in lines if r.get("tool") == "step" and r["attempt"] == 2)
    assert rerun["context"] == checkpointed_context
    # No audit turn sent to the other agent was lost (each one put was checkpointed at once).
    audits = sorted(r["n"] for r in lines if r.get("tool") == "audit")
    assert audits == list(range(steps))
    assert lines[-1] == {"marker": "done"}
    final = stored_state(db, "worker")
    assert final["queue"] == [] and final["current_turn"] is None
    assert len(final["context_queue"]["items"]) == steps
