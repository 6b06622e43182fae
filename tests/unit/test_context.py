"""ContextItem, ContextQueue and ContextPool: validation, eviction, hooks, branching, veto."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from pygents import (
    Agent,
    AgentRegistry,
    ContextItem,
    ContextPool,
    ContextPoolHook,
    ContextQueue,
    ContextQueueHook,
    hook,
)
from pygents import context as context_module
from pygents.errors import SerializationError


def items(*contents: Any) -> list[ContextItem]:
    return [ContextItem(content=c) for c in contents]


def doc(id: str, description: str | None = None, content: Any = None) -> ContextItem:
    return ContextItem(
        id=id,
        description=f"about {id}" if description is None else description,
        content=f"text of {id}" if content is None else content,
    )


def contents(container: Any) -> list[Any]:
    return [i.content for i in container.items]


# --------------------------------------------------------------------------- ContextItem


class TestContextItem:
    def test_defaults_are_none(self) -> None:
        item = ContextItem()
        assert (item.content, item.id, item.description) == (None, None, None)

    def test_fields_by_keyword(self) -> None:
        item = ContextItem(content={"a": 1}, id="x", description="the x")
        assert item.content == {"a": 1}
        assert item.id == "x"
        assert item.description == "the x"

    def test_equality_compares_all_fields(self) -> None:
        assert ContextItem(content=1, id="a", description="d") == ContextItem(
            content=1, id="a", description="d"
        )
        assert ContextItem(content=1, id="a", description="d") != ContextItem(
            content=2, id="a", description="d"
        )
        assert ContextItem(content=1, id="a", description="d") != ContextItem(
            content=1, id="b", description="d"
        )
        assert ContextItem(content=1, id="a", description="d") != ContextItem(
            content=1, id="a", description="e"
        )
        assert ContextItem(content=1) != "not an item"

    def test_dict_round_trip(self) -> None:
        item = ContextItem(content=["x", 1], id="k", description="desc")
        data = item.to_dict()
        assert data == {"id": "k", "description": "desc", "content": ["x", 1]}
        assert ContextItem.from_dict(data) == item

    def test_non_string_id_or_description_is_rejected(self) -> None:
        with pytest.raises(TypeError):
            ContextItem(content="c", id=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ContextItem(content="c", description=3)  # type: ignore[arg-type]

    def test_importable_from_pygents_context(self) -> None:
        assert context_module.ContextItem is ContextItem
        assert context_module.ContextQueue is ContextQueue
        assert context_module.ContextPool is ContextPool


# --------------------------------------------------------------------------- ContextQueue


class TestContextQueueLimit:
    @pytest.mark.parametrize("limit", [0, -1])
    def test_limit_below_one_is_value_error(self, limit: int) -> None:
        with pytest.raises(ValueError):
            ContextQueue(limit=limit)

    @pytest.mark.parametrize("limit", ["3", 2.5, True])
    def test_non_int_limit_is_type_error(self, limit: Any) -> None:
        with pytest.raises(TypeError):
            ContextQueue(limit=limit)

    def test_limit_one_is_valid(self) -> None:
        assert ContextQueue(limit=1).limit == 1


class TestContextQueueAppend:
    async def test_append_is_variadic_and_keeps_order(self) -> None:
        q = ContextQueue(limit=10)
        await q.append(*items("a", "b"))
        await q.append(ContextItem(content="c"))
        await q.append()
        assert contents(q) == ["a", "b", "c"]

    @pytest.mark.parametrize("bad", ["plain string", {"content": "x"}, None, 42])
    async def test_non_item_is_type_error(self, bad: Any) -> None:
        q = ContextQueue(limit=5)
        with pytest.raises(TypeError):
            await q.append(bad)
        assert len(q) == 0

    async def test_non_item_as_second_argument_appends_nothing(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(ContextItem(content="before"))
        with pytest.raises(TypeError):
            await q.append(ContextItem(content="first"), "second", ContextItem(content="third"))
        assert contents(q) == ["before"]

    async def test_non_item_fires_no_hooks(self) -> None:
        q = ContextQueue(limit=5)
        calls: list[str] = []

        @q.before_append
        async def before(queue: ContextQueue, incoming: list[Any], current: list[Any]) -> None:
            calls.append("before")

        with pytest.raises(TypeError):
            await q.append(ContextItem(content="ok"), "bad")
        assert calls == []

    async def test_oldest_items_are_evicted(self) -> None:
        q = ContextQueue(limit=3)
        for c in "abcde":
            await q.append(ContextItem(content=c))
        assert contents(q) == ["c", "d", "e"]
        assert len(q) == 3

    async def test_one_append_past_the_limit_keeps_the_newest(self) -> None:
        q = ContextQueue(limit=3)
        await q.append(*items(1, 2, 3, 4, 5))
        assert contents(q) == [3, 4, 5]

    async def test_on_evict_once_per_evicted_item(self) -> None:
        q = ContextQueue(limit=3)
        evicted: list[tuple[ContextQueue, ContextItem]] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append((queue, item))

        five = items(0, 1, 2, 3, 4)
        await q.append(*five)
        assert len(evicted) == 2
        assert all(queue is q for queue, _ in evicted)
        assert [item for _, item in evicted] == five[:2]
        assert evicted[0][1] is five[0]
        assert evicted[1][1] is five[1]

    async def test_on_evict_across_separate_appends(self) -> None:
        q = ContextQueue(limit=2)
        evicted: list[Any] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append(item.content)

        for c in "abcd":
            await q.append(ContextItem(content=c))
        assert evicted == ["a", "b"]

    async def test_no_eviction_below_the_limit(self) -> None:
        q = ContextQueue(limit=3)
        evicted: list[Any] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append(item)

        await q.append(*items(1, 2, 3))
        assert evicted == []

    async def test_before_and_after_append_arguments(self) -> None:
        q = ContextQueue(limit=3)
        first = items("a", "b")
        await q.append(*first)
        calls: list[tuple[Any, ...]] = []

        @q.before_append
        async def before(queue: ContextQueue, incoming: list[Any], current: list[Any]) -> None:
            calls.append(("before", queue, list(incoming), list(current), len(queue)))

        @q.after_append
        async def after(queue: ContextQueue, appended: list[Any], current: list[Any]) -> None:
            calls.append(("after", queue, list(appended), list(current), len(queue)))

        incoming = items("c", "d")
        await q.append(*incoming)
        assert calls == [
            ("before", q, incoming, first, 2),
            ("after", q, incoming, [first[1], *incoming], 3),
        ]

    async def test_hook_snapshots_are_copies(self) -> None:
        q = ContextQueue(limit=5)
        seen: dict[str, Any] = {}

        @q.before_append
        async def before(queue: ContextQueue, incoming: Any, current: Any) -> None:
            seen["before"] = current

        @q.after_append
        async def after(queue: ContextQueue, appended: Any, current: Any) -> None:
            seen["after"] = current

        await q.append(ContextItem(content=1))
        before_snapshot, after_snapshot = seen["before"], seen["after"]
        await q.append(ContextItem(content=2))
        assert before_snapshot == []
        assert [i.content for i in after_snapshot] == [1]

    async def test_hook_order_with_eviction(self) -> None:
        q = ContextQueue(limit=1)
        await q.append(ContextItem(content="old"))
        order: list[str] = []

        @q.before_append
        async def before(queue: ContextQueue, incoming: Any, current: Any) -> None:
            order.append("before")

        @q.on_evict
        async def evict(queue: ContextQueue, item: ContextItem) -> None:
            order.append(f"evict {item.content}")

        @q.after_append
        async def after(queue: ContextQueue, appended: Any, current: Any) -> None:
            order.append("after")

        await q.append(ContextItem(content="new"))
        assert order == ["before", "evict old", "after"]

    async def test_before_append_veto_leaves_queue_unchanged(self) -> None:
        q = ContextQueue(limit=2)
        await q.append(*items("a", "b"))
        evicted: list[Any] = []
        after_calls: list[Any] = []

        @q.before_append
        async def veto(queue: ContextQueue, incoming: Any, current: Any) -> None:
            raise PermissionError("no more")

        @q.on_evict
        async def evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append(item)

        @q.after_append
        async def after(queue: ContextQueue, appended: Any, current: Any) -> None:
            after_calls.append(appended)

        with pytest.raises(PermissionError, match="no more"):
            await q.append(*items("c", "d"))
        assert contents(q) == ["a", "b"]
        assert evicted == []
        assert after_calls == []


class TestContextQueueClearAndViews:
    async def test_clear_empties_and_fires_hooks(self) -> None:
        q = ContextQueue(limit=5)
        stored = items("a", "b")
        await q.append(*stored)
        calls: list[tuple[Any, ...]] = []

        @q.before_clear
        async def before(queue: ContextQueue, snapshot: list[Any]) -> None:
            calls.append(("before", queue, list(snapshot), len(queue)))

        @q.after_clear
        async def after(queue: ContextQueue) -> None:
            calls.append(("after", queue, len(queue)))

        await q.clear()
        assert len(q) == 0
        assert calls == [("before", q, stored, 2), ("after", q, 0)]

    async def test_clear_without_hooks(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items(1, 2))
        await q.clear()
        assert q.items == []
        await q.append(ContextItem(content=3))
        assert contents(q) == [3]

    async def test_before_clear_veto_leaves_queue_unchanged(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items(1, 2))
        after_calls: list[Any] = []

        @q.before_clear
        async def veto(queue: ContextQueue, snapshot: Any) -> None:
            raise RuntimeError("keep it")

        @q.after_clear
        async def after(queue: ContextQueue) -> None:
            after_calls.append(queue)

        with pytest.raises(RuntimeError, match="keep it"):
            await q.clear()
        assert contents(q) == [1, 2]
        assert after_calls == []

    async def test_items_is_a_copy(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items(1, 2))
        view = q.items
        assert isinstance(view, list)
        view.append(ContextItem(content="intruder"))
        view.clear()
        assert contents(q) == [1, 2]
        assert q.items is not q.items

    async def test_len_bool_iter(self) -> None:
        q = ContextQueue(limit=5)
        assert len(q) == 0
        assert not q
        assert list(q) == []
        stored = items("x", "y")
        await q.append(*stored)
        assert len(q) == 2
        assert q
        assert list(q) == stored
        assert [i.content for i in q] == ["x", "y"]

    async def test_iterating_while_appending_is_safe(self) -> None:
        q = ContextQueue(limit=10)
        await q.append(*items(1, 2, 3))
        seen = []
        for item in q:
            seen.append(item.content)
            await q.append(ContextItem(content=item.content * 10))
        assert seen == [1, 2, 3]
        assert contents(q) == [1, 2, 3, 10, 20, 30]


class TestContextQueueBranch:
    async def test_branch_is_a_snapshot_with_same_limit(self) -> None:
        q = ContextQueue(limit=4)
        await q.append(*items(1, 2, 3))
        child = q.branch()
        assert child is not q
        assert isinstance(child, ContextQueue)
        assert child.limit == 4
        assert contents(child) == [1, 2, 3]

    async def test_smaller_limit_keeps_newest(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items(1, 2, 3, 4, 5))
        child = q.branch(limit=2)
        assert child.limit == 2
        assert contents(child) == [4, 5]
        assert contents(q) == [1, 2, 3, 4, 5]

    async def test_larger_limit_keeps_everything(self) -> None:
        q = ContextQueue(limit=2)
        await q.append(*items(1, 2))
        child = q.branch(limit=10)
        assert child.limit == 10
        assert contents(child) == [1, 2]

    async def test_branch_is_independent(self) -> None:
        q = ContextQueue(limit=3)
        await q.append(*items(1, 2))
        child = q.branch()
        await child.append(ContextItem(content="child"))
        await q.append(ContextItem(content="parent"))
        assert contents(q) == [1, 2, "parent"]
        assert contents(child) == [1, 2, "child"]
        await child.clear()
        assert contents(q) == [1, 2, "parent"]

    async def test_branch_inherits_hooks(self) -> None:
        q = ContextQueue(limit=1)
        evicted: list[tuple[Any, Any]] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append((queue, item.content))

        await q.append(ContextItem(content="a"))
        child = q.branch()
        await child.append(ContextItem(content="b"))
        assert evicted == [(child, "a")]
        # The child's hook list is its own.
        assert child.hooks == q.hooks
        assert child.hooks is not q.hooks

    async def test_branch_with_no_hooks(self) -> None:
        q = ContextQueue(limit=1)
        evicted: list[Any] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            evicted.append(item.content)

        await q.append(ContextItem(content="a"))
        child = q.branch(hooks=[])
        assert child.hooks == []
        await child.append(ContextItem(content="b"))
        assert evicted == []
        await q.append(ContextItem(content="c"))
        assert evicted == ["a"]

    async def test_adding_a_hook_to_the_child_does_not_touch_the_parent(self) -> None:
        q = ContextQueue(limit=5)
        child = q.branch()
        seen: list[Any] = []

        @child.after_append
        async def after(queue: ContextQueue, appended: Any, current: Any) -> None:
            seen.append(queue)

        await q.append(ContextItem(content=1))
        await child.append(ContextItem(content=2))
        assert seen == [child]
        assert q.hooks == []

    async def test_branch_inherits_tags(self) -> None:
        q = ContextQueue(limit=3, tags=["memory"])
        assert q.branch().tags == frozenset({"memory"})
        assert q.branch(tags=["other"]).tags == frozenset({"other"})


# --------------------------------------------------------------------------- ContextPool


class TestContextPoolAdd:
    @pytest.mark.parametrize(
        "item",
        [
            ContextItem(content="c", description="no id"),
            ContextItem(content="c", id="no-description"),
            ContextItem(content="c"),
        ],
    )
    async def test_id_and_description_are_required(self, item: ContextItem) -> None:
        pool = ContextPool()
        with pytest.raises(ValueError):
            await pool.add(item)
        assert len(pool) == 0

    @pytest.mark.parametrize("bad", ["doc", {"id": "a", "description": "d"}, None])
    async def test_non_item_is_type_error(self, bad: Any) -> None:
        pool = ContextPool()
        with pytest.raises(TypeError):
            await pool.add(bad)
        assert len(pool) == 0

    @pytest.mark.parametrize("limit", [0, -1])
    def test_limit_below_one_is_value_error(self, limit: int) -> None:
        with pytest.raises(ValueError):
            ContextPool(limit=limit)

    @pytest.mark.parametrize("limit", ["3", 2.5, True])
    def test_non_int_limit_is_type_error(self, limit: Any) -> None:
        with pytest.raises(TypeError):
            ContextPool(limit=limit)

    async def test_add_and_lookup(self) -> None:
        pool = ContextPool(limit=5)
        a = doc("a")
        await pool.add(a)
        assert pool.get("a") is a
        assert pool["a"] is a
        assert "a" in pool
        assert "b" not in pool
        assert len(pool) == 1

    async def test_same_id_replaces_without_eviction(self) -> None:
        pool = ContextPool(limit=2)
        evicted: list[Any] = []

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem) -> None:
            evicted.append(item)

        await pool.add(doc("a"))
        await pool.add(doc("b"))
        newer = doc("a", description="newer a", content="v2")
        await pool.add(newer)
        assert evicted == []
        assert len(pool) == 2
        assert pool["a"] is newer
        assert pool.get("b") is not None

    async def test_same_id_replaces_without_hooks(self) -> None:
        pool = ContextPool(limit=2)
        await pool.add(doc("a"))
        await pool.add(doc("b"))
        await pool.add(doc("a", content="v2"))
        assert len(pool) == 2
        assert pool["a"].content == "v2"
        assert "b" in pool

    async def test_eviction_is_oldest_first(self) -> None:
        pool = ContextPool(limit=2)
        for name in "abcd":
            await pool.add(doc(name))
        assert [i.id for i in pool.items] == ["c", "d"]
        assert "a" not in pool
        assert "b" not in pool

    async def test_on_evict_fires_once_with_the_oldest(self) -> None:
        pool = ContextPool(limit=2)
        events: list[tuple[Any, ...]] = []

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem) -> None:
            # "about to be evicted": it is still there when the hook runs.
            events.append(("evict", p, item, item.id in p))

        @pool.after_add
        async def after_add(p: ContextPool, item: ContextItem) -> None:
            events.append(("add", item.id))

        a, b, c = doc("a"), doc("b"), doc("c")
        await pool.add(a)
        await pool.add(b)
        events.clear()
        await pool.add(c)
        assert events == [("evict", pool, a, True), ("add", "c")]
        assert [i.id for i in pool.items] == ["b", "c"]

    async def test_before_and_after_add_arguments(self) -> None:
        pool = ContextPool()
        calls: list[tuple[Any, ...]] = []

        @pool.before_add
        async def before(p: ContextPool, item: ContextItem) -> None:
            calls.append(("before", p, item, item.id in p))

        @pool.after_add
        async def after(p: ContextPool, item: ContextItem) -> None:
            calls.append(("after", p, item, item.id in p))

        a = doc("a")
        await pool.add(a)
        assert calls == [("before", pool, a, False), ("after", pool, a, True)]

    async def test_unbounded_pool_never_evicts(self) -> None:
        pool = ContextPool()
        assert pool.limit is None
        evicted: list[Any] = []

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem) -> None:
            evicted.append(item)

        for i in range(500):
            await pool.add(doc(f"d{i}"))
        assert len(pool) == 500
        assert evicted == []
        assert "d0" in pool

    async def test_before_add_veto_stops_the_add(self) -> None:
        pool = ContextPool(limit=3)
        a, b = doc("a"), doc("b")
        await pool.add(a)
        await pool.add(b)
        events: list[Any] = []

        @pool.before_add
        async def veto(p: ContextPool, item: ContextItem[Any]) -> None:
            raise PermissionError("read only")

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem[Any]) -> None:
            events.append(("evict", item))

        @pool.after_add
        async def after(p: ContextPool, item: ContextItem[Any]) -> None:
            events.append(("add", item))

        with pytest.raises(PermissionError):
            await pool.add(doc("c"))
        with pytest.raises(PermissionError):
            await pool.add(doc("a", content="replacement"))
        assert pool.items == [a, b]
        assert pool["a"] is a
        assert events == []

    async def test_eviction_comes_before_before_add(self) -> None:
        pool = ContextPool(limit=2)
        a, b = doc("a"), doc("b")
        await pool.add(a)
        await pool.add(b)
        events: list[Any] = []

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem[Any]) -> None:
            events.append(("evict", item.id, len(p)))

        @pool.before_add
        async def before(p: ContextPool, item: ContextItem[Any]) -> None:
            events.append(("before", item.id, len(p)))
            if item.id == "d":
                raise PermissionError("no d")

        await pool.add(doc("c"))
        assert events == [("evict", "a", 2), ("before", "c", 1)]
        events.clear()
        # A veto after an eviction stops the add; the eviction stands (as in the original).
        with pytest.raises(PermissionError):
            await pool.add(doc("d"))
        assert events == [("evict", "b", 2), ("before", "d", 1)]
        assert [i.id for i in pool.items] == ["c"]


class TestContextPoolReadAndRemove:
    async def test_get_unknown_id_is_key_error(self) -> None:
        pool = ContextPool()
        await pool.add(doc("here"))
        with pytest.raises(KeyError, match="ghost"):
            pool.get("ghost")

    async def test_get_with_a_default(self) -> None:
        pool = ContextPool()
        fallback = doc("fallback")
        assert pool.get("missing", fallback) is fallback
        assert pool.get("missing", None) is None
        assert pool.get("missing", default=None) is None
        here = doc("here")
        await pool.add(here)
        assert pool.get("here", fallback) is here
        assert pool.get("here") is here

    def test_getitem_missing_is_key_error_with_message(self) -> None:
        pool = ContextPool()
        with pytest.raises(KeyError, match="ghost"):
            pool["ghost"]

    async def test_remove_returns_the_item(self) -> None:
        pool = ContextPool()
        a, b = doc("a"), doc("b")
        await pool.add(a)
        await pool.add(b)
        assert await pool.remove("a") is a
        assert "a" not in pool
        assert pool.items == [b]

    async def test_remove_missing_is_key_error(self) -> None:
        pool = ContextPool()
        await pool.add(doc("a"))
        with pytest.raises(KeyError):
            await pool.remove("b")
        assert len(pool) == 1

    async def test_remove_hooks(self) -> None:
        pool = ContextPool()
        a = doc("a")
        await pool.add(a)
        calls: list[tuple[Any, ...]] = []

        @pool.before_remove
        async def before(p: ContextPool, item: ContextItem) -> None:
            calls.append(("before", p, item, item.id in p))

        @pool.after_remove
        async def after(p: ContextPool, item: ContextItem) -> None:
            calls.append(("after", p, item, item.id in p))

        await pool.remove("a")
        assert calls == [("before", pool, a, True), ("after", pool, a, False)]

    async def test_remove_missing_fires_no_hooks(self) -> None:
        pool = ContextPool()
        calls: list[Any] = []

        @pool.before_remove
        async def before(p: ContextPool, item: ContextItem) -> None:
            calls.append(item)

        with pytest.raises(KeyError):
            await pool.remove("nope")
        assert calls == []

    async def test_before_remove_veto_leaves_pool_unchanged(self) -> None:
        pool = ContextPool()
        a = doc("a")
        await pool.add(a)
        after_calls: list[Any] = []

        @pool.before_remove
        async def veto(p: ContextPool, item: ContextItem) -> None:
            raise PermissionError("pinned")

        @pool.after_remove
        async def after(p: ContextPool, item: ContextItem) -> None:
            after_calls.append(item)

        with pytest.raises(PermissionError):
            await pool.remove("a")
        assert pool["a"] is a
        assert after_calls == []

    async def test_items_len_bool_iter(self) -> None:
        pool = ContextPool()
        assert not pool
        assert len(pool) == 0
        assert pool.items == []
        a, b = doc("a"), doc("b")
        await pool.add(a)
        await pool.add(b)
        assert pool
        assert len(pool) == 2
        view = pool.items
        assert view == [a, b]
        view.clear()
        assert pool.items == [a, b]
        assert list(pool) == [a, b]

    async def test_catalogue_format(self) -> None:
        pool = ContextPool()
        assert pool.catalogue() == ""
        await pool.add(ContextItem(id="q3", description="Q3 earnings: revenue", content={"r": 1}))
        assert pool.catalogue() == "- [q3] Q3 earnings: revenue"
        await pool.add(ContextItem(id="faq", description="Refund policy", content="30 days"))
        assert pool.catalogue() == "- [q3] Q3 earnings: revenue\n- [faq] Refund policy"

    async def test_catalogue_has_no_content(self) -> None:
        pool = ContextPool()
        await pool.add(ContextItem(id="big", description="a big doc", content="SECRET-CONTENT"))
        assert "SECRET-CONTENT" not in pool.catalogue()


class TestContextPoolClear:
    async def test_clear_with_hooks(self) -> None:
        pool = ContextPool()
        a, b = doc("a"), doc("b")
        await pool.add(a)
        await pool.add(b)
        calls: list[tuple[Any, ...]] = []
        snapshots: list[Any] = []

        @pool.before_clear
        async def before(p: ContextPool, snapshot: dict[str, ContextItem]) -> None:
            snapshots.append(snapshot)
            calls.append(("before", p, dict(snapshot), len(p)))

        @pool.after_clear
        async def after(p: ContextPool) -> None:
            calls.append(("after", p, len(p)))

        await pool.clear()
        assert len(pool) == 0
        assert calls == [("before", pool, {"a": a, "b": b}, 2), ("after", pool, 0)]
        # The snapshot is a dict copy: clearing the pool did not empty it.
        snapshot = snapshots[0]
        assert isinstance(snapshot, dict)
        assert snapshot == {"a": a, "b": b}

    async def test_clear_without_hooks(self) -> None:
        pool = ContextPool(limit=3)
        await pool.add(doc("a"))
        await pool.clear()
        assert not pool
        assert pool.catalogue() == ""

    async def test_before_clear_veto_leaves_pool_unchanged(self) -> None:
        pool = ContextPool()
        a = doc("a")
        await pool.add(a)
        after_calls: list[Any] = []

        @pool.before_clear
        async def veto(p: ContextPool, snapshot: Any) -> None:
            raise PermissionError("no")

        @pool.after_clear
        async def after(p: ContextPool) -> None:
            after_calls.append(p)

        with pytest.raises(PermissionError):
            await pool.clear()
        assert pool.items == [a]
        assert after_calls == []


class TestContextPoolBranch:
    async def test_branch_snapshot_and_limit(self) -> None:
        pool = ContextPool(limit=5)
        for name in "abc":
            await pool.add(doc(name))
        child = pool.branch()
        assert child is not pool
        assert child.limit == 5
        assert [i.id for i in child.items] == ["a", "b", "c"]

    async def test_branch_with_smaller_limit_keeps_newest(self) -> None:
        pool = ContextPool()
        for name in "abcd":
            await pool.add(doc(name))
        child = pool.branch(limit=2)
        assert child.limit == 2
        assert [i.id for i in child.items] == ["c", "d"]
        assert len(pool) == 4

    async def test_branch_limit_none_is_unbounded(self) -> None:
        pool = ContextPool(limit=2)
        await pool.add(doc("a"))
        child = pool.branch(limit=None)
        assert child.limit is None

    async def test_branch_is_independent(self) -> None:
        pool = ContextPool()
        await pool.add(doc("shared"))
        child = pool.branch()
        await child.add(doc("child-only"))
        await pool.remove("shared")
        assert "child-only" not in pool
        assert "shared" in child
        assert [i.id for i in child.items] == ["shared", "child-only"]

    async def test_branch_inherits_hooks_or_not(self) -> None:
        pool = ContextPool()
        added: list[tuple[Any, str | None]] = []

        @pool.after_add
        async def after_add(p: ContextPool, item: ContextItem) -> None:
            added.append((p, item.id))

        inherited = pool.branch()
        bare = pool.branch(hooks=[])
        await inherited.add(doc("x"))
        await bare.add(doc("y"))
        assert added == [(inherited, "x")]
        assert inherited.hooks is not pool.hooks
        assert bare.hooks == []


# --------------------------------------------------------------------------- porting behaviours


class TestContextItemValue:
    """A frozen, generic dataclass with the original's positional order."""

    def test_positional_order_is_content_description_id(self) -> None:
        item = ContextItem("x", "desc", "id-1")
        assert (item.content, item.description, item.id) == ("x", "desc", "id-1")

    def test_immutable(self) -> None:
        item = ContextItem(content="x", id="a", description="d")
        for name in ("content", "description", "id"):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(item, name, "changed")
        with pytest.raises(AttributeError):
            item.content = "changed"  # type: ignore[misc]
        assert item == ContextItem(content="x", id="a", description="d")

    def test_hashable_and_equal_by_fields(self) -> None:
        a = ContextItem("x", "d", "a")
        same = ContextItem(content="x", description="d", id="a")
        assert a == same
        assert hash(a) == hash(same)
        assert {a, same, ContextItem("y")} == {a, ContextItem("y")}
        assert {a: 1}[same] == 1

    def test_is_a_dataclass(self) -> None:
        item = ContextItem("x", "d", "a")
        assert dataclasses.is_dataclass(item)
        changed = dataclasses.replace(item, content="y")
        assert (changed.content, changed.description, changed.id) == ("y", "d", "a")
        assert item.content == "x"
        assert [f.name for f in dataclasses.fields(item)] == ["content", "description", "id"]

    def test_repr_lists_the_fields(self) -> None:
        assert repr(ContextItem("x")) == "ContextItem(content='x', description=None, id=None)"

    def test_subscripted_alias_builds_an_ordinary_item(self) -> None:
        item = ContextItem[str](content="x")
        assert type(item) is ContextItem
        assert item == ContextItem("x")
        assert ContextItem[list[int]]([1, 2], "nums", "n").id == "n"

    def test_containers_are_subscriptable(self) -> None:
        assert isinstance(ContextQueue[str](limit=2), ContextQueue)
        assert isinstance(ContextPool[dict[str, int]](), ContextPool)

    def test_type_error_messages_are_bounded(self) -> None:
        huge = ["x" * 1_000_000]
        with pytest.raises(TypeError) as info:
            ContextItem(content="c", id=huge)  # type: ignore[arg-type]
        assert len(str(info.value)) < 300


