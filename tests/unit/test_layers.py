"""The core's modules import each other in layers, never in a circle.

Bottom to top: ``_enums``, ``errors``, ``_env``, ``_frame``, ``_types``, ``_scope`` (what
everything else types against or reads) -> ``_registry`` -> ``_callable``, ``_serde``,
``_dispatch``, ``_hooks`` -> ``_context_*``, ``_tool`` -> ``_turn_metadata``, ``_turn_run``,
``_turn`` -> ``_agent_run``, ``_agent_serde``, ``_agent`` -> ``_current``, ``_execution_scope``
and the public modules. Every import counts, type-only and function-local ones included: a
reader must be able to name the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "pygents"


def _imports() -> dict[str, set[str]]:
    modules = {p.stem for p in CORE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in CORE.glob("*.py"):
        if path.stem == "__init__":
            continue
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                found |= {n for n in names if n in modules and n != "__init__"}
        graph[path.stem] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_core_has_no_import_cycle() -> None:
    graph = _imports()
    assert "_agent" in graph and "_turn" in graph  # the walk found the core
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_bottom_layer_imports_only_the_bottom_layer() -> None:
    graph = _imports()
    bottom = {"_enums", "errors", "_env", "_frame", "_types", "_scope", "_hook_list"}
    for module in bottom:
        assert graph[module] <= bottom, (module, graph[module] - bottom)
