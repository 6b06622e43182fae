"""Tests of @tool: decoration, fixed kwargs, registry, metadata, lock, hooks, injection."""

import asyncio
import types
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Optional

import pytest

from pygents import (
    Agent,
    ContextPool,
    ContextQueue,
    StopReason,
    ToolRegistry,
    Turn,
    UnregisteredToolError,
    tool,
)

# --------------------------------------------------------------------------- helpers


class Gauge:
    """Counts how many callers are inside a section at once."""

    def __init__(self):
        self.now = 0
        self.max = 0

    def enter(self):
        self.now += 1
        self.max = max(self.max, self.now)

    def exit(self):
        self.now -= 1


async def run_agent(agent):
    return [value async for _, value in agent.run()]


# --------------------------------------------------------------------------- decoration


async def test_bare_decorator_on_coroutine_function():
    @tool
    async def double(x):
        return x * 2

    assert double.is_generator is False
    assert ToolRegistry.get("double") is double
    assert await double(4) == 8


async def test_decorator_with_parentheses_on_coroutine_function():
    @tool()
    async def triple(x):
        return x * 3

    assert triple.is_generator is False
    assert ToolRegistry.get("triple") is triple
    assert await triple(2) == 6


async def test_bare_decorator_on_async_generator():
    @tool
    async def count(n):
        for i in range(n):
            yield i

    assert count.is_generator is True
    assert ToolRegistry.get("count") is count
    assert [v async for v in count(3)] == [0, 1, 2]


async def test_decorator_with_parentheses_on_async_generator():
    @tool()
    async def letters(word):
        for ch in word:
            yield ch

    assert letters.is_generator is True
    assert ToolRegistry.get("letters") is letters
    assert [v async for v in letters("ab")] == ["a", "b"]


def _sync_function(x):
    return x


def _sync_generator(n):
    yield from range(n)


@pytest.mark.parametrize(
    "fn",
    [_sync_function, lambda x: x, _sync_generator],
    ids=["sync-function", "lambda", "sync-generator"],
)
@pytest.mark.parametrize("form", ["bare", "parentheses"])
def test_non_async_callables_are_rejected(fn, form):
    with pytest.raises(TypeError):
        if form == "bare":
            tool(fn)
        else:
            tool()(fn)
    assert ToolRegistry.all() == []


def test_tool_decorator_keeps_function_identity():
    @tool()
    async def documented(x):
        """Say something."""
        return x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Say something."


# --------------------------------------------------------------------------- fixed kwargs


async def test_fixed_kwargs_are_merged_into_every_call():
    @tool(greeting="hello")
    async def greet(name, greeting):
        return f"{greeting} {name}"

    assert await greet("bob") == "hello bob"
    assert await greet(name="ann") == "hello ann"


async def test_call_time_kwargs_override_fixed_kwargs():
    @tool(greeting="hello")
    async def greet(name, greeting):
        return f"{greeting} {name}"

    assert await greet("bob", greeting="hi") == "hi bob"
    # The override does not stick: the next call gets the fixed value again.
    assert await greet("bob") == "hello bob"


async def test_fixed_kwargs_apply_to_turns_too():
    @tool(greeting="hello")
    async def greet(name, greeting):
        return f"{greeting} {name}"

    assert await Turn(greet, kwargs={"name": "eve"}).returning() == "hello eve"
    assert await Turn(greet, kwargs={"name": "eve", "greeting": "yo"}).returning() == "yo eve"


async def test_callable_fixed_kwargs_are_evaluated_at_each_call():
    calls = []

    def fresh_token():
        calls.append(1)
        return f"token-{len(calls)}"

    @tool(token=fresh_token)
    async def use_token(token):
        return token

    assert calls == []  # not evaluated at decoration time
    assert await use_token() == "token-1"
    assert await use_token() == "token-2"
    assert len(calls) == 2


