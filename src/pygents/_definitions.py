"""Tool definitions in the shapes model APIs take, as plain dicts (no client imported).

Styles:

- ``"openai"``: Chat Completions ``tools`` entries,
  ``{"type": "function", "function": {"name", "description", "parameters", "strict"}}``;
- ``"openai-responses"``: Responses API entries,
  ``{"type": "function", "name", "description", "parameters", "strict"}``;
- ``"anthropic"``: Messages API entries, ``{"name", "description", "input_schema"}``;
- ``"mcp"``: MCP ``tools/list`` entries, ``{"name", "description", "inputSchema"}`` (plus
  ``outputSchema`` when the tool returns an object).

OpenAI and Anthropic names allow only ``[a-zA-Z0-9_-]``: a subtool ``parent.child`` is sent as
``parent-child`` there (``turn_from_call`` maps it back); MCP keeps the dot.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any, Literal

__all__ = ["STYLES", "Style", "definition", "doc_tree", "strict_schema"]

Style = Literal["openai", "openai-responses", "anthropic", "mcp"]
STYLES: tuple[str, ...] = ("openai", "openai-responses", "anthropic", "mcp")

# Keywords OpenAI's strict mode accepts (its "supported schemas" page); anything else, or an
# object with open-ended keys, means the tool is sent with ``strict: false``.
_STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "anyOf", "enum",
        "const", "$ref", "$defs", "description", "title", "default", "minItems", "maxItems",
        "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "multipleOf",
    }
)  # fmt: skip


def _name(tool: Any) -> str:
    name = getattr(tool, "__name__", None)
    return name if isinstance(name, str) else tool.metadata.name


def _summary(tool: Any) -> str:
    spec = tool.metadata.spec
    return str(spec.summary) if spec is not None else (tool.metadata.description or "")


def definition(tool: Any, style: str, *, strict: bool = True) -> dict[str, Any]:
    """Return ``tool`` described in one model API's tool shape (see the module docstring).

    Args:
        tool: the tool.
        style: ``"openai"``, ``"openai-responses"``, ``"anthropic"`` or ``"mcp"``.
        strict: for the OpenAI styles, ask for strict mode where the schema allows it.

    Raises:
        ValueError: ``style`` is not one of those, or (OpenAI, Anthropic) the tool's name
            does not fit their rule for names (letters, digits, ``_`` and ``-``, at most 64).
    """
    name = _name(tool)
    summary = _summary(tool)
    schema = tool.metadata.input_schema
    if style in ("openai", "openai-responses"):
        made = strict_schema(schema) if strict else None
        body: dict[str, Any] = {"name": _api_name(name, style)}
        if summary:
            body["description"] = summary
        body["parameters"] = made if made is not None else copy.deepcopy(schema)
        body["strict"] = made is not None
        if style == "openai":
            return {"type": "function", "function": body}
        return {"type": "function", **body}
    if style == "anthropic":
        out: dict[str, Any] = {"name": _api_name(name, style)}
        if summary:
            out["description"] = summary
        out["input_schema"] = copy.deepcopy(schema)
        return out
    if style == "mcp":
        out = {"name": name}
        if summary:
            out["description"] = summary
        out["inputSchema"] = copy.deepcopy(schema)
        output = tool.metadata.output_schema
        if output.get("type") == "object":  # MCP requires an object schema here
            out["outputSchema"] = copy.deepcopy(output)
        return out
    raise ValueError(
        f"Unknown definition style {style!r}: use one of {', '.join(map(repr, STYLES))}, "
        f"or None for doc_tree() entries"
    )


_API_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _api_name(name: str, style: str) -> str:
    """``name`` as OpenAI and Anthropic take it (``parent-child``), or a clear error.

    The API would refuse the whole request; this names the tool that does not fit.
    """
    sent = name.replace(".", "-")
    if not _API_NAME.fullmatch(sent):
        raise ValueError(
            f"Tool {name!r} cannot be described for {style!r}: its name is sent as "
            f"{sent!r}, and names there are 1 to 64 letters (a-z, A-Z), digits, '_' or '-'; "
            f"rename the tool (or its parent)"
        )
    return sent


def definitions(
    tools: Iterable[Any], style: str | None, *, strict: bool = True
) -> list[dict[str, Any]]:
    """Describe ``tools``: ``doc_tree()`` of the root ones (style None), else every one."""
    tools = list(tools)
    if style is None:
        # The roots among them: a subtool whose parent is not among them is one too.
        among = {id(t) for t in tools}
        return [doc_tree(t) for t in tools if id(getattr(t, "parent", None)) not in among]
    return [definition(t, style, strict=strict) for t in tools]


def doc_tree(tool: Any) -> dict[str, Any]:
    """Return ``{"name", "description", "subtools": [...]}`` for ``tool``, recursively."""
    return {
        "name": tool.metadata.name,
        "description": tool.metadata.description,
        "subtools": [doc_tree(sub) for sub in getattr(tool, "subtools", ())],
    }


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``schema`` rewritten for OpenAI's strict mode, or None when it cannot be.

    Strict mode wants every object closed (``additionalProperties: false``) with every
    property required; an optional property becomes required and nullable (a union with
    null; its default is dropped, and ``turn_from_call`` reads null as "use the default").
    A schema with open-ended keys (``dict[str, T]``), tuples, sets, an array of anything
    (``list``, ``{}`` items), or the permissive ``{}`` cannot be strict. A ``$ref`` with other
    keywords beside it (a description) is replaced by what it refers to, as OpenAI's own SDK
    does (strict mode allows no sibling keywords to a ``$ref``).
    """
    schema = copy.deepcopy(schema)
    try:
        return _strict(schema, _Refs(schema.get("$defs", {})))  # type: ignore[no-any-return]
    except _NotStrict:
        return None