@dataclasses.dataclass
class Query:
    text: str


class TestContextItemFromDictKeepsContent:
    # ``from_dict`` takes back what ``to_dict`` wrote, whatever the content: whether it goes
    # through ``json`` is the caller's concern (these were refused as "not JSON data").
    @pytest.mark.parametrize(
        "content",
        [
            print,
            Query("hi"),
            {"a": [1, object()]},
            {1: "x"},
            {"s": {1, 2}},
            b"bytes",
            Decimal("1.5"),
            datetime(2024, 5, 1, tzinfo=UTC),
        ],
        ids=["function", "dataclass", "object", "int-key", "set", "bytes", "decimal", "datetime"],
    )
    def test_any_content_comes_back_as_given(self, content: Any) -> None:
        item = ContextItem(content=content, description="d", id="x")
        restored = ContextItem.from_dict(item.to_dict())
        assert restored.content is content
        assert restored == item

    def test_a_cycle_is_kept(self) -> None:
        loop: list[Any] = [1]
        loop.append(loop)
        assert ContextItem.from_dict({"content": loop}).content is loop

    def test_json_content_is_accepted(self) -> None:
        shared = [1, 2]
        content = {"a": [None, True, 1, 2.5, "s", (3, 4)], "b": shared, "c": shared}
        assert ContextItem.from_dict({"content": content}).content == content

    def test_deep_nesting_is_not_walked(self) -> None:
        deep: Any = [object()]
        for _ in range(100_000):
            deep = {"k": deep}
        assert ContextItem.from_dict({"content": deep}).content is deep

    async def test_queue_and_pool_round_trip_any_content(self) -> None:
        q: ContextQueue[Any] = ContextQueue(limit=3)
        await q.append(ContextItem(Query("a")), ContextItem({2, 3}))
        assert ContextQueue.from_dict(q.to_dict()).items == q.items
        pool: ContextPool[Any] = ContextPool()
        await pool.add(ContextItem(Decimal("2"), "a number", "n"))
        await pool.add(ContextItem(print, "a function", "f"))
        assert ContextPool.from_dict(pool.to_dict()).items == pool.items

    @pytest.mark.parametrize(
        "data",
        [None, [], {"id": "a"}, {"content": 1, "id": 5}, {"content": 1, "description": b"d"}],
    )
    def test_the_structure_is_still_checked(self, data: Any) -> None:
        with pytest.raises(SerializationError, match=r"ContextItem\.from_dict"):
            ContextItem.from_dict(data)
        pool_data = {"limit": None, "items": [data]}
        with pytest.raises(SerializationError, match=r"'items'\[0\]"):
            ContextPool.from_dict(pool_data)