async def test_callable_fixed_kwargs_are_evaluated_per_call_in_generator_tools():
    calls = []

    def source():
        calls.append(1)
        return len(calls)

    @tool(n=source)
    async def emit(n):
        yield n

    assert [v async for v in emit()] == [1]
    assert [v async for v in emit()] == [2]
    assert len(calls) == 2


def test_fixed_kwarg_not_in_signature_is_rejected():
    with pytest.raises(TypeError):

        @tool(unknown=1)
        async def strict(x):
            return x

    assert ToolRegistry.all() == []


async def test_fixed_kwarg_accepted_when_function_takes_var_kwargs():
    @tool(extra=1)
    async def loose(x, **kwargs):
        return x, kwargs

    assert await loose(5) == (5, {"extra": 1})


def test_fixed_kwarg_matching_keyword_only_parameter_is_accepted():
    @tool(mode="fast")
    async def kw_only(x, *, mode):
        return x, mode

    assert ToolRegistry.get("kw_only") is kw_only


# --------------------------------------------------------------------------- registry


def test_duplicate_tool_name_raises_value_error():
    @tool()
    async def clash():
        return 1

    with pytest.raises(ValueError, match="clash"):

        @tool()  # type: ignore[no-redef]
        async def clash():
            return 2

    assert ToolRegistry.get("clash")  # the first one is still there


def test_tool_registry_get_all_clear():
    @tool()
    async def first():
        return 1

    @tool()
    async def second():
        yield 2

    assert ToolRegistry.get("first") is first
    assert ToolRegistry.get("second") is second
    assert ToolRegistry.all() == [first, second]
    ToolRegistry.clear()
    assert ToolRegistry.all() == []
    with pytest.raises(UnregisteredToolError):
        ToolRegistry.get("first")


def test_tool_registry_unregister():
    @tool()
    async def gone():
        return 1

    @tool()
    async def stays():
        return 2

    ToolRegistry.unregister("gone")
    assert ToolRegistry.all() == [stays]
    with pytest.raises(UnregisteredToolError):
        ToolRegistry.get("gone")
    with pytest.raises(UnregisteredToolError):
        ToolRegistry.unregister("gone")

    # The name is free again.
    @tool()
    async def gone():  # noqa: F811
        return 3

    assert ToolRegistry.get("gone") is gone


def test_unregistered_tool_error_is_a_lookup_error():
    with pytest.raises(LookupError, match="nope"):
        ToolRegistry.get("nope")
    assert issubclass(UnregisteredToolError, LookupError)


def test_turn_by_unknown_tool_name_raises_unregistered_tool_error():
    with pytest.raises(UnregisteredToolError):
        Turn("does_not_exist")


# --------------------------------------------------------------------------- tags and metadata


def test_tags_are_stored_as_frozenset():
    @tool(tags=["io", "storage", "io"])
    async def write():
        return None

    assert isinstance(write.tags, frozenset)
    assert write.tags == frozenset({"io", "storage"})


def test_tags_default_to_empty_frozenset():
    @tool()
    async def plain():
        return None

    assert plain.tags == frozenset()
    assert isinstance(plain.tags, frozenset)


def test_metadata_name_and_description():
    @tool()
    async def fetch(url):
        """Fetch a page.

        Returns its text.
        """
        return url

    @tool()
    async def undocumented():
        return None

    assert fetch.metadata.name == "fetch"
    assert fetch.metadata.description == "Fetch a page.\n\nReturns its text."
    assert undocumented.metadata.description is None
    assert fetch.metadata.start_time is None
    assert fetch.metadata.end_time is None


def _assert_utc(value):
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


async def test_metadata_times_are_set_by_a_direct_invocation():
    @tool()
    async def nap():
        await asyncio.sleep(0.01)
        return "ok"

    before = datetime.now(UTC)
    await nap()
    after = datetime.now(UTC)
    start, end = nap.metadata.start_time, nap.metadata.end_time
    _assert_utc(start)
    _assert_utc(end)
    assert before - timedelta(seconds=1) <= start <= end <= after + timedelta(seconds=1)
    assert end - start >= timedelta(seconds=0.005)


