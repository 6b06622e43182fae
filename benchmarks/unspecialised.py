"""Bytecode sites on a row's path that the interpreter did not specialise (Python 3.12+).

CPython 3.11+ rewrites an instruction it has run a few times into a form specialised for what
it saw (``LOAD_ATTR`` into ``LOAD_ATTR_SLOT``, ``CALL`` into ``CALL_PY_EXACT_ARGS``, ...). An
instruction it cannot specialise keeps its generic form, and a generic attribute load costs
~150 to ~300 instructions where a specialised one costs ~20 (the generic lookup, often a bound
method built and freed). Several such sites on the run loop's path cost pygents more than
1,000 instructions a turn before they were found this way (see docs/performance.md, "What the
interpreter does not specialise").

This runs a row's workload (``callgrind_turns.py``'s workloads and modes) to warm it up, records
the specialised form of every instruction of every Python function then, and counts, with
``sys.monitoring``, which instructions a few more turns execute; it prints those still generic
that ran at least ``--min`` times a turn (code that runs once per run never gets specialised
in a one-run count), with how often each ran. ``--hints`` adds ``LOAD_ATTR_WITH_HINT`` (an
instance-dict read: fine, except that 3.11 and 3.12 fall back to the generic lookup on every
read from a *split* dict, one whose keys are shared with its class).

Usage::

    python benchmarks/unspecialised.py queue:off
    python benchmarks/unspecialised.py chain:sdk_prometheus --all   # the standard library too
    python benchmarks/unspecialised.py short_runs:off --hints

Generic forms that are expected: ``CALL`` of a builtin taking no argument (``time()``: 3.12
specialises none), ``FOR_ITER`` over a dict, ``CONTAINS_OP`` (3.12), comparisons of large ints.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dis
import gc
import os
import sys
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Generic instruction forms (those a specialised one replaces), plus the dict-hint form.
GENERIC = frozenset(
    "LOAD_ATTR STORE_ATTR CALL LOAD_GLOBAL BINARY_SUBSCR STORE_SUBSCR COMPARE_OP FOR_ITER SEND "
    "UNPACK_SEQUENCE BINARY_OP LOAD_SUPER_ATTR TO_BOOL CONTAINS_OP".split()
)
TOOL_ID = 3  # a sys.monitoring tool id free for this process


def _workload(row: str) -> tuple[Any, Any]:
    """``(once(n), flush)`` for ``workload:mode``: n turns of the row's workload."""
    sys.path.insert(0, str(HERE))
    import _workloads as w

    workload, mode = row.split(":")
    telemetry = None if mode == "off" else w.TelemetryMode(mode, threadless=True)
    if telemetry is not None:
        telemetry.__enter__()
    _agent, _tool, run_once = w.row_workload(workload)

    async def once(n: int) -> None:
        await run_once(n)
        if telemetry is not None:
            telemetry.flush()

    return once, telemetry


def _snapshot(everything: bool) -> dict[types.CodeType, dict[int, tuple[str, str, int | None]]]:
    """Every live Python function's instructions, in their current (adaptive) forms."""
    found: dict[types.CodeType, dict[int, tuple[str, str, int | None]]] = {}
    for obj in gc.get_objects():
        if not isinstance(obj, types.FunctionType):
            continue
        code = obj.__code__
        if code in found or not (everything or "pygents" in code.co_filename):
            continue
        found[code] = {
            i.offset: (i.opname, i.argrepr, i.positions.lineno if i.positions else None)
            for i in dis.get_instructions(code, adaptive=True)
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("row", help="workload:mode, e.g. queue:off")
    parser.add_argument("--turns", type=int, default=20, help="turns counted (after warm-up)")
    parser.add_argument("--all", action="store_true", help="not only pygents' own code")
    parser.add_argument("--min", type=float, default=0.5, help="runs a turn to be listed")
    parser.add_argument("--hints", action="store_true", help="list LOAD_ATTR_WITH_HINT too")
    args = parser.parse_args()
    if sys.version_info < (3, 12):
        raise SystemExit("needs Python 3.12 or later (sys.monitoring)")
    os.environ.setdefault("PYGENTS_TELEMETRY", "off")  # the modes install their own
    once, telemetry = _workload(args.row)
    asyncio.run(once(300))  # warm-up: every site specialised that can be
    forms = _snapshot(args.all)
    executed: collections.Counter[tuple[types.CodeType, int]] = collections.Counter()
    monitoring = sys.monitoring

    def seen(code: types.CodeType, offset: int) -> Any:
        if code in forms:
            executed[(code, offset)] += 1
            return None
        return monitoring.DISABLE

    async def counted() -> None:
        monitoring.use_tool_id(TOOL_ID, "unspecialised")
        monitoring.register_callback(TOOL_ID, monitoring.events.INSTRUCTION, seen)
        monitoring.set_events(TOOL_ID, monitoring.events.INSTRUCTION)
        try:
            await once(args.turns)
        finally:
            monitoring.set_events(TOOL_ID, 0)
            monitoring.free_tool_id(TOOL_ID)

    asyncio.run(counted())
    if telemetry is not None:
        telemetry.__exit__(None, None, None)
    rows = []
    for (code, offset), count in executed.items():
        opname, argrepr, line = forms[code].get(offset, ("", "", None))
        if (opname in GENERIC or (args.hints and opname == "LOAD_ATTR_WITH_HINT")) and (
            count / args.turns >= args.min
        ):
            where = code.co_filename.split("/src/")[-1].split("/lib/")[-1]
            rows.append((count / args.turns, f"{where}:{line}", code.co_name, opname, argrepr))
    print(f"{args.row}: generic instructions executed, per turn")
    for per_turn, where, function, opname, argrepr in sorted(rows, key=lambda r: (-r[0], r[1])):
        print(f"{per_turn:6.2f}  {where:45s} {function:28s} {opname} {argrepr}")


if __name__ == "__main__":
    main()
