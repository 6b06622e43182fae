"""The public surface: names, __all__, exception tree, hook enums, zero dependencies, py.typed."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import json
import os
import subprocess
import sys
import types
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

import pygents
import pygents.context
from pygents import (
    Agent,
    AgentHook,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    StopReason,
    ToolHook,
    Turn,
    TurnHook,
    tool,
)

# The "Public API" table of seed 001.
SEED_PUBLIC_API = [
    # core classes
    "Agent",
    "Turn",
    "ContextQueue",
    "ContextPool",
    # decorators
    "tool",
    "hook",
    # enums
    "StopReason",
    "TurnHook",
    "AgentHook",
    "ToolHook",
    "ContextQueueHook",
    "ContextPoolHook",
    # protocols
    "Tool",
    "Hook",
    # metadata
    "ToolMetadata",
    "HookMetadata",
    # registries
    "ToolRegistry",
    "AgentRegistry",
    "HookRegistry",
    # exceptions
    "SafeExecutionError",
    "WrongRunMethodError",
    "TurnTimeoutError",
    "UnregisteredToolError",
    "UnregisteredAgentError",
    "UnregisteredHookError",
]


@pytest.mark.parametrize("name", SEED_PUBLIC_API)
def test_seed_public_name_importable_and_listed(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from pygents import {name}", namespace)
    assert namespace[name] is getattr(pygents, name)
    assert name in pygents.__all__


def test_context_item_importable_from_pygents_context() -> None:
    from pygents.context import ContextItem

    item = ContextItem(content="x", id="i", description="d")
    assert (item.content, item.id, item.description) == ("x", "i", "d")


def test_pygents_context_exports() -> None:
    assert set(pygents.context.__all__) == {"ContextItem", "ContextPool", "ContextQueue"}
    for name in pygents.context.__all__:
        assert getattr(pygents.context, name) is getattr(pygents, name)


def test_all_is_sorted() -> None:
    assert list(pygents.__all__) == sorted(pygents.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(pygents.__all__) == len(set(pygents.__all__))


@pytest.mark.parametrize("module_name", ["pygents", "pygents.context", "pygents.errors"])
def test_all_entries_resolve(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists missing {name!r}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from pygents import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(pygents.__all__)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(pygents).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        # ``from __future__ import annotations`` binds a feature flag, not an API
        and type(value).__module__ != "__future__"
    }
    missing = public - set(pygents.__all__)
    assert not missing, f"public names missing from __all__: {sorted(missing)}"


def test_public_objects_have_docstrings() -> None:
    for name in pygents.__all__:
        obj = getattr(pygents, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"pygents.{name} has no docstring"


# --------------------------------------------------------------------------- exceptions

EXCEPTION_BASES = {
    "SafeExecutionError": RuntimeError,
    "WrongRunMethodError": TypeError,
    "TurnTimeoutError": TimeoutError,
    "UnregisteredToolError": LookupError,
    "UnregisteredAgentError": LookupError,
    "UnregisteredHookError": LookupError,
    "SerializationError": ValueError,
    "ToolCallError": ValueError,
    "CheckpointError": ValueError,  # a SerializationError
    "CheckpointStoreError": OSError,
}


def test_pygents_error_is_exception() -> None:
    assert issubclass(pygents.PygentsError, Exception)
    assert pygents.PygentsError is pygents.errors.PygentsError


@pytest.mark.parametrize(("name", "builtin"), sorted(EXCEPTION_BASES.items()))
def test_exception_hierarchy(name: str, builtin: type[Exception]) -> None:
    cls = getattr(pygents, name)
    assert cls is getattr(pygents.errors, name)
    assert issubclass(cls, pygents.PygentsError)
    assert issubclass(cls, builtin)
    # catchable both ways
    with pytest.raises(pygents.PygentsError):
        raise cls("x")
    with pytest.raises(builtin):
        raise cls("x")


def test_unregistered_errors_are_key_errors_without_quoted_messages() -> None:
    # KeyError subclasses, as the original's (so LookupError too), printed without quotes.
    for name in ("UnregisteredToolError", "UnregisteredAgentError", "UnregisteredHookError"):
        cls = getattr(pygents, name)
        assert issubclass(cls, KeyError) and issubclass(cls, LookupError)
        assert str(cls("'x' not found")) == "'x' not found"


def test_public_submodules_of_the_original_exist() -> None:
    from pygents.agent import Agent
    from pygents.hooks import hook
    from pygents.registry import HookRegistry
    from pygents.tool import AsyncGenTool
    from pygents.turn import Turn

    assert Agent is pygents.Agent
    assert Turn is pygents.Turn
    assert AsyncGenTool is pygents.AsyncGenTool
    assert hook is pygents.hook
    assert HookRegistry is pygents.HookRegistry
    # ``pygents.tool`` stays the decorator, as the submodule shares its name.
    assert pygents.tool is pygents._tool.tool


def test_import_pygents_alone_makes_the_public_submodules_attributes() -> None:
    # `import pygents` then `pygents.context.ContextPool` (no import of the submodule): a
    # fresh interpreter, as this one has imported them all by now.
    code = (
        "import pygents\n"
        "for name in ('agent', 'context', 'errors', 'hooks', 'registry', 'turn'):\n"
        "    getattr(pygents, name)\n"
        "assert pygents.context.ContextPool is pygents.ContextPool\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_errors_module_all_lists_every_exception() -> None:
    defined = {
        name
        for name, value in vars(pygents.errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == "pygents.errors"
    }
    assert defined == set(pygents.errors.__all__)
    assert defined == {"PygentsError", *EXCEPTION_BASES}


def test_turn_timeout_error_carries_turn() -> None:
    assert pygents.TurnTimeoutError("late").turn is None


# --------------------------------------------------------------------------- enums

HOOK_ENUMS = [TurnHook, AgentHook, ToolHook, ContextQueueHook, ContextPoolHook]


@pytest.mark.parametrize("enum", HOOK_ENUMS, ids=lambda e: e.__name__)
def test_hook_enum_values_are_method_names(enum: type[Enum]) -> None:
    for member in enum:
        assert member.value == member.name.lower()


def test_hook_enums_are_plain_enums_and_never_equal_across_families() -> None:
    assert TurnHook.ON_ERROR != ToolHook.ON_ERROR
    assert TurnHook.ON_ERROR.value == ToolHook.ON_ERROR.value == "on_error"
    assert ContextQueueHook.BEFORE_CLEAR != ContextPoolHook.BEFORE_CLEAR
    assert ContextQueueHook.ON_EVICT != ContextPoolHook.ON_EVICT
    for enum in HOOK_ENUMS:
        assert not issubclass(enum, str)
        for member in enum:
            assert member != member.value
    assert len({m for e in HOOK_ENUMS for m in e}) == sum(len(e) for e in HOOK_ENUMS)


def test_stop_reason_is_str_enum() -> None:
    assert {r.value for r in StopReason} == {"completed", "timeout", "error", "cancelled"}
    assert StopReason.COMPLETED == "completed"
    assert isinstance(StopReason.TIMEOUT, str)
    assert StopReason("cancelled") is StopReason.CANCELLED
    assert json.loads(json.dumps({"r": StopReason.ERROR})) == {"r": "error"}


def _hook_owners() -> list[tuple[type[Enum], Any, list[Enum]]]:
    @tool()
    async def api_coro() -> None:
        pass

    @tool()
    async def api_gen() -> Any:
        yield 1

    agent = Agent("api_agent", "d", [api_coro])
    return [
        (TurnHook, Turn(api_coro), list(TurnHook)),
        (AgentHook, agent, list(AgentHook)),
        (ToolHook, api_coro, [h for h in ToolHook if h is not ToolHook.ON_YIELD]),
        (ToolHook, api_gen, list(ToolHook)),
        (ContextQueueHook, ContextQueue(limit=1), list(ContextQueueHook)),
        (ContextPoolHook, ContextPool(), list(ContextPoolHook)),
    ]


def test_every_hook_type_has_an_instance_decorator_of_the_same_name() -> None:
    for _, owner, members in _hook_owners():
        for member in members:
            decorator = getattr(owner, member.value)

            async def fn(*args: Any, **kwargs: Any) -> None:
                pass

            fn.__name__ = f"h_{type(owner).__name__}_{member.value}"
            attached = decorator(fn)
            assert owner.hooks[-1] is attached
            assert tuple(attached.metadata.types) == (member,)


# --------------------------------------------------------------------------- dependencies

_IMPORT_PROBE = """
import json, sys
if sys.argv[1] == "hidden":
    # Simulate a machine without the telemetry extras installed.
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("opentelemetry", "prometheus_client"):
                raise ModuleNotFoundError(name)
            return None
    sys.meta_path.insert(0, Block())