async def test_metadata_times_are_set_for_generator_tools_and_turns():
    @tool()
    async def stream():
        yield 1
        await asyncio.sleep(0.01)
        yield 2

    @tool()
    async def plain():
        return 1

    assert [v async for v in stream()] == [1, 2]
    _assert_utc(stream.metadata.start_time)
    _assert_utc(stream.metadata.end_time)
    assert stream.metadata.end_time >= stream.metadata.start_time

    await Turn(plain).returning()
    _assert_utc(plain.metadata.start_time)
    _assert_utc(plain.metadata.end_time)
    assert plain.metadata.end_time >= plain.metadata.start_time


async def test_metadata_times_describe_the_last_invocation():
    @tool()
    async def nap():
        await asyncio.sleep(0.01)

    await nap()
    first_end = nap.metadata.end_time
    await nap()
    assert nap.metadata.start_time >= first_end
    assert nap.metadata.end_time >= nap.metadata.start_time


async def test_metadata_dict():
    @tool()
    async def described():
        """Describe me."""
        return None

    d = described.metadata.dict()
    assert d["name"] == "described"
    assert d["description"] == "Describe me."
    assert d["start_time"] is None
    assert d["end_time"] is None

    await described()
    d = described.metadata.dict()
    for key in ("start_time", "end_time"):
        value = d[key]
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert value == getattr(described.metadata, key)


# --------------------------------------------------------------------------- lock


def _make_tracked_tool(gauge, lock, name):
    async def body(i):
        gauge.enter()
        try:
            await asyncio.sleep(0.01)
            return i
        finally:
            gauge.exit()

    body.__name__ = body.__qualname__ = name
    return tool(lock=lock)(body)


async def test_lock_true_serialises_concurrent_invocations():
    gauge = Gauge()
    locked = _make_tracked_tool(gauge, True, "locked")
    results = await asyncio.gather(*(locked(i) for i in range(5)))
    assert results == [0, 1, 2, 3, 4]
    assert gauge.max == 1


async def test_lock_false_allows_concurrent_invocations():
    gauge = Gauge()
    free = _make_tracked_tool(gauge, False, "free")
    await asyncio.gather(*(free(i) for i in range(5)))
    assert gauge.max == 5


async def test_lock_serialises_concurrent_turns():
    gauge = Gauge()
    locked = _make_tracked_tool(gauge, True, "locked_turns")
    turns = [Turn(locked, args=[i]) for i in range(4)]
    assert await asyncio.gather(*(t.returning() for t in turns)) == [0, 1, 2, 3]
    assert gauge.max == 1


async def test_lock_on_generator_tool_is_held_until_the_generator_finishes():
    gauge = Gauge()

    @tool(lock=True)
    async def stream(n):
        gauge.enter()
        try:
            for i in range(n):
                await asyncio.sleep(0.005)
                yield i
        finally:
            gauge.exit()

    async def consume():
        out = []
        async for v in stream(3):
            await asyncio.sleep(0.005)  # consumer time between values: lock still held
            out.append(v)
        return out

    assert await asyncio.gather(consume(), consume(), consume()) == [[0, 1, 2]] * 3
    assert gauge.max == 1


async def test_lock_on_generator_tool_is_released_on_early_break():
    @tool(lock=True)
    async def stream():
        for i in range(10):
            yield i

    async with aclosing(stream()) as values:
        async for v in values:
            if v == 1:
                break
    # Would hang (and time out) if the lock were still held.
    result = await asyncio.wait_for(_collect(stream()), 1)
    assert result == list(range(10))


async def _collect(agen):
    return [v async for v in agen]


async def test_lock_is_released_when_the_tool_raises():
    @tool(lock=True)
    async def fails(x):
        if x:
            raise RuntimeError("boom")
        return "ok"

    with pytest.raises(RuntimeError):
        await fails(1)
    assert await asyncio.wait_for(fails(0), 1) == "ok"


