"""Porting: what the original pygents documents about context, run on this package.

Each test follows one documented example or rule of the original's context page, written in
our own words and names, and checks what that page says it prints or does.
"""

from __future__ import annotations

from typing import Any

import pytest

from pygents import Agent, AgentRegistry, ContextQueue, Turn, tool
from pygents.context import ContextItem, ContextPool
from pygents.errors import UnregisteredHookError


def texts(container: Any) -> list[Any]:
    return [item.content for item in container.items]


# --------------------------------------------------------------------------- ContextItem


def test_item_by_keywords_and_only_content_needed() -> None:
    report = ContextItem(
        content={"body": "..."}, description="Annual report: sales, costs", id="r1"
    )
    assert (report.content, report.description, report.id) == (
        {"body": "..."},
        "Annual report: sales, costs",
        "r1",
    )
    bare = ContextItem(content="just text")
    assert (bare.description, bare.id) == (None, None)


def test_item_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ContextItem(content="x").content = "y"  # type: ignore[misc]


# --------------------------------------------------------------------------- ContextQueue


async def test_queue_append_read_and_clear() -> None:
    chat = ContextQueue(limit=10)
    await chat.append(ContextItem(content="user: hi"))
    await chat.append(ContextItem(content="bot: hello"), ContextItem(content="user: bye"))
    assert len(chat) == 3
    assert bool(chat)
    assert [i.content for i in list(chat)] == ["user: hi", "bot: hello", "user: bye"]
    copy = chat.items
    copy.clear()
    assert len(chat.items) == 3
    await chat.clear()
    assert not chat
    assert len(chat) == 0


async def test_queue_tags_are_a_frozenset_kept_by_branch_and_serde() -> None:
    watched = ContextQueue(limit=20, tags=["chat", "audited"])
    assert watched.tags == frozenset({"chat", "audited"})
    assert watched.branch().tags == watched.tags
    assert ContextQueue.from_dict(watched.to_dict()).tags == watched.tags


async def test_queue_errors() -> None:
    for bad in (0, -3):
        with pytest.raises(ValueError):
            ContextQueue(limit=bad)
    with pytest.raises(TypeError):
        await ContextQueue(limit=2).append("not an item")  # type: ignore[arg-type]


async def test_queue_branches_diverge() -> None:
    session = ContextQueue(limit=20)
    await session.append(ContextItem(content="rules"), ContextItem(content="question"))
    step = session.branch()
    await step.append(ContextItem(content="lookup result"))
    sub = step.branch(limit=5)
    await sub.append(ContextItem(content="inner output"))

    assert ContextItem(content="lookup result") not in session.items
    assert ContextItem(content="inner output") not in step.items
    assert texts(sub) == ["rules", "question", "lookup result", "inner output"]


async def test_queue_branch_smaller_limit_and_hook_choices() -> None:
    window = ContextQueue(limit=10)
    await window.append(*(ContextItem(content=n) for n in range(4)))

    @window.before_append
    async def watch(queue: ContextQueue, incoming: Any, current: Any) -> None:
        pass

    assert texts(window.branch(limit=2)) == [2, 3]
    assert window.branch().hooks == [watch]
    assert window.branch(hooks=[]).hooks == []


async def test_queue_hook_example_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    log = ContextQueue(limit=20)

    @log.before_append
    async def count_before(queue: ContextQueue, incoming: Any, current: Any) -> None:
        print(f"Current count: {len(current)}")

    @log.after_append
    async def count_after(queue: ContextQueue, appended: Any, current: Any) -> None:
        print(f"New count: {len(current)}")

    await log.append(ContextItem(content="a"), ContextItem(content="b"), ContextItem(content="c"))
    assert capsys.readouterr().out == "Current count: 0\nNew count: 3\n"


async def test_queue_serialization_shape_and_unknown_hook() -> None:
    window = ContextQueue(limit=10)

    @window.on_evict
    async def dropped(queue: ContextQueue, item: ContextItem[Any]) -> None:
        pass

    await window.append(ContextItem(content="kept"))
    data = window.to_dict()
    assert set(data) == {"limit", "items", "hooks", "tags"}
    assert data["limit"] == 10
    assert data["hooks"] == {"on_evict": ["dropped"]}
    again = ContextQueue.from_dict(data)
    assert texts(again) == ["kept"]
    assert again.hooks == [dropped]

    with pytest.raises(UnregisteredHookError):
        ContextQueue.from_dict({"limit": 10, "items": [], "hooks": {"on_evict": ["nobody"]}})


