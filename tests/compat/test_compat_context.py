"""The original's context page, re-enacted: ``docs-0.6.1/concepts/context.md``.

Sections covered (by heading):

- "ContextItem": a frozen dataclass (immutable, equal by fields, hashable), only ``content``
  required, field order ``content, description, id``.
- "ContextQueue": "Creating a context queue" (limit, tags, ``ValueError``/``TypeError``),
  "Appending", "Clearing", "Reading items", "Agent integration" (the default
  ``ContextQueue(limit=10)``, routing of id-less items), "Branching" (the parent-unaffected
  example, smaller limits, hooks inherited or replaced), "Hooks" (the five queue hooks and the
  printed counts), "Serialization" (``{"limit", "items", "hooks"}`` plus tags, hooks by type and
  name, ``UnregisteredHookError``).
- "ContextPool": "Creating a pool" (add/get/remove/clear, eviction by insertion order,
  replacement in place, ``KeyError``), "Reading items" (``catalogue()``), "Agent integration",
  "Reading context from tools" (typed injection, optional parameters, explicit kwargs win,
  outside an agent), "Branching", "Hooks" (the seven pool hooks), "Serialization" (restored
  without hooks or eviction).
"""

from __future__ import annotations

import dataclasses

import pytest

from pygents import (
    Agent,
    ContextPoolHook,
    ContextQueueHook,
    HookRegistry,
    Turn,
    UnregisteredHookError,
    hook,
    tool,
)
from pygents.context import ContextItem, ContextPool, ContextQueue

# -- ContextItem -----------------------------------------------------------------------------


def test_context_item_needs_only_content():
    item = ContextItem(content=[1, 2])
    assert item.content == [1, 2]
    assert item.description is None
    assert item.id is None


def test_context_item_positional_order_is_content_description_id():
    item = ContextItem({"text": "..."}, "Quarterly numbers", "doc-7")
    assert item.content == {"text": "..."}
    assert item.description == "Quarterly numbers"
    assert item.id == "doc-7"


def test_context_item_is_frozen():
    item = ContextItem(content="fixed", description="d", id="i")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.content = "changed"  # type: ignore[misc]
    assert dataclasses.is_dataclass(item)


def test_context_items_compare_by_fields_and_are_hashable():
    a = ContextItem(content="same", description="d", id="k")
    b = ContextItem(content="same", description="d", id="k")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != ContextItem(content="same", description="d", id="other")


# -- ContextQueue: creating, appending, clearing, reading ------------------------------------


async def test_queue_appends_items_in_order():
    window = ContextQueue(limit=10)
    await window.append(ContextItem(content="user: hi"))
    await window.append(ContextItem(content="bot: hello"))
    assert [i.content for i in window.items] == ["user: hi", "bot: hello"]


async def test_queue_append_takes_several_items():
    window = ContextQueue(limit=10)
    await window.append(ContextItem(content="m1"), ContextItem(content="m2"))
    assert len(window) == 2


@pytest.mark.parametrize("limit", [0, -3])
def test_queue_limit_below_one_raises_value_error(limit: int):
    with pytest.raises(ValueError, match="limit must be >= 1"):
        ContextQueue(limit=limit)


async def test_queue_append_of_a_non_item_raises_type_error():
    window = ContextQueue(limit=10)
    with pytest.raises(TypeError, match="ContextItem"):
        await window.append(ContextItem(content="ok"), "raw string")  # type: ignore[arg-type]


def test_queue_tags_are_a_frozenset():
    assert ContextQueue(limit=20, tags=["session", "watched"]).tags == frozenset(
        {"session", "watched"}
    )


def test_queue_positional_order_is_limit_then_tags():
    window = ContextQueue(5, ["session"])
    assert window.limit == 5
    assert window.tags == frozenset({"session"})
    assert window.hooks == []


async def test_queue_evicts_the_oldest_when_full():
    window = ContextQueue(limit=2)
    await window.append(
        ContextItem(content="a"), ContextItem(content="b"), ContextItem(content="c")
    )
    assert [i.content for i in window.items] == ["b", "c"]


