"""``opentelemetry-instrument`` (zero-code) with pygents, in subprocesses, over real OTLP.

- ``pip install "pygents[otel]"`` is enough for ``opentelemetry-instrument python app.py`` to
  export a plain pygents program's spans: the distro that configures the SDK comes with it.
- ``configure()`` under ``opentelemetry-instrument`` uses the providers the distro made global
  (before, it built a private provider with no exporter and every pygents span was lost), says
  so, and the demo exports its spans that way.

The OTLP receiver listens on 127.0.0.1; nothing else is reached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import OTLPReceiver
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO_AGENTS = {"planner-1", "fetcher-1", "fetcher-2", "fetcher-3", "writer-1", "writer-2"}


def instrument_command() -> str:
    found = BIN / "opentelemetry-instrument"
    if found.exists():
        return str(found)
    on_path = shutil.which("opentelemetry-instrument")
    assert on_path, "opentelemetry-instrument is not installed (pygents[otel] installs it)"
    return on_path


def zero_code_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A clean environment for the child: no switch of the suite, OTLP/HTTP to ``endpoint``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "PYGENTS_"))
        and k.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        # The distro's default is grpc; the receiver speaks OTLP/HTTP.
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="zero-code",
    )
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def pygents_spans(receiver: OTLPReceiver) -> list[Any]:
    return [s for s in receiver.spans() if s.scope_name == "pygents"]


PLAIN_APP = """
    import asyncio

    from pygents import Agent, Turn, tool


    @tool()
    async def double(n: int) -> int:
        \"\"\"Double a number.\"\"\"
        return n * 2


    async def main() -> None:
        agent = Agent("plain", "a program with no telemetry code", [double])
        for i in range(3):
            await agent.put(Turn("double", kwargs={"n": i}))
        print([value async for _turn, value in agent.run()])


    asyncio.run(main())
"""


def test_opentelemetry_instrument_exports_a_plain_program(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(PLAIN_APP))
    with OTLPReceiver() as receiver:
        env = zero_code_env(receiver.endpoint)
        proc = run([instrument_command(), sys.executable, "app.py"], env, tmp_path)
        spans = pygents_spans(receiver)
        assert receiver.errors == []
    assert proc.stdout.strip() == "[0, 2, 4]"
    assert sorted(s.name for s in spans) == [*["execute_tool double"] * 3, "invoke_agent plain"]
    assert {s.resource["service.name"] for s in spans} == {"zero-code"}


SWITCHED_APP = """
    import asyncio, json

    from opentelemetry import trace

    from pygents import Turn, tool
    from pygents.observability import is_instrumented


    @tool()
    async def double(n: int) -> int:
        \"\"\"Double a number.\"\"\"
        return n * 2


    # The program's own span: the agent's pipeline works, whatever pygents does.
    with trace.get_tracer("app").start_as_current_span("app span"):
        value = asyncio.run(Turn("double", kwargs={"n": 2}).returning())
    print(json.dumps({"value": value, "instrumented": is_instrumented()}))