async def test_agent_routes_an_unkeyed_item_to_its_queue() -> None:
    @tool()
    async def digest(text: str) -> ContextItem[str]:
        return ContextItem(content=f"digest of {text}")

    agent = Agent("digester", "Digests text", [digest])
    assert agent.context_queue.limit == 10
    await agent.put(Turn("digest", kwargs={"text": "notes"}))
    async for _ in agent.run():
        pass
    assert agent.context_queue.items[0].content == "digest of notes"

    roomy = Agent("digester2", "Digests text", [digest], context_queue=ContextQueue(limit=20))
    assert roomy.context_queue.limit == 20


# --------------------------------------------------------------------------- ContextPool


async def test_pool_basics() -> None:
    assert ContextPool(limit=50).limit == 50
    assert ContextPool().limit is None
    assert ContextPool(limit=50, tags=["docs"]).tags == frozenset({"docs"})

    shelf = ContextPool(limit=50)
    await shelf.add(ContextItem(id="p", description="Primer", content=1))
    await shelf.add(ContextItem(id="q", description="Quiz", content=2))
    assert shelf.get("p").content == 1
    await shelf.remove("p")
    with pytest.raises(KeyError):
        shelf.get("p")
    with pytest.raises(KeyError):
        await shelf.remove("p")
    assert shelf.catalogue() == "- [q] Quiz"
    await shelf.clear()
    assert len(shelf) == 0


async def test_pool_same_id_replaces_in_place_with_hooks() -> None:
    shelf = ContextPool(limit=2)
    events: list[str] = []

    @shelf.before_add
    async def before(pool: ContextPool, item: ContextItem[Any]) -> None:
        events.append(f"before {item.content}")

    @shelf.after_add
    async def after(pool: ContextPool, item: ContextItem[Any]) -> None:
        events.append(f"after {item.content}")

    @shelf.on_evict
    async def evicted(pool: ContextPool, item: ContextItem[Any]) -> None:
        events.append(f"evict {item.id}")

    await shelf.add(ContextItem(id="a", description="A", content=1))
    await shelf.add(ContextItem(id="b", description="B", content=2))
    await shelf.add(ContextItem(id="a", description="A v2", content=3))
    assert [(i.id, i.content) for i in shelf.items] == [("a", 3), ("b", 2)]
    assert "evict a" not in events
    assert events[-2:] == ["before 3", "after 3"]
    await shelf.add(ContextItem(id="c", description="C", content=4))
    assert [i.id for i in shelf.items] == ["b", "c"]
    assert "evict a" in events


async def test_pool_errors() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError):
            ContextPool(limit=bad)
    for item in (ContextItem(content=1, description="no id"), ContextItem(content=1, id="x")):
        with pytest.raises(ValueError):
            await ContextPool().add(item)


async def test_agent_stores_a_keyed_item_and_the_caller_sees_nothing_routed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @tool()
    async def load(doc_id: str) -> ContextItem[str]:
        return ContextItem(id=doc_id, description=f"Memo {doc_id}: budget", content="figures")

    shelf = ContextPool()

    @shelf.after_add
    async def announce(pool: ContextPool, item: ContextItem[Any]) -> None:
        print(f"Added {item.id!r}: {item.description}")

    agent = Agent("loader", "Loads memos", [load], context_pool=shelf)
    await agent.put(Turn("load", kwargs={"doc_id": "m-7"}))
    seen = [value async for _, value in agent.run()]

    assert seen == []  # the agent consumed the item
    assert agent.context_pool.get("m-7").content == "figures"
    assert capsys.readouterr().out == "Added 'm-7': Memo m-7: budget\n"


