"""Definitions in model API shapes (OpenAI strict rules checked), subtools and doc_tree."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

import jsonschema
import pytest
from tool_types import CASES, Address, Color, Item, Point, Tree

from pygents import Agent, BaseTool, ToolRegistry, Turn, tool, turn_from_call

API_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's and Anthropic's rule for tool names


def make_tools() -> dict[str, Any]:
    @tool()
    async def weather(city: str, days: int = 1, unit: Color | None = None) -> dict[str, float]:
        """Forecast the weather.

        Args:
            city: the city's name.
            days: how many days ahead.
        """
        return {}

    @tool()
    async def ship(to: Address, parcels: list[Point], tree: Tree | None = None) -> Address:
        """Ship parcels."""
        return to

    @tool()
    async def tally(counts: dict[str, int]) -> int:
        """Add counts up (open-ended keys: not strict-able)."""
        return sum(counts.values())

    @tool()
    async def order(item: Item, rush: bool = False) -> None:
        """Order an item (maxLength: not strict-able)."""

    @tool()
    async def stock(items: list[Item]) -> None:
        """Stock items."""

    return {"weather": weather, "ship": ship, "tally": tally, "order": order}


def assert_openai_strict(schema: dict[str, Any], original: dict[str, Any]) -> None:
    """OpenAI's documented rules for strict schemas, checked on every object in ``schema``."""
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"  # the root is an object, not anyOf

    def walk(node: Any, before: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False, node
                assert sorted(node["required"]) == sorted(node["properties"]), node
                optional = set((before or {}).get("properties", {})) - set(
                    (before or {}).get("required", [])
                )
                for key in optional:  # optional -> a union with null, still required
                    prop = node["properties"][key]
                    assert {"type": "null"} in prop.get("anyOf", []) or "null" in prop.get(
                        "type", []
                    ), (key, prop)
            assert "default" not in node
            assert node != {}, "strict mode needs a type everywhere"
            for key, value in node.items():
                sub_before = (before or {}).get(key) if isinstance(before, dict) else None
                if key == "properties":
                    for name, prop in value.items():
                        walk(prop, ((before or {}).get("properties") or {}).get(name))
                elif isinstance(value, dict | list):
                    walk(value, sub_before)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, before[i] if isinstance(before, list) and i < len(before) else None)

    walk(schema, original)


async def test_openai_chat_completions_shape_in_strict_mode() -> None:
    tools = make_tools()
    [entry] = ToolRegistry.definitions("openai", names=["weather"])
    assert entry["type"] == "function"
    function = entry["function"]
    assert function["name"] == "weather"
    assert function["description"] == "Forecast the weather."
    assert function["strict"] is True
    assert_openai_strict(function["parameters"], tools["weather"].metadata.input_schema)
    assert function["parameters"]["properties"]["days"] == {
        "anyOf": [
            {"type": "integer", "description": "how many days ahead."},
            {"type": "null"},
        ]
    }
    # the tool's own schema is untouched
    assert tools["weather"].metadata.input_schema["required"] == ["city"]


async def test_strict_mode_follows_defs_and_nesting() -> None:
    tools = make_tools()
    function = tools["ship"].definition("openai")["function"]
    assert function["strict"] is True
    assert_openai_strict(function["parameters"], tools["ship"].metadata.input_schema)
    address = function["parameters"]["properties"]["to"]
    assert address["required"] == ["street", "zip"]  # zip was optional: now nullable
    assert address["properties"]["zip"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}


async def test_a_schema_strict_mode_cannot_express_is_sent_non_strict() -> None:
    tools = make_tools()
    for name in ("tally", "order"):
        function = tools[name].definition("openai")["function"]
        assert function["strict"] is False
        assert function["parameters"] == tools[name].metadata.input_schema
    assert tools["weather"].definition("openai", strict=False)["function"]["strict"] is False