async def test_hooks_run_outside_the_lock():
    in_body = asyncio.Event()
    release = asyncio.Event()
    hook_seen = {1: asyncio.Event(), 2: asyncio.Event()}

    @tool(lock=True)
    async def guarded(i):
        in_body.set()
        await release.wait()
        return i

    @guarded.before_invoke
    async def mark(i):
        hook_seen[i].set()

    first = asyncio.create_task(guarded(1))
    await asyncio.wait_for(in_body.wait(), 1)
    second = asyncio.create_task(guarded(2))
    # Call 1 holds the lock, yet call 2's before_invoke hook runs.
    await asyncio.wait_for(hook_seen[2].wait(), 1)
    assert not first.done()
    release.set()
    assert await asyncio.gather(first, second) == [1, 2]


# --------------------------------------------------------------------------- instance hooks


async def test_before_invoke_receives_the_caller_arguments():
    seen = []

    @tool(fixed="F")
    async def combine(a, b, fixed, cq: ContextQueue | None = None):
        return a + b + fixed

    @combine.before_invoke
    async def record(*args, **kwargs):
        seen.append((args, kwargs))

    assert await combine("x", b="y") == "xyF"
    # What the tool itself receives: the fixed kwarg merged, the context injected (None here:
    # no turn is running, so there is no agent context to inject).
    assert seen == [(("x",), {"fixed": "F", "b": "y", "cq": None})]


async def test_before_invoke_receives_the_turn_arguments():
    seen = []

    @tool()
    async def add(a, b):
        return a + b

    @add.before_invoke
    async def record(*args, **kwargs):
        seen.append((args, kwargs))

    assert await Turn(add, args=[1], kwargs={"b": 2}).returning() == 3
    assert seen == [((1,), {"b": 2})]


async def test_after_invoke_receives_the_return_value():
    seen = []

    @tool()
    async def double(x):
        return x * 2

    @double.after_invoke
    async def record(result):
        seen.append(result)

    assert await double(21) == 42
    assert seen == [42]


async def test_generator_hooks_on_yield_and_after_invoke():
    events = []

    @tool()
    async def stream(n):
        for i in range(n):
            yield i

    @stream.on_yield
    async def per_value(value):
        events.append(("yield", value))

    @stream.after_invoke
    async def done(values):
        events.append(("after", values))

    assert [v async for v in stream(3)] == [0, 1, 2]
    assert events == [("yield", 0), ("yield", 1), ("yield", 2), ("after", [0, 1, 2])]


async def test_generator_after_invoke_gets_partial_list_on_early_break():
    after = []
    body_finished = []

    @tool()
    async def stream():
        try:
            for i in range(100):
                yield i
        finally:
            body_finished.append(True)

    @stream.after_invoke
    async def done(values):
        after.append(values)

    async with aclosing(stream()) as values:
        async for v in values:
            if v == 2:
                break
    assert after == [[0, 1, 2]]
    assert body_finished == [True]


async def test_generator_after_invoke_gets_partial_list_when_a_turn_is_abandoned():
    after = []

    @tool()
    async def stream():
        for i in range(100):
            yield i

    @stream.after_invoke
    async def done(values):
        after.append(values)

    turn = Turn(stream)
    async with aclosing(turn.yielding()) as values:
        async for v in values:
            if v == 1:
                break
    assert after == [[0, 1]]


async def test_on_error_receives_the_exception_and_after_invoke_does_not_fire():
    errors, after = [], []
    boom = ValueError("boom")

    @tool()
    async def fails():
        raise boom

    @fails.on_error
    async def on_err(exc):
        errors.append(exc)

    @fails.after_invoke
    async def done(result):
        after.append(result)

    with pytest.raises(ValueError) as info:
        await fails()
    assert info.value is boom
    assert errors == [boom]
    assert after == []