"""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYGENTS_TELEMETRY", "off"),
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "requests,pygents"),
    ],
)
def test_the_off_switches_win_under_opentelemetry_instrument(
    tmp_path: Path, name: str, value: str
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SWITCHED_APP))
    with OTLPReceiver() as receiver:
        env = zero_code_env(receiver.endpoint, **{name: value})
        proc = run([instrument_command(), sys.executable, "app.py"], env, tmp_path)
        spans = receiver.spans()
        assert receiver.errors == []
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts == {"value": 4, "instrumented": False}, f"{name}={value}"
    assert [s.name for s in spans if s.scope_name == "pygents"] == [], f"{name}={value}"
    # The agent's pipeline was live (nothing at all is exported with the SDK disabled).
    expected = [] if name == "OTEL_SDK_DISABLED" else ["app span"]
    assert [s.name for s in spans] == expected, f"{name}={value}"


def _closure(requirements: list[str], extra: str) -> set[str]:
    """The installed distributions that ``requirements`` (for ``extra``) pull in, recursively."""
    seen: set[str] = set()
    todo = [r for r in (Requirement(text) for text in requirements) if _wanted(r, extra)]
    while todo:
        requirement = todo.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            below = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        todo.extend(r for r in (Requirement(text) for text in below) if _wanted(r, ""))
    return seen


def _wanted(requirement: Requirement, extra: str) -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def test_the_otel_extra_brings_what_opentelemetry_instrument_needs() -> None:
    # What the command above used: the distro and configurator entry points, and the
    # exporter OTEL_TRACES_EXPORTER=otlp loads (with http/protobuf).
    needed = {
        entry.dist.name.lower()
        for group in ("opentelemetry_distro", "opentelemetry_configurator")
        for entry in entry_points(group=group)
        if entry.dist is not None
    }
    (otlp_http,) = entry_points(group="opentelemetry_traces_exporter", name="otlp_proto_http")
    assert otlp_http.dist is not None
    needed |= {otlp_http.dist.name.lower(), "opentelemetry-instrumentation", "opentelemetry-sdk"}
    assert "opentelemetry-distro" in needed
    requirements = distribution("pygents").requires or []
    missing = needed - _closure(requirements, "otel")
    assert not missing, f'pip install "pygents[otel]" does not bring {sorted(missing)}'
    # And the project file says so too (the installed metadata could be stale).
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower() for r in project["optional-dependencies"]["otel"]}
    assert "opentelemetry-distro" in declared


def test_the_demo_under_opentelemetry_instrument_exports_its_spans(tmp_path: Path) -> None:
    with OTLPReceiver() as receiver:
        # Credentials in the endpoint: used by the exporter, never printed.
        endpoint = receiver.endpoint.replace("http://", "http://demo-user:s3cr3t@")
        env = zero_code_env(endpoint, OTEL_SERVICE_NAME="zero-code-demo")
        proc = run(
            [
                instrument_command(),
                sys.executable,
                "-m",
                "pygents",
                "demo",
                "--turns",
                "20",
                "--seed",
                "1",
                "--metrics-port",
                "0",
            ],
            env,
            tmp_path,
        )
        spans = pygents_spans(receiver)
        assert receiver.errors == []
    output = proc.stdout + proc.stderr
    assert "traces:  the global tracer provider set up before configure()" in proc.stdout
    assert "Overriding of current TracerProvider" not in output
    assert "s3cr3t" not in output and "demo-user" not in output
    assert spans, f"no pygents span reached the receiver\n{output}"
    assert {s.resource["service.name"] for s in spans} == {"zero-code-demo"}
    names = {s.name for s in spans}
    assert {f"invoke_agent {agent}" for agent in DEMO_AGENTS} <= names, sorted(names)
    assert {"execute_tool plan", "execute_tool gather", "execute_tool answer"} <= names
    turns = re.search(r"finished in [\d.]+ s: (\d+) turns", proc.stdout)
    assert turns, proc.stdout
    assert sum(s.name.startswith("execute_tool ") for s in spans) >= int(turns[1])


CONFIGURE_APP = """
    import asyncio, json, logging

    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    from pygents import Turn, tool
    from pygents.observability import configure

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


    @tool()
    async def ping() -> str:
        \"\"\"Answer pong.\"\"\"
        return "pong"


    extra = InMemorySpanExporter()
    global_before = trace.get_tracer_provider()
    with configure("ignored", span_exporter=extra, prometheus_registry=CollectorRegistry()) as h:
        value = asyncio.run(Turn("ping").returning())
        facts = {
            "value": value,
            "same_provider": h.tracer_provider is global_before,
            "reused_tracer_provider": h.reused_tracer_provider,
            "reused_meter_provider": h.reused_meter_provider,
            "span_destinations": list(h.span_destinations),
        }
    facts["extra_during"] = sorted(s.name for s in extra.get_finished_spans())
    # The handle is closed: the extra exporter hears no more of the global provider ...
    with trace.get_tracer("app").start_as_current_span("after the block"):
        pass
    facts["extra_after"] = sorted(s.name for s in extra.get_finished_spans())
    # ... which still works: the distro exports that span at exit.
    facts["global_still"] = trace.get_tracer_provider() is global_before
    print(json.dumps(facts))
"""


def test_configure_under_opentelemetry_instrument_reuses_the_global_providers(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(CONFIGURE_APP))
    with OTLPReceiver() as receiver:
        env = zero_code_env(receiver.endpoint, OTEL_METRICS_EXPORTER="otlp")
        proc = run([instrument_command(), sys.executable, "app.py"], env, tmp_path)
        spans = receiver.spans()
        assert receiver.errors == []
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts == {
        "value": "pong",
        "same_provider": True,
        "reused_tracer_provider": True,
        "reused_meter_provider": True,
        "span_destinations": [
            "the global tracer provider set up before configure() (e.g. by "
            "opentelemetry-instrument)",
            "InMemorySpanExporter",
        ],
        "extra_during": ["execute_tool ping"],
        "extra_after": ["execute_tool ping"],
        "global_still": True,
    }
    # Said at INFO, for each provider.
    assert re.search(
        r"INFO pygents\.observability: .*tracer provider that was already global", proc.stderr
    )
    assert re.search(
        r"INFO pygents\.observability: .*meter provider that was already global", proc.stderr
    )
    assert "Overriding" not in proc.stderr
    # The spans went out through the distro's exporter, under its resource.
    by_name = {s.name: s for s in spans}
    assert by_name["execute_tool ping"].scope_name == "pygents"
    assert by_name["execute_tool ping"].resource["service.name"] == "zero-code"
    assert "after the block" in by_name