async def test_strict_null_answers_become_defaults_again() -> None:
    make_tools()
    turn = turn_from_call("weather", '{"city": "Oslo", "days": null, "unit": null}')
    assert turn.kwargs == {"city": "Oslo", "unit": None}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_every_case_as_a_parameter_gives_valid_definitions(name: str) -> None:
    hint = CASES[name][0]

    async def fn(value):  # type: ignore[no-untyped-def]
        return None

    fn.__annotations__ = {"value": hint}
    made = tool()(fn)
    for style in ("openai", "openai-responses", "anthropic", "mcp"):
        entry = made.definition(style)
        schema = (
            entry.get("function", entry).get("parameters")
            or entry.get("input_schema")
            or entry.get("inputSchema")
        )
        jsonschema.Draft202012Validator.check_schema(schema)
        if style.startswith("openai") and entry.get("function", entry)["strict"]:
            assert_openai_strict(schema, made.metadata.input_schema)


async def test_responses_anthropic_and_mcp_shapes() -> None:
    tools = make_tools()
    weather = tools["weather"]
    responses = weather.definition("openai-responses")
    assert set(responses) == {"type", "name", "description", "parameters", "strict"}
    assert responses["type"] == "function" and responses["name"] == "weather"
    assert weather.definition("anthropic") == {
        "name": "weather",
        "description": "Forecast the weather.",
        "input_schema": weather.metadata.input_schema,
    }
    mcp = tools["ship"].definition("mcp")
    assert mcp["inputSchema"] == tools["ship"].metadata.input_schema
    assert mcp["outputSchema"]["type"] == "object"  # an object result: MCP can describe it
    assert "outputSchema" not in tools["tally"].definition("mcp")  # an int result: it cannot


async def test_unknown_style() -> None:
    tools = make_tools()
    with pytest.raises(ValueError, match="Unknown definition style 'gemini'"):
        tools["weather"].definition("gemini")


async def test_agent_definitions_cover_its_tools_only() -> None:
    tools = make_tools()
    agent = Agent("forecaster", "forecasts", [tools["weather"]])
    assert [d["function"]["name"] for d in agent.definitions("openai")] == ["weather"]
    assert agent.definitions() == [tools["weather"].doc_tree()]


# --------------------------------------------------------------------------- subtools


def make_tree() -> tuple[Any, Any, Any, Any]:
    @tool()
    async def manage_users() -> None:
        """Top-level user management tool."""

    @manage_users.subtool()
    async def create_user(username: str) -> str:
        """Create a new user."""
        return f"created {username}"

    @manage_users.subtool(lock=True, tags=["admin"])
    async def delete_user(username: str) -> str:
        """Delete an existing user."""
        return f"deleted {username}"

    @create_user.subtool()
    async def notify(username: str) -> str:
        """Tell the user."""
        return f"told {username}"

    return manage_users, create_user, delete_user, notify


async def test_subtools_register_under_scoped_names() -> None:
    _, create_user, delete_user, notify = make_tree()
    assert ToolRegistry.get("manage_users.create_user") is create_user
    assert ToolRegistry.get("manage_users.create_user.notify") is notify
    assert create_user.metadata.name == "create_user"  # the short name, for display
    assert create_user.__name__ == "manage_users.create_user"
    assert delete_user.lock is not None and delete_user.tags == frozenset({"admin"})
    assert isinstance(create_user, BaseTool)
    assert await Turn("manage_users.create_user", kwargs={"username": "al"}).returning() == (
        "created al"
    )


async def test_same_short_name_under_two_parents() -> None:
    make_tree()

    @tool()
    async def manage_posts() -> None:
        """Posts."""

    @manage_posts.subtool()
    async def create_user(username: str) -> str:
        return "post user"

    assert ToolRegistry.get("manage_posts.create_user") is create_user
    assert ToolRegistry.get("manage_users.create_user") is not create_user


async def test_doc_tree_and_default_definitions() -> None:
    manage_users, *_ = make_tree()
    tree = {
        "name": "manage_users",
        "description": "Top-level user management tool.",
        "subtools": [
            {
                "name": "create_user",
                "description": "Create a new user.",
                "subtools": [{"name": "notify", "description": "Tell the user.", "subtools": []}],
            },
            {"name": "delete_user", "description": "Delete an existing user.", "subtools": []},
        ],
    }
    assert manage_users.doc_tree() == tree
    assert ToolRegistry.definitions() == [tree]  # root tools only, subtools nested