async def test_queue_clear_removes_everything():
    window = ContextQueue(limit=3)
    await window.append(ContextItem(content="a"))
    await window.clear()
    assert window.items == []


async def test_queue_reading_protocol():
    window = ContextQueue(limit=3)
    assert bool(window) is False
    await window.append(ContextItem(content="a"), ContextItem(content="b"))
    assert len(window) == 2
    assert [i.content for i in window] == ["a", "b"]
    assert bool(window) is True
    copy = window.items
    copy.clear()
    assert len(window) == 2  # items is a copy


# -- ContextQueue: agent integration ---------------------------------------------------------


async def test_a_returned_item_without_id_lands_in_the_agents_queue():
    @tool()
    async def digest(text: str) -> ContextItem:
        return ContextItem(content=text.upper())

    agent = Agent("digester", "Digests text", [digest])
    await agent.put(Turn("digest", kwargs={"text": "brief"}))
    async for _ in agent.run():
        pass
    assert agent.context_queue.items[0].content == "BRIEF"


async def test_an_agent_uses_the_queue_it_is_given():
    @tool()
    async def digest(text: str) -> ContextItem:
        return ContextItem(content=text)

    window = ContextQueue(limit=20)
    agent = Agent("digester", "Digests text", [digest], context_queue=window)
    assert agent.context_queue is window
    assert agent.context_queue.limit == 20


async def test_the_agent_default_queue_keeps_the_last_ten_items():
    @tool()
    async def note(n: int) -> ContextItem:
        return ContextItem(content=n)

    agent = Agent("noter", "Notes", [note])
    for n in range(12):
        await agent.put(Turn("note", args=[n]))
    async for _ in agent.run():
        pass
    assert [i.content for i in agent.context_queue.items] == list(range(2, 12))


# -- ContextQueue: branching -----------------------------------------------------------------


async def test_queue_branches_diverge_and_leave_the_parent_alone():
    outer = ContextQueue(limit=20)
    await outer.append(ContextItem(content="system"), ContextItem(content="question"))

    middle = outer.branch()
    await middle.append(ContextItem(content="tool output"))

    inner = middle.branch(limit=5)
    await inner.append(ContextItem(content="sub step"))

    assert ContextItem(content="tool output") not in outer.items
    assert ContextItem(content="sub step") not in middle.items
    assert [i.content for i in inner.items] == ["system", "question", "tool output", "sub step"]


async def test_a_smaller_branch_keeps_the_most_recent_items():
    window = ContextQueue(limit=5)
    await window.append(*(ContextItem(content=n) for n in range(5)))
    assert [i.content for i in window.branch(limit=2).items] == [3, 4]


async def test_a_queue_branch_inherits_hooks_unless_given_others():
    window = ContextQueue(limit=10)

    @window.before_append
    async def inherited(queue, incoming, current) -> None: ...

    async def replacement(queue, incoming, current) -> None: ...

    other = HookRegistry.wrap(replacement, ContextQueueHook.BEFORE_APPEND)

    assert window.branch().hooks == [inherited]
    assert window.branch(hooks=[]).hooks == []
    assert window.branch(hooks=[other]).hooks == [other]


async def test_queue_tags_are_copied_to_branches():
    assert ContextQueue(limit=3, tags=["t"]).branch().tags == frozenset({"t"})


# -- ContextQueue: hooks ---------------------------------------------------------------------


async def test_append_hooks_print_counts_before_and_after(capsys: pytest.CaptureFixture[str]):
    window = ContextQueue(limit=20)

    @window.before_append
    async def count_before(queue, incoming, current) -> None:
        print(f"Current count: {len(current)}")

    @window.after_append
    async def count_after(queue, appended_items, current) -> None:
        print(f"New count: {len(current)}")

    await window.append(
        ContextItem(content="x"), ContextItem(content="y"), ContextItem(content="z")
    )
    assert capsys.readouterr().out == "Current count: 0\nNew count: 3\n"


