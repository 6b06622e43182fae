"""Documented usage passes ``mypy --strict``, and clear misuse does not (``py.typed`` ships).

Each line of ``GOOD`` is a pattern from the docs that a strict type checker once rejected.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, assert_type

from pygents import (
    Agent,
    ContextQueue,
    Hook,
    HookRegistry,
    Service,
    Tool,
    ToolRegistry,
    Turn,
    TurnHook,
    tool,
    turn_from_call,
)


@tool()
async def square(x: int) -> int:
    return x * x


@tool()
async def words(text: str) -> AsyncIterator[str]:  # a stream annotated AsyncIterator
    yield text


@tool()
async def letters(text: str) -> AsyncIterable[str]:
    yield text


@tool()
async def chunks(text: str) -> AsyncGenerator[str, None]:
    yield text


@tool(greeting="Hello", punctuation="!")  # fixed kwargs fill two parameters
async def greet(name: str, greeting: str, punctuation: str) -> str:
    return f"{greeting}, {name}{punctuation}"


@tool()
async def remember(note: str, memory: ContextQueue | None = None) -> str:
    return note


@square.subtool(unit="cm")
async def scaled(x: int, unit: str) -> str:
    return f"{x}{unit}"


async def main(turn_hooks: list[Hook]) -> None:
    said: str = await greet("Ada")  # the result type is kept
    n: int = await square(3)
    await remember("x")
    sub: str = await scaled(2)
    TOOLS = [square, words]  # both kinds in one list
    agent = Agent("worker", "works", TOOLS)
    turn_from_call("square", {"x": 1}, tools=TOOLS)
    Turn(TOOLS[0], kwargs={"x": 1})
    defs: list[dict[str, Any]] = [t.definition("openai") for t in agent.tools]
    tree: dict[str, Any] = ToolRegistry.get("square").doc_tree()
    registered: list[Tool] = [square, letters, chunks]
    for t in registered:
        t.before_invoke
        t.fn
    service = Service([agent])
    for served in service.agents:
        served.description
        served.context_queue
    turn = Turn(square, kwargs={"x": 2})
    assert_type(await turn.returning(), int)  # a turn of a tool object: the tool's result
    async for value in Turn(words, kwargs={"text": "a"}).yielding():
        assert_type(value, str)
    fields: dict[str, Any] = dataclasses.asdict(turn.metadata)
    copy = dataclasses.replace(turn.metadata, stop_reason=None)
    async for word in words("a b"):
        word.upper()
    assert_type(HookRegistry.get_by_type(TurnHook.BEFORE_RUN), Hook | None)
    found = assert_type(HookRegistry.get_by_type(TurnHook.BEFORE_RUN, turn_hooks), list[Hook])
    kept: ContextQueue[str] = ContextQueue(limit=3)
    branched = assert_type(kept.branch(), ContextQueue[str])  # keeps the item type
    print(said, n, sub, defs, tree, fields, copy, branched, found)
"""

BAD = """
from pygents import Service, tool
from pygents.observability import instrument


@tool()
async def square(x: int) -> int:
    return x * x


async def main() -> None:
    await square("x")
    Service(["not an agent"])
    instrument(tracer_provider="otel")
"""


def _mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file=",
         "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is in the dev extra")
    folder = tmp_path_factory.mktemp("typing")
    (folder / "good.py").write_text(GOOD)
    (folder / "bad.py").write_text(BAD)
    return _mypy(folder / "good.py").stdout, _mypy(folder / "bad.py").stdout


def test_documented_usage_passes_mypy_strict(checked: tuple[str, str]) -> None:
    good, _bad = checked
    assert "Success: no issues found" in good, good


def test_misuse_is_caught(checked: tuple[str, str]) -> None:
    _good, bad = checked
    assert 'Argument 1 to "__call__" of "CoroutineTool" has incompatible type "str"' in bad, bad
    assert 'List item 0 has incompatible type "str"; expected "Agent"' in bad, bad
    assert 'Argument "tracer_provider" to "instrument" has incompatible type' in bad, bad
