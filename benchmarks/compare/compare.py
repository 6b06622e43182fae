"""Side by side: the same trivial N-step tool workload on pygents and its peers.

Usage::

    python benchmarks/compare/compare.py --setup      # create the peer virtualenvs (once)
    python benchmarks/compare/compare.py              # measure, print and write the table

Each implementation runs in its own interpreter (``run_*.py`` in this directory), in its
own virtualenv under /tmp (never committed): the published ``pygents`` (it needs Python
3.12+), LangGraph, Pydantic AI and the OpenAI Agents SDK. This tree runs in the current
interpreter (with the telemetry extras, for its "tracing on" row) and, for a same-interpreter
comparison with the published package, on Python 3.12 from ``src/`` with nothing else
installed. A step is one trivial tool call plus whatever the framework does to decide and
dispatch the next one (see the "a step is" column). Every run: warm-up runs, then repeats;
the table shows the median time per step. An implementation that cannot be installed or
run is listed with the reason, not dropped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def find_python(version: str) -> str | None:
    """An interpreter for ``version`` (e.g. "3.12"): pyenv's newest, else pythonX.Y on PATH."""
    if shutil.which("pyenv"):
        out = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        found = sorted(
            (v for v in out if v == version or v.startswith(version + ".")),
            key=lambda v: [int(p) for p in v.split(".") if p.isdigit()],
        )
        if found:
            path = subprocess.run(
                ["pyenv", "which", "python"],
                capture_output=True,
                text=True,
                env=dict(os.environ, PYENV_VERSION=found[-1]),
                check=False,
            ).stdout.strip()
            if path:
                return path
    return shutil.which(f"python{version}")


@dataclass
class Impl:
    label: str
    runner: str
    step: str
    venv: str | None = None  # a virtualenv under /tmp, created by --setup
    packages: list[str] = field(default_factory=list)
    base_python: str = "3.11"
    python: str | None = None  # use this interpreter instead of a venv
    env: dict[str, str] = field(default_factory=dict)
    tracing: tuple[str, ...] = ("off", "on")
    tracing_note: str = ""

    def interpreter(self) -> str | None:
        if self.python is not None:
            return self.python
        assert self.venv is not None
        path = Path(self.venv) / "bin" / "python"
        return str(path) if path.exists() else None


PYGENTS_STEP = "tool returns the next `Turn`; routed (`put`), queued, run, value yielded"


def implementations(args: argparse.Namespace) -> list[Impl]:
    py312 = find_python("3.12")
    return [
        Impl(
            "pygents (this tree)",
            "run_pygents.py",
            PYGENTS_STEP,
            python=sys.executable,
            env={"PYTHONPATH": str(ROOT / "src")},
            tracing_note="on: OTel SDK tracer, batch processor, discarding exporter",
        ),
        Impl(
            "pygents (this tree, Python 3.12, no extras)",
            "run_pygents.py",
            PYGENTS_STEP,
            python=py312,
            env={"PYTHONPATH": str(ROOT / "src")},
            tracing=("off",),
        ),
        Impl(
            "pygents (published, PyPI)",
            "run_pygents.py",
            PYGENTS_STEP,
            venv=f"{args.venvs}/venv-ref",
            packages=["pygents"],
            base_python="3.12",
            tracing=("off",),
            tracing_note="it has no tracing",
        ),
        Impl(
            "LangGraph",
            "run_langgraph.py",
            "one node runs (calls the tool function), state update, conditional edge back",
            venv=f"{args.venvs}/venv-langgraph",
            packages=["langgraph"],
            tracing_note="on: LangSmith tracer to a local HTTP sink, flushed per run",
        ),
        Impl(
            "Pydantic AI",
            "run_pydantic_ai.py",
            "`FunctionModel` request (local), tool call validated and run, history grows",
            venv=f"{args.venvs}/venv-pydanticai",
            packages=["pydantic-ai-slim", "opentelemetry-sdk"],
            tracing_note="on: its OTel instrumentation, SDK tracer, discarding exporter",
        ),
        Impl(
            "OpenAI Agents SDK",
            "run_openai_agents.py",
            "fake `Model` call (local), `function_tool` run, history grows",
            venv=f"{args.venvs}/venv-oaiagents",
            packages=["openai-agents"],
            tracing_note="on: its own tracing, processors replaced by a dropping one",
        ),
    ]


