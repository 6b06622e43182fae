"""The instruction-count guard bites: a 10% slower run loop, or bridge, fails it.

Runs ``callgrind_turns.py --check`` on a few rows, as CI does for every row: unchanged it
passes; with busy work of 10% of a row's budget injected into the run loop (``queue:off``) or
into the telemetry bridge's turn completion (``queue:sdk_prometheus``) it fails, naming the row.
And ``run_floor.py``, which docs/performance.md cites for the short runs, counts what it says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "callgrind_turns.py"

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None and os.environ.get("CI") != "true",
    reason="valgrind is not installed (apt-get install valgrind); CI installs it",
)


def _check(*extra: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def _change(output: str, row: str) -> float:
    match = re.search(rf"^{re.escape(row)}\s+[\d,]+\s+[\d,]+\s+([+-][\d.]+)%", output, re.M)
    assert match, output
    return float(match.group(1)) / 100


def test_the_unchanged_tree_passes() -> None:
    code, output = _check("--rows", "queue:off,queue:sdk_prometheus")
    assert code == 0, output
    assert "passed" in output


@pytest.mark.parametrize(
    ("where", "row"), [("loop", "queue:off"), ("bridge", "queue:sdk_prometheus")]
)
def test_a_ten_percent_slowdown_fails_the_guard(where: str, row: str) -> None:
    code, output = _check("--rows", row, "--inject", where, "--inject-fraction", "0.10")
    assert code == 1, output
    assert "OVER BUDGET" in output and row in output
    assert 0.07 <= _change(output, row) <= 0.16, output  # the injection was about 10%


def test_a_one_value_drain_costs_cpython_more_than_a_queued_value() -> None:
    # docs/performance.md's reason the short-runs target cannot be met: with no library at
    # all, a drain of one value costs several values of a long drain (run_floor.py).
    done = subprocess.run(
        [sys.executable, str(SCRIPT.with_name("run_floor.py"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {
        label: int(count.replace(",", ""))
        for label, count in re.findall(r"^(.+?)\s{2,}([\d,]+)$", done.stdout, re.M)
    }
    value = counts["a value of one long drain"]
    per_run = counts["per run, over a value"]
    assert counts["a drain of one value"] == value + per_run
    assert per_run > 2 * value, done.stdout