class _NotStrict(Exception):
    pass


class _Refs:
    """The ``$defs`` a schema's ``$ref`` point to, and the ones being inlined."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = copy.deepcopy(defs)  # as written, before the rewrite
        self.inlining: set[str] = set()


def _strict(node: Any, refs: _Refs) -> Any:
    if not isinstance(node, dict) or not node:
        raise _NotStrict
    if set(node) - _STRICT_KEYWORDS:
        raise _NotStrict
    ref = node.get("$ref")
    if ref is not None and len(node) > 1:
        name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
        if name not in refs.defs or name in refs.inlining:
            raise _NotStrict
        node.pop("$ref")
        merged = {**copy.deepcopy(refs.defs[name]), **node}
        refs.inlining.add(name)
        try:
            return _strict(merged, refs)
        finally:
            refs.inlining.discard(name)
    node.pop("default", None)
    if "$defs" in node:
        node["$defs"] = {k: _strict(v, refs) for k, v in node["$defs"].items()}
    if "anyOf" in node:
        node["anyOf"] = [_strict(o, refs) for o in node["anyOf"]]
    if "items" in node:
        node["items"] = _strict(node["items"], refs)
    kind = node.get("type")
    if kind == "array" and "items" not in node:
        raise _NotStrict  # an array of anything (a bare list): strict mode needs "items"
    if kind == "object" or "properties" in node:
        # No "additionalProperties" (a Pydantic model's default) closes the object, as
        # OpenAI's own SDK does: such a model ignores extra keys, so none need be sent.
        if node.get("additionalProperties", False) is not False or "properties" not in node:
            raise _NotStrict
        node["additionalProperties"] = False
        was_required = set(node.get("required", ()))
        properties = {}
        for key, prop in node["properties"].items():
            prop = _strict(prop, refs)
            if key not in was_required and not _nullable(prop):
                prop = {"anyOf": [prop, {"type": "null"}]}
            properties[key] = prop
        node["properties"] = properties
        node["required"] = list(properties)
    elif "type" not in node and not ({"anyOf", "enum", "const", "$ref"} & node.keys()):
        raise _NotStrict
    return node


def _nullable(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_nullable(o) for o in schema.get("anyOf", ()))