async def test_queue_hooks_get_the_documented_arguments():
    window = ContextQueue(limit=2)
    log: list[tuple] = []
    a, b, c = (ContextItem(content=x) for x in "abc")

    @window.before_append
    async def ba(queue, incoming, current) -> None:
        log.append(("before_append", queue is window, list(incoming), list(current)))

    @window.after_append
    async def aa(queue, appended_items, current) -> None:
        log.append(("after_append", list(appended_items), list(current)))

    @window.on_evict
    async def ev(queue, item) -> None:
        log.append(("on_evict", item))

    @window.before_clear
    async def bc(queue, items) -> None:
        log.append(("before_clear", list(items)))

    @window.after_clear
    async def ac(queue) -> None:
        log.append(("after_clear", len(queue)))

    await window.append(a, b)
    await window.append(c)
    await window.clear()

    assert log == [
        ("before_append", True, [a, b], []),
        ("after_append", [a, b], [a, b]),
        ("before_append", True, [c], [a, b]),
        ("on_evict", a),
        ("after_append", [c], [b, c]),
        ("before_clear", [b, c]),
        ("after_clear", 0),
    ]


async def test_an_after_append_hook_of_two_parameters_gets_the_newer_form():
    # The original's newer docs (0.6.8) call AFTER_APPEND hooks with (appended_items,
    # current); 0.6.1's with (queue, appended_items, current). Both forms work.
    window: ContextQueue[str] = ContextQueue(limit=2)
    log: list[tuple] = []
    a, b, c = (ContextItem(content=x) for x in "abc")

    @window.after_append
    async def newer(appended_items, current) -> None:
        log.append(("newer", list(appended_items), list(current)))

    @window.after_append
    async def older(queue, appended_items, current) -> None:
        log.append(("older", queue is window, list(appended_items)))

    @window.after_append(lock=True)
    async def newer_locked(appended_items, current, *, queue: ContextQueue | None = None):
        log.append(("newer_locked", list(appended_items)))

    @hook(ContextQueueHook.AFTER_APPEND)
    async def newer_global(appended_items, current) -> None:
        log.append(("newer_global", list(current)))

    await window.append(a, b)
    await window.append(c)
    assert log == [
        ("newer", [a, b], [a, b]),
        ("older", True, [a, b]),
        ("newer_locked", [a, b]),
        ("newer_global", [a, b]),
        ("newer", [c], [b, c]),
        ("older", True, [c]),
        ("newer_locked", [c]),
        ("newer_global", [b, c]),
    ]
    await newer([a], [a])  # called directly, with the two arguments its function takes
    assert log[-1] == ("newer", [a], [a])


async def test_the_newer_after_append_form_with_fixed_and_injected_parameters():
    window = ContextQueue(limit=5)
    log: list[tuple] = []
    item = ContextItem(content=1)

    @window.after_append(env="x")
    async def fixed(appended_items, current, env) -> None:
        log.append(("fixed", list(appended_items), env))

    @window.after_append
    async def injected(appended_items, current, pool: ContextPool | None = None) -> None:
        log.append(("injected", list(appended_items), pool))

    @window.after_append
    async def older_annotated(queue: ContextQueue, appended_items, current) -> None:
        log.append(("older_annotated", queue is window, list(appended_items)))

    @window.after_append
    async def older_default(queue, appended_items, current=None) -> None:
        log.append(("older_default", queue is window, list(appended_items)))

    @window.after_append
    async def anything(*args) -> None:
        log.append(("anything", len(args)))

    await window.append(item)
    assert log == [
        ("fixed", [item], "x"),
        ("injected", [item], None),
        ("older_annotated", True, [item]),
        ("older_default", True, [item]),
        ("anything", 3),
    ]


# -- ContextQueue: serialization -------------------------------------------------------------