async def test_on_error_is_called_with_exc_keyword():
    calls = []

    @tool()
    async def fails():
        raise KeyError("k")

    @fails.on_error
    async def on_err(*args, **kwargs):
        calls.append((args, kwargs))

    with pytest.raises(KeyError):
        await fails()
    assert len(calls) == 1
    args, kwargs = calls[0]
    assert args == ()
    assert set(kwargs) == {"exc"}
    assert isinstance(kwargs["exc"], KeyError)


async def test_generator_on_error_fires_and_after_invoke_does_not():
    errors, after, yielded = [], [], []

    @tool()
    async def stream():
        yield 1
        raise RuntimeError("mid-stream")

    @stream.on_yield
    async def per_value(value):
        yielded.append(value)

    @stream.on_error
    async def on_err(exc):
        errors.append(exc)

    @stream.after_invoke
    async def done(values):
        after.append(values)

    received = []
    with pytest.raises(RuntimeError, match="mid-stream"):
        async for v in stream():
            received.append(v)  # noqa: PERF401 (the list must survive the exception)
    assert received == [1]
    assert yielded == [1]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert after == []


async def test_before_invoke_veto_prevents_the_call():
    ran, errors, after = [], [], []
    veto = PermissionError("not allowed")

    @tool()
    async def guarded(x):
        ran.append(x)
        return x

    @guarded.before_invoke
    async def check(x):
        if x < 0:
            raise veto

    @guarded.on_error
    async def on_err(exc):
        errors.append(exc)

    @guarded.after_invoke
    async def done(result):
        after.append(result)

    with pytest.raises(PermissionError) as info:
        await guarded(-1)
    assert info.value is veto
    assert ran == []
    assert errors == [veto]
    assert after == []

    assert await guarded(1) == 1
    assert ran == [1]
    assert after == [1]


async def test_before_invoke_veto_on_generator_tool():
    ran, errors = [], []

    @tool()
    async def stream():
        ran.append(True)
        yield 1

    @stream.before_invoke
    async def check():
        raise PermissionError("no")

    @stream.on_error
    async def on_err(exc):
        errors.append(exc)

    with pytest.raises(PermissionError):
        async for _ in stream():
            pass
    assert ran == []
    assert len(errors) == 1


async def test_before_invoke_veto_inside_a_turn_ends_it_with_error():
    ran = []

    @tool()
    async def guarded():
        ran.append(True)

    @guarded.before_invoke
    async def check():
        raise PermissionError("no")

    turn = Turn(guarded)
    with pytest.raises(PermissionError):
        await turn.returning()
    assert ran == []
    assert turn.metadata.stop_reason == StopReason.ERROR


async def test_instance_hooks_fire_only_for_their_own_tool():
    seen = []

    @tool()
    async def one():
        return 1

    @tool()
    async def two():
        return 2

    @one.after_invoke
    async def record(result):
        seen.append(result)

    await one()
    await two()
    assert seen == [1]


# --------------------------------------------------------------------------- direct invocation


async def test_direct_invocation_of_a_coroutine_tool():
    @tool()
    async def power(base, exp=2):
        await asyncio.sleep(0)
        return base**exp

    assert await power(3) == 9
    assert await power(2, exp=3) == 8


async def test_direct_invocation_of_a_generator_tool():
    @tool()
    async def countdown(n):
        while n:
            await asyncio.sleep(0)
            yield n
            n -= 1

    assert [v async for v in countdown(3)] == [3, 2, 1]


# --------------------------------------------------------------------------- context injection


async def test_context_queue_and_pool_are_injected_inside_an_agent():
    seen = {}

    @tool()
    async def inspect_context(cq: ContextQueue, pool: ContextPool):
        seen["cq"], seen["pool"] = cq, pool
        return "done"

    agent = Agent("injected", "d", [inspect_context])
    await agent.put(Turn(inspect_context))
    assert await run_agent(agent) == ["done"]
    assert seen["cq"] is agent.context_queue
    assert seen["pool"] is agent.context_pool