def setup(impl: Impl) -> str | None:
    """Create the virtualenv and install the packages; return an error or None."""
    if impl.venv is None or impl.interpreter() is not None:
        return None
    base = find_python(impl.base_python)
    if base is None:
        return f"no Python {impl.base_python} interpreter found"
    print(f"creating {impl.venv} (Python {impl.base_python}): pip install {impl.packages}")
    steps = [
        [base, "-m", "venv", impl.venv],
        [f"{impl.venv}/bin/python", "-m", "pip", "install", "-q", *impl.packages],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1200)
        if done.returncode != 0:
            shutil.rmtree(impl.venv, ignore_errors=True)
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            return f"install failed: {tail[0][:200]}"
    return None


def repeats_for(steps: int, repeats: int) -> int:
    """Short runs are noisier: repeat them more (at least 1,000 steps in all)."""
    return max(repeats, -(-1000 // steps))


def run_one(impl: Impl, steps: int, tracing: str, args: argparse.Namespace) -> dict[str, Any]:
    python = impl.interpreter()
    if python is None:
        where = impl.venv or f"Python {impl.base_python}"
        return {"error": f"not installed ({where}); run with --setup"}
    cmd = [
        python,
        str(HERE / impl.runner),
        "--steps",
        str(steps),
        "--repeats",
        str(repeats_for(steps, args.repeats)),
        "--warmup",
        str(args.warmup),
        "--tracing",
        tracing,
    ]
    env = dict(os.environ, **impl.env)
    env.pop("PYGENTS_TELEMETRY", None)
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=args.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    tail = (done.stderr or "no output").strip().splitlines()[-1:] or ["?"]
    return {"error": f"exit {done.returncode}: {tail[0][:200]}"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"n/a: {result['error']}"
    return f"{result['median_us']:,.1f}"


def table(rows: list[tuple[Impl, str, dict[int, dict[str, Any]]]], steps: list[int]) -> str:
    head = ["implementation", "version", "Python", "tracing"]
    head += [f"µs/step, N={n:,}" for n in steps]
    head += ["a step is"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for impl, tracing, by_steps in rows:
        ok = next((r for r in by_steps.values() if "error" not in r), {})
        trace = tracing
        if impl.tracing_note and (tracing == "on" or "on" not in impl.tracing):
            trace = f"{tracing} ({impl.tracing_note.removeprefix('on: ')})"
        cells = [impl.label, ok.get("version", "-"), ok.get("python", "-"), trace]
        cells += [fmt(by_steps[n]) for n in steps]
        cells.append(impl.step)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create missing virtualenvs")
    parser.add_argument("--venvs", default="/tmp", help="where the virtualenvs live")
    parser.add_argument("--steps", default="10,100", help="comma-separated N (default 10,100)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per run")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]

    impls = implementations(args)
    setup_errors: dict[str, str] = {}
    if args.setup:
        for impl in impls:
            error = setup(impl)
            if error:
                setup_errors[impl.label] = error

    rows: list[tuple[Impl, str, dict[int, dict[str, Any]]]] = []
    for impl in impls:
        for tracing in ("off", "on"):
            by_steps: dict[int, dict[str, Any]] = {}
            for n in steps:
                if impl.label in setup_errors:
                    by_steps[n] = {"error": setup_errors[impl.label]}
                elif tracing not in impl.tracing:
                    by_steps[n] = {"error": impl.tracing_note or "not measured"}
                else:
                    by_steps[n] = run_one(impl, n, tracing, args)
                print(f"{impl.label:45} tracing={tracing:3} N={n:<6} {fmt(by_steps[n])}")
            if tracing in impl.tracing or tracing == "off":
                rows.append((impl, tracing, by_steps))

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            f"Measured {when} on {os.cpu_count()} x {cpu_model()}, {platform.system()} "
            f"{platform.release()}; per N, the median of "
            f"{', '.join(f'{repeats_for(n, args.repeats)} runs (N={n})' for n in steps)} "
            f"after {args.warmup} warm-up runs; command: `python benchmarks/compare/compare.py`.",
            "",
            table(rows, steps),
            "",
        ]
    )
    print()
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