class TestConstructorOrder:
    def test_queue_limit_then_tags(self) -> None:
        q = ContextQueue(5, ["a", "b"])
        assert (q.limit, q.tags, q.hooks) == (5, frozenset({"a", "b"}), [])

    def test_pool_limit_then_tags(self) -> None:
        pool = ContextPool(5, ["a"])
        assert (pool.limit, pool.tags, pool.hooks) == (5, frozenset({"a"}), [])

    @pytest.mark.parametrize("cls", [ContextQueue, ContextPool])
    def test_extras_are_keyword_only(self, cls: Any) -> None:
        with pytest.raises(TypeError):
            cls(5, None, [])
        made = cls(5, None, hooks=[], name="window")
        assert made.name == "window"


class TestTagsAssignment:
    # Assigned tags were kept as given: ``q.tags = "io"`` stayed a string, which tag
    # filtering then read as the tags "i" and "o".
    @pytest.mark.parametrize("cls", [ContextQueue, ContextPool])
    def test_assignment_converts_like_the_constructor(self, cls: Any) -> None:
        made = cls(limit=2)
        made.tags = ["io", "db", "io"]
        assert made.tags == frozenset({"io", "db"}) and type(made.tags) is frozenset
        made.tags = None
        assert made.tags == frozenset()
        made.tags = ("io",)
        for wrong in ("io", [1], 5):
            with pytest.raises(TypeError, match="tags"):
                made.tags = wrong
            with pytest.raises(TypeError, match="tags"):
                cls(limit=2, tags=wrong)
        assert made.tags == frozenset({"io"})
        assert made.to_dict()["tags"] == ["io"]
        assert made.branch().tags == frozenset({"io"})

    async def test_assigned_tags_filter_global_hooks(self) -> None:
        seen: list[str] = []

        @hook(ContextQueueHook.AFTER_APPEND, tags={"i"})
        async def letter_i(q: ContextQueue[Any], *rest: Any) -> None:
            seen.append("i")

        @hook(ContextPoolHook.AFTER_ADD, tags={"io"})
        async def word_io(p: ContextPool[Any], item: ContextItem[Any]) -> None:
            seen.append("io")

        q: ContextQueue[Any] = ContextQueue(limit=2)
        q.tags = ["io"]
        await q.append(ContextItem(1))
        pool: ContextPool[Any] = ContextPool()
        pool.tags = ["io"]
        await pool.add(ContextItem(1, "d", "a"))
        assert seen == ["io"]


