"""Span names and attributes against the pinned semantic-conventions version.

The installed ``opentelemetry-semantic-conventions`` package defines the ``gen_ai.*`` names of
each version; the requirement levels of the GenAI agent and tool spans are written out here
from the conventions' ``gen-ai-agent-spans.md`` / ``gen-ai-spans.md`` at the pinned version.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest
from opentelemetry.semconv._incubating.attributes import error_attributes, gen_ai_attributes
from opentelemetry.semconv.schemas import Schemas

from pygents import Agent, Turn, tool
from pygents.observability import _semconv as sc

#: Required attributes per operation, semantic conventions 1.38.0 (GenAI spans; as in 1.37.0).
REQUIRED = {
    "invoke_agent": {"gen_ai.operation.name", "gen_ai.provider.name"},
    "execute_tool": {"gen_ai.operation.name"},
}
#: Conditionally required when the application provides them (pygents always can).
PROVIDED = {
    "invoke_agent": {"gen_ai.agent.name", "gen_ai.agent.description"},
    "execute_tool": {"gen_ai.tool.name", "gen_ai.tool.type"},
}


#: The installed conventions package, ``0.<minor>b<n>``: it knows the names and schemas of the
#: conventions released before it. The checks against it need one that knows ours: schema
#: 1.38.0 and every ``gen_ai.*`` name pygents writes, from 0.60b0 (SDK 1.39;
#: ``gen_ai.tool.call.arguments`` / ``.result`` came in 1.38.0). Older packages, which the SDK
#: floor (1.31, conventions 0.52b0) allows, have nothing to check them against.
CONVENTIONS = metadata.version("opentelemetry-semantic-conventions")
CONVENTIONS_MINOR = int(CONVENTIONS.split(".")[1].split("b")[0])
KNOWS_OUR_NAMES = CONVENTIONS_MINOR >= 60
needs_our_schema = pytest.mark.skipif(
    CONVENTIONS_MINOR < 60,
    reason=f"opentelemetry-semantic-conventions {CONVENTIONS} predates 0.60b0, the first "
    f"to list schema {sc.SEMCONV_VERSION}",
)
needs_our_names = pytest.mark.skipif(
    not KNOWS_OUR_NAMES,
    reason=f"opentelemetry-semantic-conventions {CONVENTIONS} predates 0.60b0, the first to "
    "define every gen_ai.* attribute pygents writes (gen_ai.tool.call.arguments, ...)",
)


def _defined_names() -> set[str]:
    names = set()
    for module in (gen_ai_attributes, error_attributes):
        names |= {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}
    return names


@needs_our_schema
def test_the_pinned_version_is_a_published_schema() -> None:
    assert sc.SCHEMA_URL == f"https://opentelemetry.io/schemas/{sc.SEMCONV_VERSION}"
    assert sc.SCHEMA_URL in {schema.value for schema in Schemas}


@needs_our_names
def test_every_gen_ai_attribute_we_write_is_defined_by_the_conventions() -> None:
    ours = {
        value
        for name, value in vars(sc).items()
        if name.isupper() and isinstance(value, str) and value.startswith(("gen_ai.", "error."))
    }
    assert ours, "no gen_ai.* constants found"
    assert ours <= _defined_names(), sorted(ours - _defined_names())


async def test_spans_carry_the_required_attributes(telemetry: Any) -> None:
    @tool()
    async def lookup(key: str) -> str:
        """Look a key up."""
        return key

    agent = Agent("librarian", "Looks things up", [lookup])
    await agent.put(Turn(lookup, kwargs={"key": "k"}))
    async for _ in agent.run():
        pass
    spans = {s.name.split(" ", 1)[0]: s for s in telemetry.finished()}
    assert set(spans) == {"invoke_agent", "execute_tool"}
    for operation, span in spans.items():
        attributes = dict(span.attributes)
        assert attributes["gen_ai.operation.name"] == operation
        missing = (REQUIRED[operation] | PROVIDED[operation]) - set(attributes)
        assert not missing, (operation, missing)
        gen_ai = {k for k in attributes if k.startswith("gen_ai.")}
        if KNOWS_OUR_NAMES:  # else: see needs_our_names
            assert gen_ai <= _defined_names(), sorted(gen_ai - _defined_names())
    assert spans["invoke_agent"].name == "invoke_agent librarian"
    assert spans["execute_tool"].name == "execute_tool lookup"