async def test_queue_to_dict_has_limit_items_hooks_and_tags():
    window = ContextQueue(limit=10, tags=["s"])

    @window.after_append
    async def watch_window(queue, appended_items, current) -> None: ...

    await window.append(ContextItem(content="kept"))
    data = window.to_dict()
    assert set(data) == {"limit", "items", "hooks", "tags"}
    assert data["limit"] == 10
    assert data["hooks"] == {"after_append": ["watch_window"]}
    assert len(data["items"]) == 1


async def test_queue_from_dict_restores_items_tags_and_hooks():
    window = ContextQueue(limit=4, tags=["s"])

    @window.on_evict
    async def note_eviction(queue, item) -> None: ...

    await window.append(ContextItem(content="a"), ContextItem(content="b"))
    restored = ContextQueue.from_dict(window.to_dict())
    assert restored.limit == 4
    assert restored.tags == frozenset({"s"})
    assert restored.items == window.items
    assert restored.hooks == [note_eviction]


def test_queue_from_dict_raises_unregistered_hook_error():
    data = ContextQueue(limit=3).to_dict()
    data["hooks"] = {"before_append": ["missing_hook"]}
    with pytest.raises(UnregisteredHookError):
        ContextQueue.from_dict(data)


# -- ContextPool: creating -------------------------------------------------------------------


def test_pool_limits_and_tags():
    assert ContextPool(limit=50).limit == 50
    assert ContextPool().limit is None
    assert ContextPool(limit=50, tags=["docs"]).tags == frozenset({"docs"})


def test_pool_positional_order_is_limit_then_tags():
    store = ContextPool(7, ["docs"])
    assert store.limit == 7
    assert store.tags == frozenset({"docs"})
    assert store.hooks == []


async def test_pool_add_get_remove_clear():
    store = ContextPool(limit=50)
    await store.add(ContextItem(id="p", description="First", content=10))
    await store.add(ContextItem(id="q", description="Second", content=20))
    assert store.get("p").content == 10
    await store.remove("p")
    assert [i.id for i in store.items] == ["q"]
    await store.clear()
    assert len(store) == 0


@pytest.mark.parametrize("limit", [0, -1])
def test_pool_limit_below_one_raises_value_error(limit: int):
    with pytest.raises(ValueError, match="limit must be >= 1"):
        ContextPool(limit=limit)


@pytest.mark.parametrize(
    "item",
    [ContextItem(content=1, description="no id"), ContextItem(content=1, id="no-desc")],
)
async def test_pool_add_without_id_or_description_raises_value_error(item: ContextItem):
    with pytest.raises(ValueError, match="'id' and 'description'"):
        await ContextPool().add(item)


def test_pool_get_of_an_unknown_id_raises_key_error():
    with pytest.raises(KeyError):
        ContextPool().get("absent")


def test_pool_get_with_a_default_returns_it_for_an_unknown_id():
    marker = ContextItem(content=None)
    assert ContextPool().get("absent", marker) is marker
    assert ContextPool().get("absent", None) is None


async def test_pool_remove_of_an_unknown_id_raises_key_error():
    with pytest.raises(KeyError):
        await ContextPool().remove("absent")


async def test_a_full_pool_evicts_the_oldest_by_insertion_order():
    store = ContextPool(limit=2)
    for key in ("k1", "k2", "k3"):
        await store.add(ContextItem(id=key, description=key, content=key))
    assert [i.id for i in store.items] == ["k2", "k3"]


async def test_adding_an_existing_id_replaces_in_place_and_still_fires_add_hooks():
    store = ContextPool(limit=2)
    fired: list[str] = []
    evicted: list[str] = []

    await store.add(ContextItem(id="k1", description="one", content=1))
    await store.add(ContextItem(id="k2", description="two", content=2))

    @store.before_add
    async def before(pool, item) -> None:
        fired.append(f"before {item.content}")

    @store.after_add
    async def after(pool, item) -> None:
        fired.append(f"after {item.content}")

    @store.on_evict
    async def gone(pool, item) -> None:
        evicted.append(item.id)

    await store.add(ContextItem(id="k1", description="one again", content=11))
    assert [(i.id, i.content) for i in store.items] == [("k1", 11), ("k2", 2)]
    assert fired == ["before 11", "after 11"]
    assert evicted == []