async def test_injection_into_generator_tool_inside_an_agent():
    @tool()
    async def stream(cq: ContextQueue, pool: ContextPool | None = None):
        yield cq
        yield pool

    agent = Agent("gen-injected", "d", [stream])
    await agent.put(Turn(stream))
    assert await run_agent(agent) == [agent.context_queue, agent.context_pool]


async def test_custom_context_instances_of_the_agent_are_injected():
    cq, pool = ContextQueue(limit=3), ContextPool(limit=2)

    @tool()
    async def both(q: ContextQueue, p: ContextPool):
        return q, p

    agent = Agent("custom", "d", [both], context_queue=cq, context_pool=pool)
    await agent.put(Turn(both))
    assert await run_agent(agent) == [(cq, pool)]


@pytest.mark.parametrize("how", ["direct", "turn"])
async def test_optional_context_parameters_get_none_outside_an_agent(how):
    @tool()
    async def optional_ctx(cq: ContextQueue | None, pool: Optional[ContextPool]):  # noqa: UP045
        return cq, pool

    if how == "direct":
        result = await optional_ctx()
    else:
        result = await Turn(optional_ctx).returning()
    assert result == (None, None)


async def test_required_context_parameter_outside_an_agent_is_a_missing_argument():
    @tool()
    async def needs_queue(cq: ContextQueue):
        return cq

    with pytest.raises(TypeError, match="cq"):
        await needs_queue()


async def test_explicit_context_argument_is_not_overwritten():
    mine_q, mine_p = ContextQueue(limit=1), ContextPool()

    @tool()
    async def ctx(cq: ContextQueue, pool: ContextPool | None = None):
        return cq, pool

    agent = Agent("explicit", "d", [ctx])
    await agent.put(Turn(ctx, kwargs={"cq": mine_q, "pool": mine_p}))
    await agent.put(Turn(ctx, args=[mine_q]))
    results = await run_agent(agent)
    assert results[0][0] is mine_q
    assert results[0][1] is mine_p
    assert results[1][0] is mine_q
    assert results[1][1] is agent.context_pool
    # Direct calls too.
    assert await ctx(mine_q, pool=None) == (mine_q, None)


_STRING_ANNOTATED_MODULE = """
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pygents import ContextPool, tool

if TYPE_CHECKING or RUNTIME_IMPORT:
    from pygents import ContextQueue


@tool()
async def str_ctx(cq: ContextQueue, pool: ContextPool) -> tuple:
    return cq, pool


@tool()
async def str_optional(cq: ContextQueue | None = None, pool: Optional[ContextPool] = None):
    return cq, pool
"""


def _load_string_annotated_module(runtime_import):
    module = types.ModuleType("pygents_test_string_annotations")
    module.RUNTIME_IMPORT = runtime_import
    code = compile(_STRING_ANNOTATED_MODULE, "<string-annotated module>", "exec")
    exec(code, module.__dict__)
    return module


@pytest.mark.parametrize(
    "runtime_import",
    [True, False],
    # resolvable: typing.get_type_hints works; unresolvable: ContextQueue is only imported
    # under TYPE_CHECKING, so the hint can only be read as a string.
    ids=["resolvable", "unresolvable"],
)
async def test_string_annotations_also_inject(runtime_import):
    module = _load_string_annotated_module(runtime_import)
    assert isinstance(module.str_ctx.__wrapped__.__annotations__["cq"], str)

    agent = Agent("strings", "d", [module.str_ctx, module.str_optional])
    await agent.put(Turn(module.str_ctx))
    await agent.put(Turn(module.str_optional))
    results = await run_agent(agent)
    expected = (agent.context_queue, agent.context_pool)
    assert results == [expected, expected]
    # Outside an agent, the optional ones get None.
    assert await module.str_optional() == (None, None)
