"""Instructions per turn under callgrind: deterministic, additive, comparable across commits.

Counts one drain of N turns of a trivial coroutine tool by one agent (after a warm-up drain
of the same size), the final span flush included, in each telemetry mode. The count is taken
with callgrind client requests around exactly that code, with ``PYTHONHASHSEED=0`` so the
same run repeats to the instruction; the event-loop thread and the export thread (the batch
span processor's) are reported separately.

Usage (needs Debian's ``valgrind`` and a C compiler)::

    python benchmarks/callgrind_turns.py                       # every mode, 2,000 turns
    python benchmarks/callgrind_turns.py --modes off,sdk_prometheus --turns 2000

Run the same command on two commits and compare the rows.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("off", "noop", "sdk", "sdk_prometheus", "sdk_prometheus_metrics")

_CONTROL_C = r"""
#include <valgrind/callgrind.h>
void pg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void pg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("measured"); }
"""


def _control_library(workdir: str) -> str:
    source = os.path.join(workdir, "pg_callgrind.c")
    library = os.path.join(workdir, "pg_callgrind.so")
    Path(source).write_text(_CONTROL_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", library, source], check=True)
    return library


def _child(mode: str, turns: int, library: str) -> None:
    """Runs under valgrind: warm up, then count one drain of ``turns`` turns."""
    import asyncio

    sys.path.insert(0, str(HERE))
    import _workloads as w

    control = ctypes.CDLL(library)
    telemetry = None if mode == "off" else w.TelemetryMode(mode)
    if telemetry is not None:
        telemetry.__enter__()
    tool = w.trivial_tool()
    agent = w.agent_with([tool])

    async def main() -> None:
        await w.put_round(agent, tool, turns)
        await w.drain(agent)  # warm-up: caches, lanes, cells, code paths
        if telemetry is not None:
            telemetry.flush()
        await w.put_round(agent, tool, turns)
        control.pg_start()
        await w.drain(agent)
        if telemetry is not None:
            telemetry.flush()
        control.pg_stop()

    asyncio.run(main())
    if telemetry is not None:
        telemetry.__exit__(None, None, None)


def _totals(pattern: str) -> list[int]:
    """The measured totals of each thread's dump file (main thread first)."""
    found: list[tuple[int, int]] = []
    for path in glob.glob(pattern):
        text = Path(path).read_text(errors="replace")
        if "measured" not in text:
            continue
        match = re.search(r"^totals:\s+(\d+)", text, re.M)
        thread = re.search(r"-(\d+)$", path)
        if match:
            found.append((int(thread.group(1)) if thread else 0, int(match.group(1))))
    return [count for _thread, count in sorted(found)]


def measure(mode: str, turns: int, library: str, workdir: str) -> tuple[int, int]:
    """(event-loop thread, other threads) instructions per turn for one mode."""
    out = os.path.join(workdir, f"cg.{mode}")
    env = dict(os.environ, PYTHONHASHSEED="0")
    if mode == "off":
        env["PYGENTS_TELEMETRY"] = "off"
    else:
        env["PYGENTS_TELEMETRY"] = "off"  # no auto-instrumentation: the mode installs its own
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--child",
        mode,
        "--turns",
        str(turns),
        "--library",
        library,
    ]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    totals = _totals(out + "*")
    if not totals:
        raise RuntimeError(f"no callgrind dump for mode {mode!r}")
    return totals[0] // turns, sum(totals[1:]) // turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.turns, args.library)
        return
    with tempfile.TemporaryDirectory() as workdir:
        library = _control_library(workdir)
        version = ".".join(map(str, sys.version_info[:3]))
        print(f"instructions per turn, Python {version}, {args.turns} turns, PYTHONHASHSEED=0")
        print(f"{'mode':<26}{'event loop':>12}{'export thread':>15}")
        for mode in args.modes.split(","):
            loop, others = measure(mode, args.turns, library, workdir)
            print(f"{mode:<26}{loop:>12,}{others:>15,}")


if __name__ == "__main__":
    main()