async def test_pool_branch_and_hooks_printing(capsys: pytest.CaptureFixture[str]) -> None:
    base = ContextPool(limit=20)
    await base.add(ContextItem(id="k", description="Key", content=0))

    @base.before_add
    async def size_before(pool: ContextPool, item: ContextItem[Any]) -> None:
        print(f"About to add {item.id!r}, pool size: {len(pool)}")

    @base.after_add
    async def size_after(pool: ContextPool, item: ContextItem[Any]) -> None:
        print(f"Added {item.id!r}, pool size: {len(pool)}")

    child = base.branch()
    small = base.branch(limit=5)
    assert (child.limit, small.limit) == (20, 5)
    assert [i.id for i in child.items] == ["k"]
    assert capsys.readouterr().out == ""  # no hook fires while branching

    await child.add(ContextItem(id="z", description="Zed", content=1))
    assert capsys.readouterr().out == "About to add 'z', pool size: 1\nAdded 'z', pool size: 2\n"
    assert "z" not in base


async def test_pool_serialization_restores_every_item_without_hooks() -> None:
    shelf = ContextPool(limit=3)
    fired: list[str] = []

    @shelf.after_add
    async def noted(pool: ContextPool, item: ContextItem[Any]) -> None:
        fired.append(item.id or "")

    for key in "abc":
        await shelf.add(ContextItem(id=key, description=key.upper(), content=key))
    fired.clear()
    data = shelf.to_dict()
    assert set(data) == {"limit", "items", "hooks", "tags"}
    assert data["hooks"] == {"after_add": ["noted"]}
    again = ContextPool.from_dict(data)
    assert [i.id for i in again.items] == ["a", "b", "c"]
    assert again.hooks == [noted]
    assert fired == []

    with pytest.raises(UnregisteredHookError):
        ContextPool.from_dict({"limit": None, "items": [], "hooks": {"after_add": ["ghost"]}})


async def test_agent_serialization_carries_the_pool_and_its_hooks() -> None:
    @tool()
    async def idle() -> None:
        return None

    shelf = ContextPool()

    @shelf.before_remove
    async def guard(pool: ContextPool, item: ContextItem[Any]) -> None:
        pass

    await shelf.add(ContextItem(id="x", description="X", content="body"))
    agent = Agent("keeper", "Keeps things", [idle], context_pool=shelf)
    data = agent.to_dict()
    AgentRegistry.unregister("keeper")  # names are unique: let the restored agent take it
    restored = Agent.from_dict(data)
    assert restored.context_pool.get("x").content == "body"
    assert restored.context_pool.hooks == [guard]


# --------------------------------------------------------------------------- tools reading context


async def test_tools_receive_the_agents_containers() -> None:
    seen: dict[str, Any] = {}

    @tool()
    async def recall(topic: str, memory: ContextQueue) -> str:
        seen["recent"] = [item.content for item in memory.items[-3:]]
        return topic

    @tool()
    async def browse(question: str, pool: ContextPool) -> str:
        seen["catalogue"] = pool.catalogue()
        return question

    agent = Agent("reader", "Reads", [recall, browse])
    await agent.context_queue.append(*(ContextItem(content=n) for n in range(5)))
    await agent.context_pool.add(ContextItem(id="d", description="Doc", content="..."))
    await agent.put(Turn("recall", kwargs={"topic": "t"}))
    await agent.put(Turn("browse", kwargs={"question": "q"}))
    values = [value async for _, value in agent.run()]

    assert values == ["t", "q"]
    assert seen == {"recent": [2, 3, 4], "catalogue": "- [d] Doc"}


async def test_optional_context_parameter_inside_and_outside_an_agent() -> None:
    @tool()
    async def ponder(question: str, memory: ContextQueue | None = None) -> list[Any]:
        return [item.content for item in memory.items] if memory else []

    assert await ponder("alone?") == []

    agent = Agent("ponderer", "Ponders", [ponder])
    await agent.context_queue.append(ContextItem(content="earlier"))
    await agent.put(Turn("ponder", kwargs={"question": "q"}))
    other = ContextQueue(limit=3)
    await other.append(ContextItem(content="explicit"))
    await agent.put(Turn("ponder", kwargs={"question": "q", "memory": other}))
    values = [value async for _, value in agent.run()]
    assert values == [["earlier"], ["explicit"]]


async def test_required_context_parameter_outside_an_agent_is_a_type_error() -> None:
    @tool()
    async def needs_memory(memory: ContextQueue) -> int:
        return len(memory)

    with pytest.raises(TypeError):
        await needs_memory()  # type: ignore[call-arg]
