"""What one ``async for`` over a fresh async generator costs CPython, with no library at all.

The ``short_runs`` rows of ``callgrind_turns.py`` run many one-turn runs: each builds a
``Turn``, puts it, and drains the agent with ``async for`` over ``run()``, an async generator.
Part of what a run costs over a turn of a long drain is the interpreter's, whatever the
library does: the consumer's coroutine, the generator (made, its first iteration registered
by asyncio in a weak set, its end raised as ``StopAsyncIteration``), and freeing them. This
script counts that part for a minimal loop of the same shape (pop a value, await a trivial
coroutine with it, yield the result), under callgrind, in the same window as the guard:

- ``long``: one drain of N values (instructions per value);
- ``short``: N drains of one value each (instructions per drain);

and prints the difference, the floor a one-turn run pays over a queued turn with pygents'
own share at zero. Usage (Debian's ``valgrind``, a C compiler)::

    python benchmarks/run_floor.py
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import callgrind_turns as guard  # noqa: E402  (the shim and the dump reader)

VALUES = 1000


async def _tool(x: int) -> int:
    return x


async def _run(queue: deque[int]) -> AsyncIterator[int]:
    while queue:
        value = await _tool(queue.popleft())
        yield value


async def _drain(queue: deque[int]) -> int:
    count = 0
    async for _ in _run(queue):
        count += 1
    return count


async def _child_main(shape: str, control: Any) -> None:
    queue: deque[int] = deque()
    for i in range(50):  # warm-up: every instruction specialised, both shapes
        queue.append(i)
        await _drain(queue)
    queue.extend(range(VALUES))
    await _drain(queue)
    gc.collect()
    gc.disable()
    if shape == "long":
        queue.extend(range(VALUES))
        control.pg_start()
        await _drain(queue)
        control.pg_stop()
    else:
        control.pg_start()
        for i in range(VALUES):
            queue.append(i)
            await _drain(queue)
        control.pg_stop()
    gc.enable()


def _measure(shape: str, library: str, workdir: str) -> int:
    out = os.path.join(workdir, f"cg.{shape}")
    done = guard.run_counted(
        out, [__file__, "--child", shape, "--library", library], guard.child_env()
    )
    if done.returncode != 0:
        raise SystemExit(f"{shape} failed:\n{done.stderr[-3000:]}")
    totals = guard._totals(out + "*")
    if not totals:
        raise SystemExit(f"no callgrind dump for {shape}")
    return totals[0] // VALUES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=("long", "short"), help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child_main(args.child, ctypes.CDLL(args.library)))
        return
    with tempfile.TemporaryDirectory() as workdir:
        library = guard.control_library(workdir)
        long = _measure("long", library, workdir)
        short = _measure("short", library, workdir)
    version = "{}.{}.{}".format(*sys.version_info[:3])
    print(f"Python {version}, {VALUES} values, PYTHONHASHSEED=0")
    print(f"a value of one long drain  {long:>7,}")
    print(f"a drain of one value       {short:>7,}")
    print(f"per run, over a value      {short - long:>7,}")


if __name__ == "__main__":
    main()