class TestRepr:
    async def test_queue(self) -> None:
        q = ContextQueue(limit=4)
        await q.append(*items(1, 2))
        assert repr(q) == "ContextQueue(limit=4, len=2)"

    async def test_pool(self) -> None:
        pool = ContextPool(limit=3)
        await pool.add(doc("a"))
        assert repr(pool) == "ContextPool(limit=3, len=1)"
        assert repr(ContextPool()) == "ContextPool(limit=None, len=0)"


class TestQueueItemsAssignment:
    async def test_replaces_in_order_without_hooks(self) -> None:
        q = ContextQueue(limit=3)
        await q.append(*items("old"))
        calls: list[str] = []

        @q.before_append
        async def before(queue: ContextQueue, incoming: Any, current: Any) -> None:
            calls.append("before_append")

        @q.on_evict
        async def evict(queue: ContextQueue, item: ContextItem[Any]) -> None:
            calls.append("evict")

        @q.before_clear
        async def clearing(queue: ContextQueue, snapshot: Any) -> None:
            calls.append("before_clear")

        q.items = items(1, 2, 3, 4, 5)
        assert contents(q) == [3, 4, 5]
        assert calls == []
        await q.append(ContextItem(content=6))
        assert contents(q) == [4, 5, 6]
        assert calls == ["before_append", "evict"]

    async def test_reading_still_returns_a_copy(self) -> None:
        q = ContextQueue(limit=3)
        given = items(1, 2)
        q.items = given
        given.append(ContextItem(content="later"))
        view = q.items
        view.clear()
        assert contents(q) == [1, 2]

    async def test_accepts_any_iterable_and_empty(self) -> None:
        q = ContextQueue(limit=3)
        q.items = (ContextItem(content=c) for c in "ab")
        assert contents(q) == ["a", "b"]
        q.items = []
        assert len(q) == 0

    async def test_non_item_is_type_error_and_changes_nothing(self) -> None:
        q = ContextQueue(limit=3)
        await q.append(*items(1))
        with pytest.raises(TypeError, match="ContextItem"):
            q.items = [ContextItem(content=2), "plain"]  # type: ignore[list-item]
        assert contents(q) == [1]