# -- ContextPool: reading --------------------------------------------------------------------


async def test_pool_reading_protocol_and_catalogue():
    store = ContextPool(limit=5)
    assert bool(store) is False
    await store.add(ContextItem(id="r1", description="Revenue table", content="..."))
    await store.add(ContextItem(id="r2", description="Hiring plan", content="..."))
    assert len(store) == 2
    assert [i.id for i in store] == ["r1", "r2"]
    assert bool(store) is True
    assert store.limit == 5
    assert store.catalogue() == "- [r1] Revenue table\n- [r2] Hiring plan"
    snapshot = store.items
    snapshot.clear()
    assert len(store) == 2


# -- ContextPool: agent integration ----------------------------------------------------------


async def test_a_returned_item_with_id_is_stored_in_the_agents_pool(values):
    @tool()
    async def load_report(report_id: str) -> ContextItem:
        return ContextItem(
            id=report_id, description=f"Report {report_id}: finances", content=f"body {report_id}"
        )

    agent = Agent("loader", "Loads reports", [load_report])
    await agent.put(Turn("load_report", kwargs={"report_id": "fy-23"}))
    assert await values(agent) == []
    assert agent.context_pool.get("fy-23").content == "body fy-23"


async def test_an_agent_uses_the_pool_it_is_given_with_its_hooks(
    capsys: pytest.CaptureFixture[str],
):
    @tool()
    async def load_report(report_id: str) -> ContextItem:
        return ContextItem(id=report_id, description="Annual figures", content="...")

    store = ContextPool()

    @store.after_add
    async def announce(pool, item) -> None:
        print(f"Added {item.id!r}: {item.description}")

    agent = Agent("loader", "Loads reports", [load_report], context_pool=store)
    await agent.put(Turn("load_report", args=["fy-24"]))
    async for _ in agent.run():
        pass
    assert agent.context_pool is store
    assert capsys.readouterr().out == "Added 'fy-24': Annual figures\n"


# -- Reading context from tools --------------------------------------------------------------


async def test_typed_parameters_receive_the_agents_queue_and_pool(values):
    @tool()
    async def recall(topic: str, memory: ContextQueue) -> str:
        return f"{topic}: " + ",".join(str(i.content) for i in memory.items[-2:])

    @tool()
    async def list_docs(question: str, store: ContextPool) -> str:
        return store.catalogue()

    agent = Agent("reader", "Reads", [recall, list_docs])
    await agent.context_queue.append(*(ContextItem(content=c) for c in "xyz"))
    await agent.context_pool.add(ContextItem(id="d1", description="Doc one", content=""))
    await agent.put(Turn("recall", args=["t"]))
    await agent.put(Turn("list_docs", args=["q"]))
    assert await values(agent) == ["t: y,z", "- [d1] Doc one"]


async def test_an_optional_context_parameter_is_none_outside_an_agent(values):
    @tool()
    async def reflect(question: str, memory: ContextQueue | None = None) -> str:
        return f"{question}: {len(memory) if memory is not None else 'no memory'}"

    assert await Turn("reflect", args=["q"]).returning() == "q: no memory"

    agent = Agent("reflector", "Reflects", [reflect])
    await agent.context_queue.append(ContextItem(content="m"))
    await agent.put(Turn("reflect", args=["q"]))
    assert await values(agent) == ["q: 1"]


async def test_an_explicit_kwarg_wins_over_injection(values):
    @tool()
    async def reflect(question: str, memory: ContextQueue | None = None) -> int:
        return len(memory)

    elsewhere = ContextQueue(limit=3)
    await elsewhere.append(ContextItem(content=1), ContextItem(content=2))
    agent = Agent("reflector", "Reflects", [reflect])
    await agent.put(Turn("reflect", kwargs={"question": "q", "memory": elsewhere}))
    assert await values(agent) == [2]


