"""Checkpoint stores and restoring checkpoints: SQLite on real files, corrupt and hostile data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pygents import (
    Agent,
    AgentRegistry,
    CheckpointError,
    CheckpointStoreError,
    ContextItem,
    SerializationError,
    Service,
    Turn,
    current_turn,
    tool,
)
from pygents.store import Checkpoint, CheckpointStore, MemoryStore, SQLiteStore, to_json


@pytest.fixture
def tools() -> Any:
    @tool()
    async def note(text: str) -> ContextItem[str]:
        return ContextItem(content=text)

    @tool()
    async def other() -> None:
        pass

    return note, other


async def test_sqlite_store_keeps_one_row_per_agent_newest_seq_wins(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    assert isinstance(store, CheckpointStore) and isinstance(MemoryStore(), CheckpointStore)
    await store.save(Checkpoint("a", 2, b'{"x":2}', 1.0))
    await store.save(Checkpoint("a", 1, b'{"x":1}', 2.0))  # late and older: ignored
    await store.save(Checkpoint("b", 1, b"{}", 3.0))
    loaded = await store.load("a")
    assert loaded == Checkpoint("a", 2, b'{"x":2}', 1.0)
    assert await store.agents() == ["a", "b"]
    await store.delete("b")
    assert await store.load("b") is None
    await store.aclose()
    with closing(sqlite3.connect(tmp_path / "s.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with pytest.raises(CheckpointStoreError, match="closed"):
        await store.load("a")
    with pytest.raises(ValueError, match="identifier"):
        SQLiteStore(tmp_path / "s.db", table="x; DROP TABLE y")
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "s.db", synchronous="sometimes")


async def test_sqlite_failures_are_checkpoint_store_errors(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "missing-dir" / "s.db")
    with pytest.raises(CheckpointStoreError, match="failed to load") as info:
        await store.load("a")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    await store.aclose()


async def test_a_service_checkpoints_and_restores_state_in_place(
    tmp_path: Path, tools: Any
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    agent = Agent("keeper", "", list(tools))
    for text in ("a", "b", "c"):
        await agent.put(Turn("note", kwargs={"text": text}))
    async with Service([agent], store=store) as service:
        await service.aclose(drain=True)
    await agent.put(Turn("note", kwargs={"text": "later"}))  # not served: not saved
    agent.context_queue._items.clear()

    AgentRegistry.unregister("keeper")  # a restart: a new object under the same name
    restored = Agent("keeper", "", list(tools))
    async with Service([restored], store=store) as service:
        assert [i.content for i in restored.context_queue] == ["a", "b", "c"]
        await service.aclose()
    await store.aclose()


def saved(state: dict[str, Any], name: str = "keeper", **envelope: Any) -> bytes:
    document = {"format": "pygents.checkpoint/1", "agent": name, "seq": 1, "saved_at": 0.0}
    document.update(envelope)
    document["state"] = state
    return json.dumps(document).encode()


HOSTILE = [
    (b"\x00not json", "cannot be restored"),
    (b"[" * 100_000 + b"]" * 100_000, "cannot be restored"),
    (json.dumps({"format": "other/9"}).encode(), "expected 'pygents.checkpoint/1'"),
    (saved({}, name="somebody-else"), "saved for agent 'somebody-else'"),
    (saved({"queue": [{"tool_name": "other", "kwargs": {}}]}), "not one of the agent's tools"),
    (saved({"queue": [{"tool_name": "os.system", "args": ["rm -rf /"]}]}), "os.system"),
    (saved({"queue": "everything"}), "field 'queue' must be list"),
    (saved({"current_turn": {"tool_name": "note", "timeout": -5}}), "timeout"),
    (saved({"context_pool": {"items": [{"content": 1}]}}), "'context_pool'"),
    (saved({"context_queue": {"items": "all"}}), "'context_queue'"),
    (saved({"queue": [{"tool_name": "note", "hooks": ["evil"]}]}), "evil"),
    (saved({"is_paused": "yes"}), "is_paused"),
    # json.loads reads NaN; a checkpoint never holds it (the service stopped at its first save)
    (
        b'{"format":"pygents.checkpoint/1","agent":"keeper","seq":1,"saved_at":NaN,"state":{}}',
        "NaN",
    ),
    # UTF-16 is JSON json.loads() would take from bytes; a checkpoint is UTF-8
    (saved({}).decode().encode("utf-16"), "'utf-8' codec can't decode"),
]


@pytest.mark.parametrize(("data", "message"), HOSTILE)
async def test_corrupt_or_hostile_checkpoints_raise_checkpoint_error(
    data: bytes, message: str, tools: Any
) -> None:
    note, _other = tools
    store = MemoryStore()
    await store.save(Checkpoint("keeper", 1, data, 0.0))
    agent = Agent("keeper", "", [note])
    await agent.put(Turn("note", kwargs={"text": "mine"}))
    with pytest.raises(CheckpointError, match="Checkpoint of agent 'keeper'") as info:
        await Service([agent], store=store).start()
    assert message in str(info.value)
    assert "store.delete('keeper')" in str(info.value) or "cannot be restored" not in str(
        info.value
    )
    assert isinstance(info.value, SerializationError) and info.value.agent_name == "keeper"
    # Nothing changed on the agent, and it was not started.
    assert [t.kwargs for t in agent.turns] == [{"text": "mine"}]
    assert not agent.is_serving


@dataclasses.dataclass
class Query:
    text: str


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


_NOT_JSON = [
    object(),
    {1, 2},
    Decimal("1.5"),
    b"raw",
    datetime(2024, 1, 1, tzinfo=UTC),
    Query("q"),
    # json would write these keys as "1" and "1": one price lost on the way back
    {"prices": {1: "one euro", "1": "one dollar"}},
    [{"ok": {None: "null"}}],
    _nested(100_000),  # deeper than json's encoder goes on any Python (3.13 goes deepest)
]


_IDS = [type(v).__name__ + str(i) for i, v in enumerate(_NOT_JSON)]


@pytest.mark.parametrize("value", _NOT_JSON, ids=_IDS)
async def test_a_turn_that_cannot_be_saved_is_refused_at_put(tools: Any, value: Any) -> None:
    # A checkpoint is JSON: what Turn.from_dict now keeps as given is still refused here.
    note, _other = tools
    agent = Agent("keeper", "", [note])
    async with Service([agent], store=MemoryStore()):
        with pytest.raises(SerializationError, match="JSON data"):
            await agent.put(Turn("note", kwargs={"text": value}))
        assert agent.turns == []


@pytest.mark.parametrize(
    ("args", "kwargs", "where"),
    [([len], {}, r"args\[0\]"), ([], {"text": lambda: "now"}, r"kwargs\['text'\]")],
)
async def test_a_dynamic_argument_is_refused_at_put_by_name(
    tools: Any, args: Any, kwargs: Any, where: str
) -> None:
    # Turn.to_dict() writes a callable as it is (as the original does); a checkpoint cannot.
    note, _other = tools
    agent = Agent("keeper", "", [note])
    async with Service([agent], store=MemoryStore()):
        with pytest.raises(SerializationError, match=rf"has a callable {where} \(a dynamic"):
            await agent.put(Turn("note", args=args, kwargs=kwargs))
        assert agent.turns == []


async def test_a_keyword_added_to_a_turn_after_it_was_made_is_checked_too(tools: Any) -> None:
    note, _other = tools
    agent = Agent("keeper", "", [note])
    async with Service([agent], store=MemoryStore()):
        turn = Turn("note", kwargs={"text": "x"})
        turn.kwargs[1] = "y"  # type: ignore[index]
        with pytest.raises(
            SerializationError, match=r"\['kwargs'\] has a key that is not a string: 1"
        ):
            await agent.put(turn)
        assert agent.turns == []


@pytest.mark.parametrize("value", _NOT_JSON, ids=_IDS)
async def test_context_that_cannot_be_saved_is_refused_at_put(tools: Any, value: Any) -> None:
    note, _other = tools
    agent = Agent("keeper", "", [note])
    await agent.context_pool.add(ContextItem(value, "not JSON", "x"))
    with pytest.raises(SerializationError):  # the service's last checkpoint, as it stops
        async with Service([agent], store=MemoryStore()):
            with pytest.raises(SerializationError, match="context item contents must be JSON data"):
                await agent.put(Turn("note", kwargs={"text": "fine"}))
            assert agent.turns == []


async def test_attempt_round_trips_through_turn_metadata(tools: Any) -> None:
    turn = Turn("note", kwargs={"text": "x"})
    assert turn.metadata.attempt == 1 and "attempt" not in turn.metadata.dict()
    turn.metadata.attempt = 3
    again = Turn.from_dict(json.loads(json.dumps(turn.to_dict())))
    assert again.metadata.attempt == 3
    with pytest.raises(ValueError, match="attempt"):
        turn.metadata.attempt = 0
    bad = turn.to_dict()
    bad["metadata"]["attempt"] = -1
    with pytest.raises(SerializationError, match="attempt"):
        Turn.from_dict(bad)
    assert current_turn() is None


class FailingStore(MemoryStore):
    """A store whose next ``failures`` writes fail (-1: every one), then work again."""

    failures = 0

    async def save(self, checkpoint: Checkpoint) -> None:
        if self.failures:
            self.failures -= self.failures > 0
            raise CheckpointStoreError(f"{self!r} failed to save {checkpoint.agent!r}: read-only")
        await super().save(checkpoint)


def first_then_second(store: FailingStore, failures: int) -> Agent:
    """An agent whose turn ``first`` makes the store fail ``failures`` writes
    (the checkpoint at its end among them) and returns a turn ``second``."""

    @tool()
    async def first() -> Turn:
        store.failures = failures
        return Turn("second")

    @tool()
    async def second() -> None:
        pass

    return Agent("keeper", "", [first, second])


async def test_a_put_whose_checkpoint_fails_does_not_queue_the_turn(tools: Any) -> None:
    ran: list[str] = []

    @tool()
    async def work(text: str) -> None:
        ran.append(text)

    agent = Agent("keeper", "", [work])
    store = FailingStore()
    service = Service([agent], store=store)
    await service.start()
    store.failures = -1
    with pytest.raises(CheckpointStoreError, match="read-only"):
        await agent.put(Turn("work", kwargs={"text": "once"}))
    assert agent.turns == []  # put() raised: not queued, so a retry makes no duplicate
    with pytest.raises(CheckpointStoreError, match="read-only"):  # the service stopped
        await asyncio.wait_for(service.wait_stopped(), 5)
    async for _ in agent.run():  # nothing left over to run later
        pass
    assert ran == []


async def test_a_send_whose_checkpoint_fails_does_not_queue_the_turn(tools: Any) -> None:
    refused: list[BaseException] = []

    @tool()
    async def forward(text: str) -> None:
        try:
            await AgentRegistry.get("sender").send("receiver", Turn("work", kwargs={"text": text}))
        except CheckpointStoreError as exc:
            refused.append(exc)
            raise

    @tool()
    async def work(text: str) -> None:
        pass

    class ReceiverFails(MemoryStore):
        async def save(self, checkpoint: Checkpoint) -> None:
            if checkpoint.agent == "receiver":
                raise CheckpointStoreError("receiver's database is read-only")
            await super().save(checkpoint)

    sender = Agent("sender", "", [forward])
    receiver = Agent("receiver", "", [work])
    service = Service([sender, receiver], store=ReceiverFails())
    await service.start()
    await sender.put(Turn("forward", kwargs={"text": "x"}))
    with pytest.raises(CheckpointStoreError, match="read-only"):
        await asyncio.wait_for(service.wait_stopped(), 5)
    assert len(refused) == 1 and receiver.turns == []


async def test_a_turns_own_puts_stay_with_it_when_its_checkpoint_fails(tools: Any) -> None:
    # Not raised at put (they are saved with the end of the turn): that checkpoint fails, the
    # service stops, and the store still holds the turn as in flight, so a restart re-runs it
    # and it puts them again. The agent object keeps them queued: reset() it to serve again.
    store = FailingStore()
    agent = first_then_second(store, -1)
    await agent.put(Turn("first"))
    with pytest.raises(CheckpointStoreError, match="read-only"):
        async with asyncio.timeout(5):
            await Service([agent], store=store).serve_forever()
    assert [t.tool_name for t in agent.turns] == ["second"]
    store.failures = 0
    agent.reset()
    async with Service([agent], store=store) as service:
        turns = agent.turns
        assert [(t.tool_name, t.metadata.attempt) for t in turns] == [("first", 2)]
        await service.aclose()


async def queued_in(store: CheckpointStore, name: str = "keeper") -> list[Any]:
    found = await store.load(name)
    assert found is not None
    return [t["kwargs"] for t in json.loads(found.data)["state"]["queue"]]


async def test_a_put_after_a_failed_checkpoint_is_saved_or_refused(tools: Any) -> None:
    # The failure stops the service, but a put() that returns is on disk all the same: the
    # next puts are saved (the store works again) or refused (it fails again), never only
    # kept in memory.
    @tool()
    async def work(n: int) -> None:
        pass

    agent = Agent("keeper", "", [work])
    agent.pause()  # nothing runs: the queue stays as put
    store = FailingStore()
    service = Service([agent], store=store)
    await service.start()
    store.failures = 1
    with pytest.raises(CheckpointStoreError, match="read-only"):
        await agent.put(Turn("work", kwargs={"n": 0}))
    await agent.put(Turn("work", kwargs={"n": 1}))
    assert await queued_in(store) == [{"n": 1}]
    store.failures = 1
    with pytest.raises(CheckpointStoreError, match="read-only"):
        await agent.put(Turn("work", kwargs={"n": 2}))
    assert [t.kwargs for t in agent.turns] == [{"n": 1}]
    with pytest.raises(CheckpointStoreError, match="read-only"):  # the first failure
        await asyncio.wait_for(service.wait_stopped(), 5)

    AgentRegistry.unregister("keeper")  # a restart
    again = Agent("keeper", "", [work])
    async with Service([again], store=store) as restarted:
        assert [t.kwargs for t in again.turns] == [{"n": 1}]
        await restarted.aclose()


async def test_the_state_is_saved_once_more_as_a_service_stopped_by_a_failure_ends(
    tools: Any,
) -> None:
    # The checkpoint after the first turn fails once; as the service stops, it saves again:
    # the store then holds the agent as it is (the first turn done, its turn queued), and a
    # restart does not run the first turn again.
    store = FailingStore()
    agent = first_then_second(store, 1)
    await agent.put(Turn("first"))
    with pytest.raises(CheckpointStoreError, match="read-only"):
        async with asyncio.timeout(5):
            await Service([agent], store=store).serve_forever()
    found = await store.load("keeper")
    assert found is not None
    state = json.loads(found.data)["state"]
    assert state["current_turn"] is None
    assert [t["tool_name"] for t in state["queue"]] == ["second"]
    agent.reset()
    async with Service([agent], store=store) as service:
        assert [(t.tool_name, t.metadata.attempt) for t in agent.turns] == [("second", 1)]
        await service.aclose()


@pytest.mark.parametrize("order", ["good first", "bad first"])
async def test_a_start_that_fails_on_one_checkpoint_restores_no_agent(
    tools: Any, order: str
) -> None:
    # All or nothing: had the good agent been restored before the bad checkpoint was read,
    # the documented remedy (delete the bad one, start again) would queue its turns twice.
    note, _other = tools
    store = MemoryStore()
    good = Agent("good", "", [note])
    async with Service([good], store=store) as service:
        good.pause()
        await good.put(Turn("note", kwargs={"text": "one"}))
        await good.put(Turn("note", kwargs={"text": "two"}))
        await service.aclose()
    good.reset()
    await store.save(Checkpoint("bad", 1, b"\x00not json", 0.0))
    bad = Agent("bad", "", [note])
    agents = [good, bad] if order == "good first" else [bad, good]
    with pytest.raises(CheckpointError, match="'bad'"):
        await Service(agents, store=store).start()
    assert good.turns == [] and not good.is_serving and not bad.is_serving

    await store.delete("bad")
    async with Service(agents, store=store) as service:
        assert good.is_paused  # restored paused, as saved: nothing runs
        assert [t.kwargs["text"] for t in good.turns] == ["one", "two"]
        await service.aclose()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"prices": {1: "one euro", "1": "one dollar"}}, r"\['prices'\] has a key .*: 1$"),
        ({True: 1}, r"the data has a key that is not a string: True"),
        ([float("inf")], r"Out of range float"),
        ({"s": {1, 2}}, r"not JSON serializable"),
        (_nested(100_000), r"nested too deeply"),
    ],
    ids=["int-key", "bool-key", "inf", "set", "deep"],
)
def test_to_json_refuses_what_would_not_come_back_as_it_went(value: Any, fragment: str) -> None:
    with pytest.raises(SerializationError, match=fragment):
        to_json(value)


def test_to_json_writes_compact_json_and_tuples_as_lists() -> None:
    text = to_json({"a": [1, (2, "x")], "b": None, "c": {"d": 1.5}})
    assert text == '{"a":[1,[2,"x"]],"b":null,"c":{"d":1.5}}'