async def test_subtools_in_model_shapes_and_calls() -> None:
    make_tree()
    names = [d["function"]["name"] for d in ToolRegistry.definitions("openai")]
    assert names == [
        "manage_users",
        "manage_users-create_user",
        "manage_users-delete_user",
        "manage_users-create_user-notify",
    ]
    assert all(API_NAME.match(n) for n in names)
    anthropic = [d["name"] for d in ToolRegistry.definitions("anthropic")]
    assert anthropic == names
    mcp = [d["name"] for d in ToolRegistry.definitions("mcp")]
    assert mcp[1] == "manage_users.create_user"  # MCP names may hold dots
    # the model sends the name back as it saw it
    for sent in ("manage_users-create_user", "manage_users.create_user"):
        turn = turn_from_call(sent, '{"username": "al"}')
        assert turn.tool_name == "manage_users.create_user"


async def test_an_agent_runs_and_serializes_subtool_turns() -> None:
    manage_users, create_user, delete_user, _ = make_tree()
    agent = Agent("admin", "admin", [manage_users, create_user, delete_user])
    await agent.put(agent.turn_from_call("manage_users-delete_user", {"username": "bo"}))
    data = agent.to_dict()
    assert data["tool_names"] == [
        "manage_users",
        "manage_users.create_user",
        "manage_users.delete_user",
    ]
    restored_turn = Turn.from_dict(agent.turns[0].to_dict())
    assert restored_turn.tool is delete_user
    assert [v async for _, v in agent.run()] == ["deleted bo"]


async def test_an_array_of_anything_is_sent_non_strict() -> None:
    @tool()
    async def bare(xs: list, ys: Sequence, zs: tuple) -> None:  # type: ignore[type-arg]
        """Arrays whose items can be anything: strict mode needs "items"."""

    function = bare.definition("openai")["function"]
    assert function["strict"] is False
    assert function["parameters"] == bare.metadata.input_schema


async def test_a_ref_with_a_description_is_inlined_in_strict_mode() -> None:
    # Strict mode allows no keyword beside a $ref; OpenAI's SDK inlines such a reference.
    @tool()
    async def plant(root: Annotated[Tree, "the root node"]) -> None:
        """Plant a tree."""

    function = plant.definition("openai")["function"]
    assert function["strict"] is True
    parameters = function["parameters"]
    assert_openai_strict(parameters, plant.metadata.input_schema)
    root = parameters["properties"]["root"]
    assert "$ref" not in root and root["description"] == "the root node"
    assert root["type"] == "object" and root["additionalProperties"] is False

    def refs_with_siblings(node: Any) -> list[Any]:
        if isinstance(node, dict):
            here = [node] if "$ref" in node and len(node) > 1 else []
            return here + [r for v in node.values() for r in refs_with_siblings(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs_with_siblings(v)]
        return []

    assert refs_with_siblings(parameters) == []
    tree = {"value": 1, "children": [{"value": 2, "children": None}]}
    turn = turn_from_call("plant", {"root": tree})
    assert turn.kwargs["root"] == Tree(1, [Tree(2)])


@pytest.mark.parametrize("default", [float("inf"), float("nan"), [1.0, float("-inf")]])
async def test_a_default_that_is_not_json_is_left_out(default: Any) -> None:
    @tool()
    async def bound(x: float, hi: Any = default) -> None: ...

    assert "default" not in bound.metadata.input_schema["properties"]["hi"]
    for style in ("anthropic", "mcp", "openai"):
        json.dumps(bound.definition(style, strict=False), allow_nan=False)  # strict JSON


@pytest.mark.parametrize("style", ["openai", "openai-responses", "anthropic"])
async def test_a_name_those_apis_refuse_is_a_clear_error(style: str) -> None:
    @tool()
    async def météo(city: str) -> None: ...

    with pytest.raises(ValueError, match=r"Tool 'météo' cannot be described for .*rename"):
        météo.definition(style)
    assert météo.definition("mcp")["name"] == "météo"  # MCP allows it


async def test_an_agents_subtool_without_its_parent_is_a_root_of_its_doc_tree() -> None:
    delete_user = make_tree()[2]

    @tool()
    async def ping() -> None:
        """Ping."""

    agent = Agent("ops", "", [ping, delete_user])
    assert [entry["name"] for entry in agent.definitions()] == ["ping", "delete_user"]