async def test_a_required_context_parameter_outside_an_agent_raises_type_error():
    @tool()
    async def needs_memory(memory: ContextQueue) -> int:
        return len(memory)

    with pytest.raises(TypeError):
        await Turn("needs_memory").returning()


# -- ContextPool: branching ------------------------------------------------------------------


async def test_a_pool_branch_inherits_limit_items_and_hooks_without_firing_them():
    parent = ContextPool(limit=20)
    fired: list[str] = []

    @parent.before_add
    async def watch(pool, item) -> None:
        fired.append(item.id)

    await parent.add(ContextItem(id="base", description="Base", content=0))
    fired.clear()

    child = parent.branch()
    assert fired == []
    assert child.limit == 20
    assert child.hooks == [watch]
    assert child.get("base").content == 0

    await child.add(ContextItem(id="extra", description="Extra", content=1))
    assert "extra" not in parent
    await parent.remove("base")
    assert "base" in child


async def test_a_smaller_pool_branch_drops_the_oldest():
    parent = ContextPool()
    for key in ("a", "b", "c"):
        await parent.add(ContextItem(id=key, description=key, content=key))
    assert [i.id for i in parent.branch(limit=2).items] == ["b", "c"]


async def test_a_pool_subclass_branches_into_the_subclass():
    class CountingPool(ContextPool):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.lookups = 0

    store = CountingPool(limit=4)
    await store.add(ContextItem(id="z", description="z", content=1))
    child = store.branch()
    assert type(child) is CountingPool
    assert child.get("z").content == 1


class GuidePool(ContextPool):
    """As the research-assistant guide describes one: ``__init__`` takes limit and hooks."""

    def __init__(self, limit=None, hooks=None) -> None:
        super().__init__(limit=limit, hooks=hooks)


async def test_a_pool_subclass_taking_limit_and_hooks_branches_and_round_trips():
    @tool()
    async def noop() -> None:
        pass

    store = GuidePool(limit=3)
    store.tags = ["docs"]
    await store.add(ContextItem(id="z", description="z", content=1))
    child = store.branch()
    assert type(child) is GuidePool
    assert child.limit == 3 and child.tags == frozenset({"docs"}) and child.get("z").content == 1
    smaller = store.branch(limit=1, tags=["other"])
    assert smaller.limit == 1 and smaller.tags == frozenset({"other"})
    agent = Agent("guide_pool", "d", [noop], context_pool=store)
    assert type(agent.branch("guide_pool_child").context_pool) is GuidePool
    again = GuidePool.from_dict(store.to_dict())
    assert type(again) is GuidePool and again.tags == frozenset({"docs"})
    assert again.get("z").content == 1


# -- ContextPool: hooks ----------------------------------------------------------------------


async def test_add_hooks_print_the_size_before_and_after(capsys: pytest.CaptureFixture[str]):
    store = ContextPool(limit=10)

    @store.before_add
    async def size_before(pool, item) -> None:
        print(f"About to add {item.id!r}, pool size: {len(pool)}")

    @store.after_add
    async def size_after(pool, item) -> None:
        print(f"Added {item.id!r}, pool size: {len(pool)}")

    await store.add(ContextItem(id="n1", description="note", content=""))
    assert capsys.readouterr().out == "About to add 'n1', pool size: 0\nAdded 'n1', pool size: 1\n"