class TestQueueHistory:
    async def test_all_items_oldest_first(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items("a", 2, {"k": 1}))
        assert q.history() == "a\n2\n{'k': 1}"

    async def test_last(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items("a", "b", "c"))
        assert q.history(last=2) == "b\nc"
        assert q.history(2) == "b\nc"
        assert q.history(last=1) == "c"
        assert q.history(last=10) == "a\nb\nc"

    async def test_last_zero_means_everything_like_the_original(self) -> None:
        q = ContextQueue(limit=5)
        await q.append(*items("a", "b"))
        assert q.history(last=0) == "a\nb"

    async def test_empty_queue(self) -> None:
        q = ContextQueue(limit=5)
        assert q.history() == ""
        assert q.history(last=3) == ""

    async def test_bad_last(self) -> None:
        q = ContextQueue(limit=5)
        with pytest.raises(ValueError):
            q.history(last=-1)
        with pytest.raises(TypeError):
            q.history(last="2")  # type: ignore[arg-type]


class TestPoolGetEverywhere:
    async def test_branch_child_raises_too(self) -> None:
        pool = ContextPool()
        await pool.add(doc("a"))
        child = pool.branch()
        assert child.get("a").id == "a"
        with pytest.raises(KeyError):
            child.get("missing")
        assert child.get("missing", None) is None

    async def test_restored_pool_raises_too(self) -> None:
        restored = ContextPool.from_dict(ContextPool().to_dict())
        with pytest.raises(KeyError):
            restored.get("missing")


