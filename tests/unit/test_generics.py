"""Generic containers at run time (3.11-3.13) and to mypy (the typed example)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import typing
from pathlib import Path

from pygents import Agent, ContextItem, ContextPool, ContextQueue, Turn, tool

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "typed_context.py"


def test_subscripted_containers_work_at_run_time() -> None:
    queue = ContextQueue[str](limit=2)
    pool = ContextPool[int](limit=None)
    item = ContextItem[int](content=1, description="one", id="a")
    assert type(queue) is ContextQueue and type(pool) is ContextPool
    assert typing.get_origin(ContextQueue[str]) is ContextQueue
    assert typing.get_args(ContextPool[int]) == (int,)
    assert item == ContextItem(content=1, description="one", id="a")
    assert isinstance(queue, ContextQueue) and isinstance(pool, ContextPool)


async def test_subscripted_turn_runs() -> None:
    @tool()
    async def double(x: int) -> int:
        return 2 * x

    turn = Turn[int](double, kwargs={"x": 4})
    assert type(turn) is Turn
    assert await turn.returning() == 8
    assert typing.get_args(Turn[int]) == (int,)


def hinted(queue: ContextQueue[str], pool: ContextPool[int] | None, turn: Turn[str]) -> None:
    """A function whose annotations name the generic containers."""


def test_annotations_resolve() -> None:
    hints = typing.get_type_hints(hinted)
    assert hints["queue"] == ContextQueue[str]
    assert hints["pool"] == ContextPool[int] | None
    assert hints["turn"] == Turn[str]


async def test_a_parameterised_context_parameter_is_injected_and_not_in_the_schema() -> None:
    @tool()
    async def remember(topic: str, memory: ContextQueue[str], pool: ContextPool[int] | None) -> int:
        return len(memory) + (0 if pool is None else 100)

    assert list(remember.metadata.input_schema["properties"]) == ["topic"]
    agent = Agent("rememberer", "remembers", [remember])
    await agent.context_queue.append(ContextItem(content="a"))
    await agent.put(Turn("remember", kwargs={"topic": "x"}))
    assert [v async for _, v in agent.run()] == [101]


async def test_the_typed_example_runs() -> None:
    spec = importlib.util.spec_from_file_location("typed_context_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks the module up while defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert await module.main() == 42


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file=",
         "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


def test_mypy_accepts_the_typed_example_and_rejects_a_mistyped_item(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        return  # the 3.12 / 3.13 runs check behaviour only; the dev venv has mypy
    good = _mypy(str(EXAMPLE))
    assert good.returncode == 0, good.stdout
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from pygents import ContextItem, ContextQueue, Turn\n"
        "async def f(q: ContextQueue[str], t: Turn[int]) -> str:\n"
        "    await q.append(ContextItem(content=42))\n"
        "    return await t.returning()\n"
        "def g() -> None:\n"
        "    plain = ContextQueue(limit=3)  # unparameterised: no annotation needed\n"
        "    reveal_type(plain)\n"
    )
    result = _mypy(str(bad))
    assert 'Argument "content" to "ContextItem" has incompatible type "int"; expected "str"' in (
        result.stdout
    )
    assert 'Incompatible return value type (got "int", expected "str")' in result.stdout
    assert 'Revealed type is "pygents._context_queue.ContextQueue[Any]"' in result.stdout
    assert "Need type annotation" not in result.stdout
