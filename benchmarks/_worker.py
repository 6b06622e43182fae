"""A measuring subprocess: runs rounds of a workload on request, for modes that need a
process of their own ("not installed" telemetry).

Usage: python benchmarks/_worker.py {not_installed|installed_off}

Protocol (one line each way): the worker first prints a JSON hello line describing its
process (whether the telemetry packages are importable, whether pygents is instrumented).
Then, per request line ``calib N`` / ``runloop N`` / ``put N``, it runs that round and
prints the seconds it took (timed inside the worker: no pipe overhead). ``quit`` ends it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    mode = sys.argv[1]
    if mode == "not_installed":
        # The real "not installed" path: no PYGENTS_TELEMETRY switch, find_spec finds nothing.
        os.environ.pop("PYGENTS_TELEMETRY", None)
        from _blocker import block_telemetry

        block_telemetry()  # before pygents (and _workloads, which imports it) is imported
    elif mode == "installed_off":
        os.environ["PYGENTS_TELEMETRY"] = "off"
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    import _workloads as w

    import pygents
    from pygents.observability import is_instrumented

    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ImportError:
            return False

    hello = {
        "mode": mode,
        "python": sys.version.split()[0],
        "pygents": pygents.__version__,
        "opentelemetry_importable": importable("opentelemetry"),
        "prometheus_client_importable": importable("prometheus_client"),
        "instrumented": is_instrumented(),
        "telemetry_modules_loaded": sorted(
            {m.split(".")[0] for m in sys.modules if m.split(".")[0] in w.TELEMETRY_PACKAGES}
        ),
    }
    print(json.dumps(hello), flush=True)

    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])
    runner = asyncio.Runner()
    try:
        for line in sys.stdin:
            parts = line.split()
            if not parts or parts[0] == "quit":
                break
            what, n = parts[0], int(parts[1])
            gc.collect()  # every round starts from the same collector state (as the guard's)
            if what == "calib":
                seconds = runner.run(w.timed_calibration(trivial.fn, n))
            elif what == "runloop":
                runner.run(w.put_round(agent, trivial, n))
                gc.collect()
                seconds = runner.run(w.timed_drain(agent))
            elif what == "put":
                seconds = runner.run(w.timed_put_round(agent, trivial, n))
                runner.run(w.drain(agent))
            else:
                raise SystemExit(f"unknown request {line!r}")
            print(repr(seconds), flush=True)
    finally:
        runner.close()


if __name__ == "__main__":
    main()
