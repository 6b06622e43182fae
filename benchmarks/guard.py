"""The CI performance guard: per-turn costs as ratios to a calibration, against budgets.

Absolute times differ by machine and run; ratios measured in one process do not (much).
The calibration is a bare ``await`` of the same trivial coroutine the benchmarks' tool
wraps, under ``async with asyncio.timeout(60)``. Each guarded benchmark is measured in many
short rounds interleaved with calibration rounds (so a slow spell of the machine hits both),
and ``ratio = median(benchmark) / median(calibration)`` is compared with the ``max_ratio``
of ``benchmarks/budgets.toml``.

"Telemetry installed but off" is compared with "not installed" directly: both run in
worker subprocesses (``_worker.py``; "not installed" hides the telemetry packages with a
meta-path blocker), several of each, with their rounds interleaved.

Budgets marked ``enforce = false`` are measured and printed (OVER BUDGET when over) but do
not fail the run. Exit status: 0 when every enforced budget holds, 1 otherwise.

Usage::

    python benchmarks/guard.py                      # everything (about 10-30 s)
    python benchmarks/guard.py --only run_loop,turn_put
    python benchmarks/guard.py --slowdown 2         # inject a 2x slower run loop (must fail)
    python benchmarks/guard.py --json out.json      # also write the results as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# The guard's own process is "telemetry installed but off": import pygents without
# auto-instrumentation, and turn telemetry on only explicitly (instrument()).
os.environ["PYGENTS_TELEMETRY"] = "off"

import _workloads as w  # noqa: E402

#: Benchmarks the guard knows, in the order they are measured and printed.
GUARDED = (
    "run_loop",
    "turn_put",
    "installed_off_vs_not_installed",
    "telemetry_sdk",
    "telemetry_sdk_prometheus",
    "telemetry_sdk_prometheus_metrics",
    "floor_sdk_span",
    "floor_sdk_span_4_histograms",
)
TELEMETRY = {
    "telemetry_sdk": "sdk",
    "telemetry_sdk_prometheus": "sdk_prometheus",
    "telemetry_sdk_prometheus_metrics": "sdk_prometheus_metrics",
}
#: Environment variable with the same effect as --slowdown (read only by this script).
SLOWDOWN_ENV = "PYGENTS_BENCH_SLOWDOWN"


def median_us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


# -- the injected slowdown (for proving the guard catches regressions) ------------------


@contextmanager
def injected_slowdown(factor: float, measure: Callable[[], float]) -> Iterator[str]:
    """Make the run loop ``factor`` times slower per turn, without touching ``src/``.

    Adds busy work to each turn, sized so that the run loop's per-turn cost becomes
    ``factor`` times the unpatched one (``measure()`` returns that per-turn cost), at the run
    loop's per-turn calls: ``run_returning`` (a turn with hooks) and ``get_frame`` (the start
    of a bare turn, which the run loop runs inline), both looked up in ``pygents._agent_run``.
    """
    import pygents._agent_run as agent_module

    original = agent_module.run_returning
    original_get_frame = agent_module.get_frame
    base = measure()
    spin = 0.0

    def busy() -> None:
        if spin:
            end = time.perf_counter() + spin
            while time.perf_counter() < end:
                pass

    async def slowed(turn: Any, agent: Any) -> Any:
        result = await original(turn, agent)
        busy()
        return result

    def slowed_get_frame() -> Any:
        frame = original_get_frame()
        busy()
        return frame

    agent_module.run_returning = slowed
    agent_module.get_frame = slowed_get_frame
    try:
        wrapped = measure()  # the wrapper's own cost counts towards the slowdown
        spin = max(0.0, factor * base - wrapped)
        after = measure()
        spin = max(0.0, spin + factor * base - after)  # one correction for busy-wait overshoot
        after = measure()
        yield (
            f"injected slowdown x{factor:g}: run loop {base * 1e6:.2f} us/turn -> "
            f"{after * 1e6:.2f} us/turn (wrapper {wrapped * 1e6:.2f} + busy wait "
            f"{spin * 1e6:.2f} us)"
        )
    finally:
        agent_module.run_returning = original
        agent_module.get_frame = original_get_frame


# -- measurements -----------------------------------------------------------------------


class Core:
    """Calibration, run loop and Turn+put, interleaved round by round in this process."""

    def __init__(self, runner: asyncio.Runner, n: int) -> None:
        self.runner = runner
        self.n = n
        self.tool = w.trivial_tool()
        self.agent = w.agent_with([self.tool])

    def calibration(self) -> float:
        return self.runner.run(w.timed_calibration(self.tool.fn, self.n)) / self.n

    def put(self) -> float:
        return self.runner.run(w.timed_put_round(self.agent, self.tool, self.n)) / self.n

    def drain(self) -> float:
        return self.runner.run(w.timed_drain(self.agent)) / self.n

    def run_loop_once(self) -> float:
        self.runner.run(w.put_round(self.agent, self.tool, self.n))
        return self.drain()

    def run_loop_median(self, rounds: int = 15) -> float:
        values = []
        for _ in range(rounds):
            gc.collect()
            values.append(self.run_loop_once())
        return statistics.median(values)

    def measure(self, rounds: int, warmup: int = 5) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"calibration": [], "turn_put": [], "run_loop": []}
        for r in range(warmup + rounds):
            gc.collect()
            steps: list[Callable[[], None]] = [
                lambda: out["calibration"].append(self.calibration()),
                lambda: (out["turn_put"].append(self.put()), out["run_loop"].append(self.drain())),
            ]
            if r % 2:
                steps.reverse()
            for step in steps:
                step()
            if r < warmup:
                for values in out.values():
                    values.clear()
        return out


_WARMUP = 2  # rounds of each telemetry measurement that are not counted


def _timed_rounds(
    runner: asyncio.Runner,
    agent: Any,
    tool_: Any,
    yardstick: Callable[[int], Any],
    flush: Callable[[], None],
    rounds: int,
    n: int,
) -> dict[str, Any]:
    """Calibration, Turn+put and drain per turn, interleaved round by round; medians."""
    calib: list[float] = []
    puts: list[float] = []
    drains: list[float] = []
    for r in range(_WARMUP + rounds):
        gc.collect()
        c = runner.run(w.timed_calibration(yardstick, n)) / n
        p = runner.run(w.timed_put_round(agent, tool_, n)) / n
        d = runner.run(w.timed_drain(agent)) / n
        flush()  # export outside the timed part; the next calibration is clean
        if r >= _WARMUP:
            calib.append(c)
            puts.append(p)
            drains.append(d)
    return {
        "calibration_us": median_us(calib),
        "median_us": median_us(drains),
        "put_us": median_us(puts),
        "ratio": statistics.median(drains) / statistics.median(calib),
    }


def measure_telemetry(runner: asyncio.Runner, mode: str, rounds: int, n: int) -> dict[str, Any]:
    """Run-loop cost per turn with one telemetry mode on, with its own calibration rounds."""
    trivial = w.trivial_tool()
    agent = w.agent_with([trivial])
    with w.TelemetryMode(mode) as telemetry:
        result = _timed_rounds(runner, agent, trivial, trivial.fn, telemetry.flush, rounds, n)
        exported = telemetry.exported
    produced = (_WARMUP + rounds) * (n + 1)  # one span per turn, one per run()
    w.forget(agent)
    result["spans"] = f"{exported}/{produced} spans exported"
    return result


def measure_floor(runner: asyncio.Runner, metrics: bool, rounds: int, n: int) -> dict[str, Any]:
    """The contract's SDK work per turn done by the tool itself, no hooks (``SdkFloor``)."""
    floor = w.SdkFloor(metrics)
    agent = w.agent_with([floor.tool])
    yardstick = w.trivial_tool().fn  # the calibration awaits the usual trivial coroutine
    try:
        return _timed_rounds(runner, agent, floor.tool, yardstick, floor.flush, rounds, n)
    finally:
        floor.close()
        w.forget(agent)


