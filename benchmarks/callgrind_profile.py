"""Instructions per turn by Python function: where a row of ``callgrind_turns.py`` spends them.

Callgrind sees C functions only; every Python function runs inside the same interpreter loop.
With ``PYTHONPERFSUPPORT=1`` (Python 3.12 and later) each Python call goes through a small
trampoline of its own, written to ``/tmp/perf-PID.map``; callgrind counts each trampoline as a
function, and this script names them from that map. The figure per function is *inclusive*
(its callees' instructions counted in), per turn, for the same workload and window as the
guard's row. The trampolines themselves cost instructions (16 to 20 % more in total on 3.12:
the script prints the total with them, not the row's plain count, which ``callgrind_turns.py``
gives), so read the figures as shares, and confirm a saving with ``callgrind_turns.py``.

Usage (Python 3.12+, Debian's ``valgrind``, a C compiler)::

    python benchmarks/callgrind_profile.py queue:sdk_prometheus          # top 40 functions
    python benchmarks/callgrind_profile.py chain:off --top 80
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind_turns as guard  # noqa: E402  (the row's workload, window and shim)


def _trampolines(perf_map: Path) -> tuple[list[int], list[tuple[int, int, str]]]:
    ranges = []
    for line in perf_map.read_text().splitlines():
        start, size, name = line.split(" ", 2)
        ranges.append((int(start, 16), int(size, 16), name.removeprefix("py::")))
    ranges.sort()
    return [r[0] for r in ranges], ranges


def profile(row: str, turns: int) -> tuple[int, dict[str, int]]:
    """(total instructions, {python function: inclusive instructions}) of one run of ``row``."""
    if sys.version_info < (3, 12):
        raise SystemExit("callgrind_profile.py needs Python 3.12 or later (perf trampolines)")
    with tempfile.TemporaryDirectory() as workdir:
        library = guard.control_library(workdir)
        out = os.path.join(workdir, "cg.out")
        env = guard.child_env(PYGENTS_TELEMETRY="off", PYTHONPERFSUPPORT="1")
        done = guard.run_counted(
            out,
            [
                str(HERE / "callgrind_turns.py"),
                "--child",
                row,
                "--turns",
                str(turns),
                "--library",
                library,
            ],
            env,
            "--separate-threads=yes",
            "--smc-check=all",  # the trampolines are written at run time
        )
        if done.returncode != 0:
            raise SystemExit(f"{row} failed:\n{done.stderr[-3000:]}")
        pid = re.search(r"==(\d+)==", done.stderr)
        dumps = [p for p in Path(workdir).glob("cg.out.*") if "measured" in p.read_text()]
        if pid is None or not dumps:
            raise SystemExit(f"no callgrind dump for {row}")
        perf_map = Path(f"/tmp/perf-{pid.group(1)}.map")
        try:
            starts, ranges = _trampolines(perf_map)
        finally:
            perf_map.unlink(missing_ok=True)
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(sorted(dumps)[0])],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    totals = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", annotated)
    total = int(totals.group(1).replace(",", "")) if totals else 0
    functions: dict[str, int] = {}
    for line in annotated.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+\([^)]*\)\s+\?\?\?:0x([0-9a-f]+)", line)
        if not match:
            continue
        address = int(match.group(2), 16)
        index = bisect.bisect_right(starts, address) - 1
        if index < 0:
            continue
        start, size, name = ranges[index]
        if address < start + size:  # a block of that trampoline: keep its largest figure
            cost = int(match.group(1).replace(",", ""))
            functions[name] = max(functions.get(name, 0), cost)
    return total, functions


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("row", help="workload:mode, as in callgrind_turns.py")
    parser.add_argument("--turns", type=int, default=guard.TURNS)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    workload = args.row.split(":")[0]
    per = guard._stream_turns(args.turns) if workload == "stream10" else args.turns
    total, functions = profile(args.row, args.turns)
    print(f"{args.row}: {total // per:,} instructions per turn with the trampolines")
    print(f"{'inclusive/turn':>14}  function")
    for name, cost in sorted(functions.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{cost // per:>14,}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