async def test_pool_hooks_get_the_documented_arguments_in_order():
    store = ContextPool(limit=1)
    log: list[tuple] = []
    first = ContextItem(id="f", description="first", content=1)
    second = ContextItem(id="s", description="second", content=2)

    @store.before_add
    async def ba(pool, item) -> None:
        log.append(("before_add", item.id, len(pool)))

    @store.after_add
    async def aa(pool, item) -> None:
        log.append(("after_add", item.id, len(pool)))

    @store.on_evict
    async def ev(pool, item) -> None:
        log.append(("on_evict", item.id))

    @store.before_remove
    async def br(pool, item) -> None:
        log.append(("before_remove", item.id, len(pool)))

    @store.after_remove
    async def ar(pool, item) -> None:
        log.append(("after_remove", item.id, len(pool)))

    @store.before_clear
    async def bc(pool, snapshot) -> None:
        log.append(("before_clear", dict(snapshot)))

    @store.after_clear
    async def ac(pool) -> None:
        log.append(("after_clear", len(pool)))

    await store.add(first)
    await store.add(second)  # evicts "f" first: BEFORE_ADD comes after the eviction
    await store.remove("s")
    await store.add(first)
    await store.clear()

    assert log == [
        ("before_add", "f", 0),
        ("after_add", "f", 1),
        ("on_evict", "f"),
        ("before_add", "s", 0),
        ("after_add", "s", 1),
        ("before_remove", "s", 1),
        ("after_remove", "s", 0),
        ("before_add", "f", 0),
        ("after_add", "f", 1),
        ("before_clear", {"f": first}),
        ("after_clear", 0),
    ]


# -- ContextPool: serialization --------------------------------------------------------------


async def test_pool_tags_survive_to_dict_and_branch():
    store = ContextPool(limit=3, tags=["docs", "hot"])
    assert ContextPool.from_dict(store.to_dict()).tags == frozenset({"docs", "hot"})
    assert store.branch().tags == frozenset({"docs", "hot"})


async def test_pool_to_dict_has_limit_items_hooks_and_tags():
    store = ContextPool(limit=3, tags=["docs"])

    @store.after_add
    async def pool_watch(pool, item) -> None: ...

    await store.add(ContextItem(id="a", description="A", content=1))
    data = store.to_dict()
    assert set(data) == {"limit", "items", "hooks", "tags"}
    assert data["hooks"] == {"after_add": ["pool_watch"]}


async def test_pool_from_dict_restores_every_item_without_hooks_or_eviction():
    store = ContextPool(limit=3)
    fired: list[str] = []

    @store.before_add
    async def pool_watch(pool, item) -> None:
        fired.append(item.id)

    for key in ("a", "b", "c"):
        await store.add(ContextItem(id=key, description=key, content=key))
    data = store.to_dict()
    data["limit"] = 2  # more items than the limit: restored as they are
    fired.clear()

    restored = ContextPool.from_dict(data)
    assert [i.id for i in restored.items] == ["a", "b", "c"]
    assert restored.limit == 2
    assert fired == []
    assert restored.hooks == [pool_watch]


def test_pool_from_dict_accepts_an_empty_hooks_mapping():
    data = {
        "limit": None,
        "items": [{"content": 1, "description": "one", "id": "x"}],
        "hooks": {},
        "tags": [],
    }
    restored = ContextPool.from_dict(data)
    assert restored.get("x").description == "one"


def test_pool_from_dict_refuses_an_item_without_id():
    data = {"limit": None, "items": [{"content": 1, "description": "d", "id": None}], "hooks": {}}
    with pytest.raises(ValueError, match="ContextPool requires a ContextItem with 'id' set"):
        ContextPool.from_dict(data)


def test_pool_from_dict_raises_unregistered_hook_error():
    data = ContextPool().to_dict()
    data["hooks"] = {"after_add": ["missing_hook"]}
    with pytest.raises(UnregisteredHookError):
        ContextPool.from_dict(data)


def test_context_hook_types_have_the_documented_members():
    assert {h.name for h in ContextQueueHook} >= {
        "BEFORE_APPEND",
        "AFTER_APPEND",
        "BEFORE_CLEAR",
        "AFTER_CLEAR",
        "ON_EVICT",
    }
    assert {h.name for h in ContextPoolHook} >= {
        "BEFORE_ADD",
        "AFTER_ADD",
        "BEFORE_REMOVE",
        "AFTER_REMOVE",
        "BEFORE_CLEAR",
        "AFTER_CLEAR",
        "ON_EVICT",
    }