def measure_installed_off(passes: int, n: int, processes: int = 3) -> dict[str, Any]:
    """Run loop in "installed but off" vs "not installed" worker processes.

    ``processes`` workers of each kind, created alternately. Each pass runs one round on
    every worker, in a shuffled order; the pass's ratio is median(installed-off rounds) /
    median(not-installed rounds) of that pass, so both sides of a ratio were measured within
    a few tens of milliseconds of each other. The result is the median over passes.
    """
    workers: list[w.Worker] = []
    try:
        for i in range(processes):
            pair = ["not_installed", "installed_off"]
            workers.extend(w.Worker(mode) for mode in (pair if i % 2 == 0 else pair[::-1]))
        hellos = {wk.hello["mode"]: wk.hello for wk in workers}
        if hellos["not_installed"]["opentelemetry_importable"]:
            raise RuntimeError("the not-installed worker can still import opentelemetry")
        if not hellos["installed_off"]["opentelemetry_importable"]:
            return {"skipped": "opentelemetry is not installed in this environment"}
        off = hellos["installed_off"]
        if off["instrumented"] or off["telemetry_modules_loaded"]:
            raise RuntimeError(f"the installed-but-off worker loaded telemetry: {off}")
        for wk in workers:  # warm-up
            wk("runloop", n)
        rng = random.Random(20240601)
        pooled: dict[str, list[float]] = {"not_installed": [], "installed_off": []}
        ratios = []
        for _ in range(passes):
            order = workers[:]
            rng.shuffle(order)
            this_pass: dict[str, list[float]] = {"not_installed": [], "installed_off": []}
            for wk in order:
                this_pass[wk.hello["mode"]].append(wk("runloop", n))
            for mode, values in this_pass.items():
                pooled[mode].extend(values)
            ratios.append(
                statistics.median(this_pass["installed_off"])
                / statistics.median(this_pass["not_installed"])
            )
    finally:
        for wk in workers:
            wk.close()
    return {
        "not_installed_us": median_us(pooled["not_installed"]),
        "median_us": median_us(pooled["installed_off"]),
        "ratio": statistics.median(ratios),
    }


