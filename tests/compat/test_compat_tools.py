"""The original's tools page, re-enacted: ``docs-0.6.1/concepts/tools.md``.

Sections covered (by heading):

- "Defining tools": ``@tool()``, ``@tool(lock=True)``, the ``TypeError`` warnings, fixed
  kwargs (callables evaluated per call, call-time kwargs win *with a warning*).
- "Single-value vs streaming": ``returning()`` / ``yielding()``, ``WrongRunMethodError``.
- "Return values": the routing table (``Turn`` and ``ContextItem`` are *not yielded to the
  caller*), a generator mixing kinds.
- "Hooks": ``before_invoke`` / ``after_invoke`` / ``on_error`` / ``on_yield`` and their
  arguments; hooks' exceptions propagate.
- "Tag filtering": ``@hook(..., tags=...)`` against tagged and untagged tools.
- "Registry": ``ToolRegistry.get/all``, duplicate names, unknown names.
- "Metadata and timing": ``name``, ``description``, ``start_time``/``end_time``, ``dict()``.
- "Protocol": ``metadata``, ``fn``, ``hooks``, ``lock: asyncio.Lock | None``, ``tags``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime

import pytest

from pygents import (
    Agent,
    StopReason,
    ToolHook,
    ToolRegistry,
    Turn,
    UnregisteredToolError,
    WrongRunMethodError,
    hook,
    tool,
)
from pygents.context import ContextItem

# -- Defining tools --------------------------------------------------------------------------


def test_a_plain_tool_has_no_lock():
    @tool()
    async def lookup(key: str) -> str:
        """Look a key up."""
        return key

    assert lookup.lock is None


def test_lock_true_gives_the_tool_an_asyncio_lock():
    @tool(lock=True)
    async def save_note(path: str, text: str) -> None:
        """Write a note (serialized)."""

    assert isinstance(save_note.lock, asyncio.Lock)


async def test_the_lock_covers_the_call_but_not_the_lifecycle_hooks():
    first_inside = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []

    @tool(lock=True)
    async def exclusive(n: int) -> int:
        order.append(f"call {n}")
        if n == 1:
            first_inside.set()
            await release.wait()
        return n

    @exclusive.before_invoke
    async def announce(n: int) -> None:
        order.append(f"before_invoke {n}")

    first = asyncio.ensure_future(Turn("exclusive", args=[1]).returning())
    await first_inside.wait()
    second = asyncio.ensure_future(Turn("exclusive", args=[2]).returning())
    for _ in range(10):
        await asyncio.sleep(0)
    # The second call's BEFORE_INVOKE has run although the first call still holds the lock;
    # only the call itself waits.
    assert order == ["before_invoke 1", "call 1", "before_invoke 2"]
    release.set()
    assert await asyncio.gather(first, second) == [1, 2]
    assert order[-1] == "call 2"


def test_decorating_a_sync_function_raises_type_error():
    def not_async(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="Tool must be async"):
        tool()(not_async)


def test_fixed_kwargs_outside_the_signature_raise_type_error():
    async def narrow(x: int) -> int:
        return x

    with pytest.raises(TypeError):
        tool(colour="red")(narrow)


async def test_fixed_kwargs_are_accepted_by_a_function_with_var_kwargs():
    @tool(colour="red")
    async def wide(x: int, **extra: str) -> str:
        return f"{x}-{extra['colour']}"

    assert await Turn("wide", args=[1]).returning() == "1-red"


async def test_a_callable_fixed_kwarg_is_evaluated_at_each_invocation():
    tokens = iter(["tok-1", "tok-2"])

    @tool(token=lambda: next(tokens))
    async def call_service(endpoint: str, token: str) -> str:
        return f"{endpoint}@{token}"

    assert await Turn("call_service", args=["/a"]).returning() == "/a@tok-1"
    assert await Turn("call_service", args=["/b"]).returning() == "/b@tok-2"


async def test_call_time_kwarg_overrides_a_fixed_kwarg_with_a_warning(caplog):
    @tool(region="eu")
    async def place(order: str, region: str) -> str:
        return f"{order} in {region}"

    with caplog.at_level(logging.WARNING, logger="pygents"):
        result = await Turn("place", kwargs={"order": "o1", "region": "us"}).returning()

    assert result == "o1 in us"
    records = [r for r in caplog.records if r.name == "pygents" and r.levelno == logging.WARNING]
    assert len(records) == 1
    assert "'region'" in records[0].getMessage()
    assert "place" in records[0].getMessage()


async def test_no_warning_when_no_fixed_kwarg_is_overridden(caplog):
    @tool(region="eu")
    async def place(order: str, region: str) -> str:
        return f"{order} in {region}"

    with caplog.at_level(logging.WARNING, logger="pygents"):
        assert await Turn("place", kwargs={"order": "o2"}).returning() == "o2 in eu"
    assert [r for r in caplog.records if r.name == "pygents"] == []


# -- Single-value vs streaming -----------------------------------------------------------------


async def test_returning_runs_a_coroutine_tool():
    @tool()
    async def shorten(text: str) -> str:
        return text[:4] + "..."

    assert await Turn("shorten", args=["abcdefgh"]).returning() == "abcd..."


async def test_yielding_runs_a_generator_tool():
    @tool()
    async def split_words(text: str):
        for word in text.split():
            yield word.strip()

    assert [w async for w in Turn("split_words", args=["a b  c"]).yielding()] == ["a", "b", "c"]


async def test_returning_on_a_generator_tool_raises_wrong_run_method_error():
    @tool()
    async def ticker():
        yield 1

    with pytest.raises(WrongRunMethodError):
        await Turn("ticker").returning()


async def test_yielding_on_a_coroutine_tool_raises_wrong_run_method_error():
    @tool()
    async def single() -> int:
        return 1

    with pytest.raises(WrongRunMethodError):
        async for _ in Turn("single").yielding():
            pass


async def test_agent_picks_the_run_method_by_tool_kind(values):
    @tool()
    async def single() -> int:
        return 1

    @tool()
    async def several():
        yield 2
        yield 3

    agent = Agent("mixed", "Both kinds", [single, several])
    await agent.put(Turn("single"))
    await agent.put(Turn("several"))
    assert await values(agent) == [1, 2, 3]


# -- Return values ---------------------------------------------------------------------------


async def test_returned_turn_is_enqueued_and_not_yielded(drain):
    @tool()
    async def plan(topic: str) -> Turn:
        return Turn("respond", kwargs={"topic": topic})

    @tool()
    async def respond(topic: str) -> str:
        return f"about {topic}"

    agent = Agent("planner", "Plans", [plan, respond])
    await agent.put(Turn("plan", args=["owls"]))
    pairs = await drain(agent)
    assert [(t.tool.metadata.name, v) for t, v in pairs] == [("respond", "about owls")]


async def test_returned_item_without_id_goes_to_the_context_queue_and_is_not_yielded(values):
    @tool()
    async def remember(text: str) -> ContextItem:
        return ContextItem(content=text)

    agent = Agent("rememberer", "Remembers", [remember])
    await agent.put(Turn("remember", args=["the sky is green"]))
    assert await values(agent) == []
    assert [i.content for i in agent.context_queue.items] == ["the sky is green"]
    assert len(agent.context_pool) == 0


async def test_returned_item_with_id_goes_to_the_context_pool_and_is_not_yielded(values):
    @tool()
    async def file_away(key: str) -> ContextItem:
        return ContextItem(content={"k": key}, description=f"record {key}", id=key)

    agent = Agent("filer", "Files", [file_away])
    await agent.put(Turn("file_away", args=["r-9"]))
    assert await values(agent) == []
    assert agent.context_pool["r-9"].content == {"k": "r-9"}
    assert len(agent.context_queue) == 0


async def test_a_plain_return_value_is_yielded_to_the_caller(drain):
    @tool()
    async def shorten(text: str) -> str:
        return text[:3]

    agent = Agent("shortener", "Shortens", [shorten])
    turn = Turn("shorten", args=["abcdef"])
    await agent.put(turn)
    assert await drain(agent) == [(turn, "abc")]


async def test_a_generator_may_yield_a_mix_routed_one_by_one(values):
    @tool()
    async def mixed_stream():
        yield ContextItem(content="note")
        yield Turn("follow_up")
        yield 99

    @tool()
    async def follow_up() -> str:
        return "followed"

    agent = Agent("mixer", "Mixes", [mixed_stream, follow_up])
    first = Turn("mixed_stream")
    await agent.put(first)
    assert await values(agent) == [99, "followed"]
    assert [i.content for i in agent.context_queue.items] == ["note"]
    # turn.output still records everything the generator yielded, routed values included.
    assert first.output[0] == ContextItem(content="note")
    assert isinstance(first.output[1], Turn)
    assert first.output[2] == 99


# -- Hooks -----------------------------------------------------------------------------------


async def test_before_invoke_gets_the_tools_kwargs_and_after_invoke_its_result(
    capsys: pytest.CaptureFixture[str],
):
    @tool()
    async def triple(x: int) -> int:
        return x * 3

    @triple.before_invoke
    async def show_input(x: int) -> None:
        print(f"in x={x}")

    @triple.after_invoke
    async def show_result(result: int) -> None:
        print(f"out {result}")

    assert await Turn("triple", kwargs={"x": 4}).returning() == 12
    assert capsys.readouterr().out == "in x=4\nout 12\n"


async def test_on_error_gets_the_exception_and_after_invoke_does_not_fire():
    seen: list[object] = []

    @tool()
    async def fragile(x: int) -> int:
        raise LookupError(f"no {x}")

    @fragile.on_error
    async def record_failure(exc: Exception) -> None:
        seen.append(exc)

    @fragile.after_invoke
    async def record_success(result: int) -> None:
        seen.append("after")

    with pytest.raises(LookupError):
        await Turn("fragile", kwargs={"x": 7}).returning()
    assert len(seen) == 1
    assert isinstance(seen[0], LookupError)
    assert str(seen[0]) == "no 7"


async def test_on_error_receives_the_exception_as_keyword_exc():
    seen: dict[str, object] = {}

    @tool()
    async def fragile() -> None:
        raise KeyError("gone")

    @fragile.on_error
    async def only_keywords(**kwargs: object) -> None:
        seen.update(kwargs)

    with pytest.raises(KeyError):
        await Turn("fragile").returning()
    assert list(seen) == ["exc"]
    assert isinstance(seen["exc"], KeyError)


async def test_on_yield_sees_each_value_and_after_invoke_the_list():
    events: list[object] = []

    @tool()
    async def letters():
        yield "p"
        yield "q"

    @letters.on_yield
    async def each(value: str) -> None:
        events.append(("yield", value))

    @letters.after_invoke
    async def done(result: list[str]) -> None:
        events.append(("after", result))

    assert [v async for v in Turn("letters").yielding()] == ["p", "q"]
    assert events == [("yield", "p"), ("yield", "q"), ("after", ["p", "q"])]


async def test_after_invoke_gets_the_partial_list_on_early_break():
    received: list[list[int]] = []

    @tool()
    async def endless():
        n = 0
        while True:
            n += 1
            yield n

    @endless.after_invoke
    async def done(result: list[int]) -> None:
        received.append(list(result))

    async with contextlib.aclosing(Turn("endless").yielding()) as stream:
        async for value in stream:
            if value == 2:
                break

    assert received == [[1, 2]]


async def test_instance_tool_hook_fires_only_for_its_tool():
    calls: list[str] = []

    @tool()
    async def watched() -> int:
        return 1

    @tool()
    async def unwatched() -> int:
        return 2

    @watched.before_invoke
    async def note() -> None:
        calls.append("watched")

    await Turn("watched").returning()
    await Turn("unwatched").returning()
    assert calls == ["watched"]


async def test_an_exception_in_a_tool_hook_propagates():
    ran: list[str] = []

    @tool()
    async def guarded(x: int) -> int:
        ran.append("tool")
        return x

    @guarded.before_invoke
    async def refuse(x: int) -> None:
        if x < 0:
            raise ValueError("x must be >= 0")

    with pytest.raises(ValueError, match="x must be >= 0"):
        await Turn("guarded", args=[-1]).returning()
    assert ran == []


# -- Tag filtering ---------------------------------------------------------------------------


async def test_tag_filtered_global_hook_fires_for_tools_sharing_a_tag():
    fired: list[object] = []

    @tool(tags=["db", "net"])
    async def store(row: int) -> int:
        return row

    @tool(tags=["net"])
    async def fetch_page(url: str) -> str:
        return url

    @tool()
    async def add_one(x: int) -> int:
        return x + 1

    @hook(ToolHook.AFTER_INVOKE, tags={"net"})
    async def net_only(result: object) -> None:
        fired.append(result)

    await Turn("store", args=[5]).returning()
    await Turn("fetch_page", args=["u"]).returning()
    await Turn("add_one", args=[1]).returning()
    assert fired == [5, "u"]


async def test_global_hook_without_tags_fires_for_every_tool():
    fired: list[object] = []

    @tool(tags=["net"])
    async def tagged() -> str:
        return "t"

    @tool()
    async def untagged() -> str:
        return "u"

    @hook(ToolHook.AFTER_INVOKE)
    async def every(result: object) -> None:
        fired.append(result)

    await Turn("tagged").returning()
    await Turn("untagged").returning()
    assert fired == ["t", "u"]


async def test_instance_tool_hooks_ignore_tag_filtering():
    fired: list[str] = []

    @tool()
    async def untagged() -> str:
        return "u"

    @untagged.after_invoke
    async def mine(result: str) -> None:
        fired.append(result)

    await Turn("untagged").returning()
    assert fired == ["u"]


def test_tool_tags_are_a_frozenset():
    @tool(tags=["a", "b", "a"])
    async def tagged() -> None: ...

    @tool()
    async def plain() -> None: ...

    assert tagged.tags == frozenset({"a", "b"})
    assert plain.tags == frozenset()


# -- Registry --------------------------------------------------------------------------------


def test_the_function_name_is_the_registry_key():
    @tool()
    async def fetch_rows() -> None: ...

    assert ToolRegistry.get("fetch_rows") is fetch_rows
    assert fetch_rows in ToolRegistry.all()


def test_a_second_tool_with_a_taken_name_raises_value_error():
    @tool()
    async def dup() -> None: ...

    async def dup() -> None:  # noqa: F811 - a different function under the same name
        ...

    with pytest.raises(ValueError, match="'dup' already registered"):
        tool()(dup)


def test_an_unknown_tool_name_raises_unregistered_tool_error():
    with pytest.raises(UnregisteredToolError, match="'ghost' not found"):
        ToolRegistry.get("ghost")


def test_unregistered_tool_error_is_a_key_error():
    with pytest.raises(KeyError):
        ToolRegistry.get("ghost")


# -- Metadata and timing ---------------------------------------------------------------------


async def test_metadata_name_description_and_timing():
    @tool()
    async def measure(v: int) -> int:
        """Measure something."""
        return v

    meta = measure.metadata
    assert meta.name == "measure"
    assert meta.description == "Measure something."
    assert meta.start_time is None
    assert meta.end_time is None

    await Turn("measure", args=[1]).returning()
    assert isinstance(meta.start_time, datetime)
    assert isinstance(meta.end_time, datetime)
    assert meta.start_time <= meta.end_time
    assert measure.metadata is meta  # the same instance, updated in place


async def test_metadata_dict_has_iso_strings():
    @tool()
    async def measure(v: int) -> int:
        """Measure something."""
        return v

    await Turn("measure", args=[1]).returning()
    data = measure.metadata.dict()
    # The reference's four keys (0.6.1), and the schemas its newer docs (0.6.8) add.
    assert set(data) == {
        "name",
        "description",
        "start_time",
        "end_time",
        "input_schema",
        "output_schema",
    }
    assert data["input_schema"] == measure.metadata.input_schema
    assert data["input_schema"]["properties"] == {"v": {"type": "integer"}}
    assert data["output_schema"] == {"type": "integer"}
    data["input_schema"]["properties"].clear()  # a copy: the tool's schema is untouched
    assert measure.metadata.input_schema["properties"] == {"v": {"type": "integer"}}
    assert json.loads(json.dumps(data)) == data
    assert data["name"] == "measure"
    assert data["description"] == "Measure something."
    assert datetime.fromisoformat(data["start_time"]) == measure.metadata.start_time
    assert datetime.fromisoformat(data["end_time"]) == measure.metadata.end_time


# -- Protocol --------------------------------------------------------------------------------


async def test_a_tool_exposes_the_protocol_attributes():
    async def body(x: int) -> int:
        return x + 1

    plus_one = tool()(body)
    assert plus_one.fn is body
    assert plus_one.hooks == []
    assert plus_one.lock is None
    assert plus_one.tags == frozenset()
    assert plus_one.metadata.name == "body"
    assert await plus_one(1) == 2


# -- surplus arguments (0.6.8 docs: "Extra arguments are ignored") ---------------------------


async def test_surplus_arguments_are_ignored_on_every_way_a_tool_is_called():
    @tool()
    async def total(a: int, b: int = 0) -> int:
        return a + b

    @tool(lock=True, scale=10)
    async def scaled(a: int, scale: int) -> int:
        return a * scale

    @tool()
    async def count(n: int):
        for i in range(n):
            yield i

    @total.subtool()
    async def double(a: int) -> int:
        return 2 * a

    assert await total(1, 2, 3, extra="x") == 3  # direct call
    assert await scaled(2, extra="x") == 20  # with a lock and a fixed kwarg
    assert [v async for v in count(2, extra=1)] == [0, 1]  # a streaming tool, directly
    assert await Turn("total", kwargs={"a": 1, "b": 1, "c": 1}).returning() == 2
    assert await Turn("total.double", kwargs={"a": 4, "c": 1}).returning() == 8
    agent = Agent("surplus", "d", [total, count])
    await agent.put(Turn(total, kwargs={"a": 5, "unused": True}))
    await agent.put(Turn(count, kwargs={"n": 1, "unused": True}))
    assert [value async for _, value in agent.run()] == [5, 0]
    # Missing required parameters still raise TypeError when the tool runs.
    turn = Turn("total", kwargs={"b": 1, "c": 1})
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
        await turn.returning()
    assert turn.metadata.stop_reason is StopReason.ERROR


async def test_before_invoke_hooks_get_the_arguments_the_tool_gets():
    # The docs: BEFORE_INVOKE gets "the same positional and keyword arguments the tool itself
    # receives"; surplus ones are not among them.
    seen = []

    @tool()
    async def my_tool(x: int) -> int:
        return x * 2

    @my_tool.before_invoke
    async def audit(x: int) -> None:
        seen.append(("audit", x))

    @tool(unit="m")
    async def measure(value: int, unit: str):
        yield f"{value}{unit}"

    @hook(ToolHook.BEFORE_INVOKE)
    async def everywhere(*args, **kwargs) -> None:
        seen.append(("global", args, kwargs))

    assert await Turn("my_tool", kwargs={"x": 1, "extra": 2}).returning() == 2
    assert await Turn("my_tool", args=[3, 4]).returning() == 6
    assert [v async for v in measure(5, size=1)] == ["5m"]
    agent = Agent("audited", "d", [my_tool])
    await agent.put(Turn(my_tool, kwargs={"x": 7, "extra": 2}))
    assert [value async for _, value in agent.run()] == [14]
    assert seen == [
        ("audit", 1),
        ("global", (), {"x": 1}),
        ("audit", 3),
        ("global", (3,), {}),
        ("global", (5,), {"unit": "m"}),
        ("audit", 7),
        ("global", (), {"x": 7}),
    ]