class Shelf(ContextPool):
    """A subclass whose constructor only takes the reference's keywords."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, *, limit: int | None = None, tags: Any = None) -> None:
        Shelf.made.append({"limit": limit, "tags": tags})
        super().__init__(limit, tags)
        self.label = "shelf"


class TestPoolBranch:
    async def test_branch_keeps_the_subclass(self) -> None:
        Shelf.made.clear()
        shelf = Shelf(limit=5, tags=["t"])
        await shelf.add(doc("a"))
        child = shelf.branch(limit=2)
        assert type(child) is Shelf
        assert child.label == "shelf"
        assert Shelf.made[-1] == {"limit": 2, "tags": frozenset({"t"})}
        assert [i.id for i in child.items] == ["a"]

    async def test_branch_copies_hooks_and_items_without_firing(self) -> None:
        pool = ContextPool(limit=5, name="store")
        fired: list[str] = []

        @pool.before_add
        async def before(p: ContextPool, item: ContextItem[Any]) -> None:
            fired.append(f"before {item.id}")

        await pool.add(doc("a"))
        await pool.add(doc("b"))
        fired.clear()
        child = pool.branch(limit=1)
        assert fired == []
        assert [i.id for i in child.items] == ["b"]
        assert child.hooks == [before]
        assert child.hooks is not pool.hooks
        assert child.name == "store"

    @pytest.mark.parametrize("given", [None, []])
    async def test_none_or_empty_hooks_give_none(self, given: Any) -> None:
        pool = ContextPool()

        @pool.after_add
        async def after(p: ContextPool, item: ContextItem[Any]) -> None:
            raise AssertionError("the child has no hooks")

        child = pool.branch(hooks=given)
        assert child.hooks == []
        await child.add(doc("a"))

    async def test_a_hook_list_is_copied(self) -> None:
        pool = ContextPool()
        other = ContextPool()

        @other.after_add
        async def noted(p: ContextPool, item: ContextItem[Any]) -> None:
            pass

        given = [noted]
        child = pool.branch(hooks=given)
        assert child.hooks == [noted]
        given.clear()
        assert child.hooks == [noted]

    async def test_queue_branch_hooks_none_gives_none(self) -> None:
        q = ContextQueue(limit=2)

        @q.before_append
        async def before(queue: ContextQueue, incoming: Any, current: Any) -> None:
            pass

        assert q.branch(hooks=None).hooks == []
        assert q.branch().hooks == [before]


class TestSerializedShape:
    async def test_queue_hooks_by_type_and_no_name_key(self) -> None:
        q = ContextQueue(limit=3)

        @q.before_append
        async def audit(queue: ContextQueue, incoming: Any, current: Any) -> None:
            pass

        await q.append(ContextItem(content="x"))
        assert q.to_dict() == {
            "limit": 3,
            "items": [{"content": "x", "description": None, "id": None}],
            "hooks": {"before_append": ["audit"]},
            "tags": [],
        }
        assert ContextQueue(limit=1).to_dict()["hooks"] == {}
        assert ContextQueue(limit=1, name="w").to_dict()["name"] == "w"

    async def test_pool_hooks_by_type_and_no_name_key(self) -> None:
        pool = ContextPool()

        @pool.after_add
        async def audit(p: ContextPool, item: ContextItem[Any]) -> None:
            pass

        assert pool.to_dict() == {
            "limit": None,
            "items": [],
            "hooks": {"after_add": ["audit"]},
            "tags": [],
        }

    async def test_round_trip_of_the_mapping(self) -> None:
        q = ContextQueue(limit=3)

        @q.on_evict
        async def evicted(queue: ContextQueue, item: ContextItem[Any]) -> None:
            pass

        pool = ContextPool()

        @pool.before_remove
        async def removing(p: ContextPool, item: ContextItem[Any]) -> None:
            pass

        assert ContextQueue.from_dict(q.to_dict()).hooks == [evicted]
        assert ContextPool.from_dict(pool.to_dict()).hooks == [removing]

    async def test_legacy_list_of_names_is_accepted(self) -> None:
        pool = ContextPool()

        @pool.after_add
        async def audit(p: ContextPool, item: ContextItem[Any]) -> None:
            pass

        assert ContextPool.from_dict({"limit": None, "items": [], "hooks": ["audit"]}).hooks == [
            audit
        ]

    async def test_a_pool_hook_in_a_queues_list_round_trips(self) -> None:
        # Hooks lists are plain lists (COMPAT B8): a queue may hold a pool hook, and
        # from_dict takes back what to_dict wrote (the payloads below were refused).
        pool = ContextPool()

        @pool.after_add
        async def pool_only(p: ContextPool, item: ContextItem[Any]) -> None:
            pass

        q: ContextQueue[Any] = ContextQueue(limit=2)
        q.hooks.append(pool_only)
        assert q.to_dict()["hooks"] == {"after_add": ["pool_only"]}
        assert ContextQueue.from_dict(q.to_dict()).hooks == [pool_only]
        assert ContextQueue.from_dict({"limit": 2, "hooks": ["pool_only"]}).hooks == [pool_only]

    async def test_a_hook_of_both_families_round_trips_in_both(self) -> None:
        @hook([ContextQueueHook.AFTER_APPEND, ContextPoolHook.AFTER_ADD])
        async def either(container: Any, *rest: Any) -> None:
            pass

        q: ContextQueue[Any] = ContextQueue(limit=2, hooks=[either])
        pool: ContextPool[Any] = ContextPool(hooks=[either])
        for container in (q, pool):
            data = container.to_dict()
            assert data["hooks"] == {"after_append": ["either"], "after_add": ["either"]}
            assert type(container).from_dict(data).hooks == [either]
        agent = Agent("both", "d", [], context_queue=q, context_pool=pool)
        data = agent.to_dict()
        AgentRegistry.clear()
        restored = Agent.from_dict(data)
        assert restored.context_queue.hooks == [either]
        assert restored.context_pool.hooks == [either]

    async def test_a_pool_hook_stacked_onto_a_queue_event_of_the_same_name(self) -> None:
        # ``on_evict`` is an event of both families. Stacked onto the queue's, the pool's
        # hook is saved under "on_evict" in the queue's hooks, and comes back firing on the
        # queue's eviction (the key means the owner's event of that name).
        fired: list[Any] = []
        pool: ContextPool[Any] = ContextPool()
        q: ContextQueue[Any] = ContextQueue(limit=1)

        @q.on_evict
        @pool.on_evict
        async def log_evict(container: Any, item: ContextItem[Any]) -> None:
            fired.append((type(container).__name__, item.content))

        assert q.to_dict()["hooks"] == {"on_evict": ["log_evict"]}
        restored = ContextQueue.from_dict(q.to_dict())
        await restored.append(ContextItem(1), ContextItem(2))
        assert fired == [("ContextQueue", 1)]
        assert restored.to_dict()["hooks"] == {"on_evict": ["log_evict"]}

    def test_pool_from_dict_accepts_empty_hook_mapping(self) -> None:
        data = {
            "limit": 10,
            "items": [
                {"id": "a", "description": "first", "content": 1},
                {"id": "b", "description": "second", "content": {"k": [1]}},
            ],
            "hooks": {},
        }
        pool = ContextPool.from_dict(data)
        assert pool.hooks == []
        assert [(i.id, i.content) for i in pool.items] == [("a", 1), ("b", {"k": [1]})]

    def test_pool_from_dict_keeps_every_item(self) -> None:
        data = {
            "limit": 2,
            "items": [{"id": k, "description": k, "content": k} for k in "abcd"],
            "hooks": {},
        }
        pool = ContextPool.from_dict(data)
        assert pool.limit == 2
        assert [i.id for i in pool.items] == ["a", "b", "c", "d"]

    def test_pool_from_dict_restores_the_subclass(self) -> None:
        shelf = Shelf.from_dict({"limit": 3, "items": [], "tags": ["t"]})
        assert type(shelf) is Shelf
        assert shelf.tags == frozenset({"t"})


class TestMessagePhrases:
    @pytest.mark.parametrize(
        "item", [ContextItem("c", "no id"), ContextItem("c", None, "no-desc"), ContextItem("c")]
    )
    async def test_pool_add_names_id_and_description(self, item: ContextItem[Any]) -> None:
        with pytest.raises(ValueError, match="'id' and 'description'"):
            await ContextPool().add(item)

    def test_pool_from_dict_item_without_id(self) -> None:
        data = {"limit": None, "items": [{"description": "d", "content": 1}]}
        with pytest.raises(
            SerializationError, match="ContextPool requires a ContextItem with 'id' set"
        ) as info:
            ContextPool.from_dict(data)
        assert isinstance(info.value, ValueError)

    async def test_pool_from_dict_item_without_description_is_accepted(self) -> None:
        # The original's from_dict checks only the id (COMPAT D1); add() still needs both.
        data = {"limit": None, "items": [{"id": "a", "content": 1}]}
        pool = ContextPool.from_dict(data)
        assert pool.items == [ContextItem(content=1, id="a")]
        assert pool.to_dict()["items"] == [{"content": 1, "description": None, "id": "a"}]
        with pytest.raises(ValueError, match="'id' and 'description'"):
            await pool.add(ContextItem(content=1, id="b"))

    @pytest.mark.parametrize("cls", [ContextQueue, ContextPool])
    def test_limit_phrase(self, cls: Any) -> None:
        with pytest.raises(ValueError, match="limit must be >= 1"):
            cls(limit=0)

    async def test_append_type_error_names_context_item(self) -> None:
        with pytest.raises(TypeError, match="ContextItem"):
            await ContextQueue(limit=2).append("plain")  # type: ignore[arg-type]

    def test_huge_negative_limit_gives_a_bounded_message(self) -> None:
        with pytest.raises(SerializationError) as info:
            ContextQueue.from_dict({"limit": -(10**4000)})
        assert len(str(info.value)) < 300


# --------------------------------------------------------------------------- limit assignment


class TestLimitAssignment:
    """``limit`` assigned after construction: validated like the constructor, applied at once."""

    @pytest.mark.parametrize("cls", [ContextQueue, ContextPool])
    @pytest.mark.parametrize(
        ("bad", "error"),
        [(0, ValueError), (-3, ValueError), ("x", TypeError), (2.5, TypeError), (True, TypeError)],
    )
    def test_invalid_limit_raises_as_the_constructor_does(
        self, cls: type, bad: Any, error: type[Exception]
    ) -> None:
        container = cls(limit=4)
        with pytest.raises(error) as from_setter:
            container.limit = bad
        with pytest.raises(error) as from_constructor:
            cls(limit=bad)
        assert str(from_setter.value) == str(from_constructor.value)
        assert container.limit == 4  # unchanged

    def test_queue_refuses_none_pool_accepts_it(self) -> None:
        q = ContextQueue(limit=2)
        with pytest.raises(TypeError, match="ContextQueue limit must be an int"):
            q.limit = None  # type: ignore[assignment]
        pool = ContextPool(limit=2)
        pool.limit = None
        assert pool.limit is None

    async def test_shrinking_a_queue_keeps_the_newest_without_hooks(self) -> None:
        q = ContextQueue(limit=10)
        await q.append(*items(*range(10)))
        fired: list[Any] = []

        @q.on_evict
        async def on_evict(queue: ContextQueue, item: ContextItem) -> None:
            fired.append(item.content)

        q.limit = 3
        assert contents(q) == [7, 8, 9] and repr(q) == "ContextQueue(limit=3, len=3)"
        assert fired == []  # trimming is not an eviction
        await q.append(ContextItem("new"))
        assert contents(q) == [8, 9, "new"] and fired == [7]

    async def test_growing_a_queue_keeps_more(self) -> None:
        q = ContextQueue(limit=2)
        await q.append(*items("a", "b"))
        q.limit = 3
        await q.append(ContextItem("c"))
        assert contents(q) == ["a", "b", "c"]

    async def test_shrinking_a_pool_keeps_the_newest_without_hooks(self) -> None:
        pool = ContextPool(limit=5)
        for name in "abcde":
            await pool.add(doc(name))
        fired: list[Any] = []

        @pool.on_evict
        async def on_evict(p: ContextPool, item: ContextItem) -> None:
            fired.append(item.id)

        pool.limit = 2
        assert [i.id for i in pool.items] == ["d", "e"] and fired == []
        await pool.add(doc("f"))
        assert [i.id for i in pool.items] == ["e", "f"] and fired == ["d"]

    async def test_a_limited_pool_after_the_setter_adds_without_error(self) -> None:
        # Before the fix, limit = 0 made add() fail with "coroutine raised StopIteration".
        pool = ContextPool()
        pool.limit = 1
        await pool.add(doc("a"))
        await pool.add(doc("b"))
        assert [i.id for i in pool.items] == ["b"]


# --------------------------------------------------------------------------- on_evict raising


class TestOnEvictRaising:
    """An ``on_evict`` hook reports a change that has happened: the append/add completes."""

    async def test_queue_append_completes_then_raises(self) -> None:
        q = ContextQueue(limit=2)
        await q.append(*items("a", "b"))
        seen: list[Any] = []

        @q.on_evict
        async def archive(queue: ContextQueue, item: ContextItem) -> None:
            seen.append(item.content)
            raise RuntimeError("archive down")

        @q.after_append
        async def after(queue: ContextQueue, new: list, current: list) -> None:
            seen.append(("after", [i.content for i in current]))

        with pytest.raises(RuntimeError, match="archive down"):
            await q.append(*items("c", "d"))
        assert contents(q) == ["c", "d"]
        # Every eviction reported, after_append fired, then the first error raised.
        assert seen == ["a", "b", ("after", ["c", "d"])]

    async def test_queue_after_append_error_chains_the_evict_error(self) -> None:
        q = ContextQueue(limit=1)
        await q.append(ContextItem("a"))

        @q.on_evict
        async def archive(queue: ContextQueue, item: ContextItem) -> None:
            raise RuntimeError("archive down")

        @q.after_append
        async def after(queue: ContextQueue, new: list, current: list) -> None:
            raise KeyError("after")

        with pytest.raises(KeyError) as caught:
            await q.append(ContextItem("b"))
        assert isinstance(caught.value.__context__, RuntimeError)
        assert contents(q) == ["b"]

    async def test_a_cancelled_eviction_report_still_finishes_the_append(self) -> None:
        q = ContextQueue(limit=2)
        await q.append(*items("a", "b"))
        started = asyncio.Event()

        @q.on_evict
        async def slow_archive(queue: ContextQueue, item: ContextItem) -> None:
            started.set()
            await asyncio.sleep(3600)

        task = asyncio.create_task(q.append(*items("c", "d", "e")))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # "a" was evicted when the cancellation came: the append was finished (no item lost
        # half-way, no further hook), then the task ended cancelled.
        assert contents(q) == ["d", "e"]

    async def test_pool_add_completes_then_raises(self) -> None:
        pool = ContextPool(limit=2)
        await pool.add(doc("a"))
        await pool.add(doc("b"))
        seen: list[Any] = []

        @pool.on_evict
        async def archive(p: ContextPool, item: ContextItem) -> None:
            seen.append(("evict", item.id))
            raise RuntimeError("archive down")

        @pool.after_add
        async def after(p: ContextPool, item: ContextItem) -> None:
            seen.append(("after", item.id))

        with pytest.raises(RuntimeError, match="archive down"):
            await pool.add(doc("c"))
        assert [i.id for i in pool.items] == ["b", "c"]
        assert seen == [("evict", "a"), ("after", "c")]

    async def test_pool_before_add_veto_still_wins_and_chains(self) -> None:
        pool = ContextPool(limit=1)
        await pool.add(doc("a"))

        @pool.on_evict
        async def archive(p: ContextPool, item: ContextItem) -> None:
            raise RuntimeError("archive down")

        @pool.before_add
        async def veto(p: ContextPool, item: ContextItem) -> None:
            raise PermissionError("no")

        with pytest.raises(PermissionError) as caught:
            await pool.add(doc("b"))
        assert isinstance(caught.value.__context__, RuntimeError)
        assert len(pool) == 0  # the eviction stands, the add was vetoed

    @pytest.mark.parametrize("kind", ["queue", "pool"])
    async def test_both_containers_agree(self, kind: str) -> None:
        # limit=2 holding [a, b], one more in, on_evict raising: both end as [b, c].
        container: Any
        if kind == "queue":
            container = ContextQueue(limit=2)
            await container.append(ContextItem("a", "a", "a"), ContextItem("b", "b", "b"))
        else:
            container = ContextPool(limit=2)
            await container.add(ContextItem("a", "a", "a"))
            await container.add(ContextItem("b", "b", "b"))

        @container.on_evict
        async def archive(c: Any, item: ContextItem) -> None:
            raise RuntimeError("archive down")

        with pytest.raises(RuntimeError):
            if kind == "queue":
                await container.append(ContextItem("c", "c", "c"))
            else:
                await container.add(ContextItem("c", "c", "c"))
        assert [i.content for i in container.items] == ["b", "c"]