before = set(sys.modules)
import pygents, pygents.context, pygents.testing
after = set(sys.modules)
print(json.dumps({"new": sorted(after - before), "all": sorted(after)}))
"""


@pytest.mark.parametrize(
    ("mode", "env"),
    [
        ("hidden", {}),  # extras not installed: nothing to import
        ("installed", {"PYGENTS_TELEMETRY": "off"}),  # installed but switched off
        ("installed", {"OTEL_SDK_DISABLED": "true"}),
        ("installed", {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "flask,pygents"}),
    ],
)
def test_import_pulls_in_only_the_standard_library(mode: str, env: dict[str, str]) -> None:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("PYGENTS_TELEMETRY", "OTEL_SDK_DISABLED", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS")
    }
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, mode],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**clean, **env},
    )
    report = json.loads(proc.stdout)
    telemetry = [m for m in report["all"] if m.startswith(("opentelemetry", "prometheus_client"))]
    assert telemetry == []
    foreign = [
        m
        for m in report["new"]
        if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "pygents"
    ]
    assert foreign == []
    assert "pygents" in report["new"]


def test_py_typed_ships_in_package() -> None:
    package_dir = Path(pygents.__file__).parent
    assert (package_dir / "py.typed").is_file()
    assert importlib.resources.files("pygents").joinpath("py.typed").is_file()