# -- budgets and the report -------------------------------------------------------------


def load_budgets(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    budgets = {k: v for k, v in data.items() if isinstance(v, dict) and "max_ratio" in v}
    for name, budget in budgets.items():
        budget.setdefault("enforce", True)
        budget.setdefault("kind", "calibration")
        if budget["kind"] not in ("calibration", "relative"):
            raise SystemExit(f"{path}: [{name}] kind must be 'calibration' or 'relative'")
    return budgets


def judge(result: dict[str, Any], budget: dict[str, Any] | None) -> str:
    if "skipped" in result:
        return "SKIPPED"
    if budget is None:
        return "info"
    if result["ratio"] <= budget["max_ratio"]:
        return "ok"
    return "FAIL" if budget["enforce"] else "OVER BUDGET (not enforced)"


def report(
    results: dict[str, dict[str, Any]], budgets: dict[str, dict[str, Any]], calib_us: float
) -> tuple[str, bool]:
    header = (
        f"{'benchmark':34} {'median':>9} {'ratio':>7} {'max':>7} {'budget':>16}  status",
        f"{'':34} {'us/op':>9} {'':>7} {'ratio':>7} {'(this run, us)':>16}",
    )
    lines = [*header, "-" * 96]
    lines.append(
        f"{'calibration (await+timeout)':34} {calib_us:9.2f} {1:7.3f} {'':>7} {'':>16}  "
        f"(the yardstick)"
    )
    failed = False
    for name in GUARDED:
        if name not in results:
            continue
        result = results[name]
        budget = budgets.get(name)
        status = judge(result, budget)
        result["status"] = status
        failed |= status == "FAIL"
        if "skipped" in result:
            lines.append(
                f"{name:34} {'':>9} {'':>7} {'':>7} {'':>16}  SKIPPED: {result['skipped']}"
            )
            continue
        if budget is None:
            max_ratio = limit = ""
        elif budget["kind"] == "relative":
            max_ratio = f"{budget['max_ratio']:.3f}"
            limit = f"{budget['max_ratio'] * result['not_installed_us']:.2f}"
        else:
            max_ratio = f"{budget['max_ratio']:.3f}"
            cal = result.get("calibration_us", calib_us)
            limit = f"{budget['max_ratio'] * cal:.2f}"
        lines.append(
            f"{name:34} {result['median_us']:9.2f} {result['ratio']:7.3f} {max_ratio:>7} "
            f"{limit:>16}  {status}"
        )
    notes = []
    if (
        "installed_off_vs_not_installed" in results
        and "skipped" not in results["installed_off_vs_not_installed"]
    ):
        r = results["installed_off_vs_not_installed"]
        notes.append(
            f"installed_off_vs_not_installed: ratio = installed-off / not-installed run loop, "
            f"median of paired passes over 3+3 worker processes ({r['median_us']:.2f} vs "
            f"{r['not_installed_us']:.2f} us/turn)"
        )
    for name in TELEMETRY:
        if name in results:
            r = results[name]
            notes.append(
                f"{name}: own calibration {r['calibration_us']:.2f} us; Turn+put "
                f"{r['put_us']:.2f} us/turn; {r['spans']}"
            )
    if "floor_sdk_span" in results and "skipped" not in results["floor_sdk_span"]:
        notes.append(
            "floor_sdk_span[_4_histograms]: no hooks; the tool itself makes the SDK span of "
            "the contract (and records 4 SDK histograms) through the SDK's public API: the floor "
            "of that path, not of a bridge that builds finished spans directly"
        )
    return "\n".join(lines + (["", *notes] if notes else [])), failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated benchmarks (default: all)")
    parser.add_argument("--rounds", type=int, default=101, help="core rounds (default 101)")
    parser.add_argument("--n", type=int, default=2000, help="operations per core round")
    parser.add_argument("--telemetry-rounds", type=int, default=15)
    parser.add_argument("--telemetry-n", type=int, default=1000)
    parser.add_argument("--slowdown", type=float, default=float(os.environ.get(SLOWDOWN_ENV, 1)))
    parser.add_argument("--budgets", type=Path, default=HERE / "budgets.toml")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    selected = list(GUARDED) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = set(selected) - set(GUARDED)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(GUARDED)}")
    budgets = load_budgets(args.budgets)

    started = time.perf_counter()
    print(
        f"pygents performance guard: Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; budgets from {args.budgets.name}"
    )
    results: dict[str, dict[str, Any]] = {}
    runner = asyncio.Runner()
    try:
        core = Core(runner, args.n)
        with contextmanager(_maybe_slowdown)(args.slowdown, core) as note:
            if note:
                print(note)
            samples = core.measure(args.rounds)
        calib = statistics.median(samples["calibration"])
        for name in ("run_loop", "turn_put"):
            if name in selected:
                value = statistics.median(samples[name])
                results[name] = {"median_us": value * 1e6, "ratio": value / calib}
        if "installed_off_vs_not_installed" in selected:
            results["installed_off_vs_not_installed"] = measure_installed_off(
                passes=max(11, args.rounds // 3), n=args.n
            )
        telemetry_runs: list[tuple[str, Callable[[int, int], dict[str, Any]]]] = [
            *((name, partial(measure_telemetry, runner, mode)) for name, mode in TELEMETRY.items()),
            ("floor_sdk_span", partial(measure_floor, runner, False)),
            ("floor_sdk_span_4_histograms", partial(measure_floor, runner, True)),
        ]
        for name, measure in telemetry_runs:
            if name in selected:
                try:
                    results[name] = measure(args.telemetry_rounds, args.telemetry_n)
                except ImportError as exc:
                    results[name] = {"skipped": f"telemetry packages missing ({exc.name})"}
    finally:
        runner.close()

    table, failed = report(results, budgets, calib * 1e6)
    print(table)
    elapsed = time.perf_counter() - started
    print(f"\n{'FAILED' if failed else 'passed'} ({elapsed:.0f} s)")
    if failed:
        for name, result in results.items():
            if result.get("status") == "FAIL":
                print(
                    f"FAIL {name}: ratio {result['ratio']:.3f} > max_ratio "
                    f"{budgets[name]['max_ratio']:.3f} ({budgets[name].get('description', '')})"
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "calibration_us": calib * 1e6,
                    "slowdown": args.slowdown,
                    "results": results,
                    "failed": failed,
                },
                indent=2,
            )
        )
    return 1 if failed else 0


def _maybe_slowdown(factor: float, core: Core) -> Iterator[str]:
    if factor == 1:
        yield ""
        return
    with injected_slowdown(factor, core.run_loop_median) as note:
        yield note


if __name__ == "__main__":
    sys.exit(main())
