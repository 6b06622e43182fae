"""An agent's checkpoint: its state as a JSON document, and restoring it into the live agent.

The document (``pygents.checkpoint/1``) is ``Agent.to_dict()`` inside an envelope. A service
records the turn it is about to start as ``current_turn`` (the "head" mark), so that after a
crash the turn that may have been running is known: it is restored first, its
``metadata.attempt`` one higher. Restoring takes only *state* from the document (queue, turn
in flight, context items, paused); configuration (tools, hooks, tags, description, limits)
comes from the code that built the agent.
"""

from __future__ import annotations

import json
from time import time
from typing import Any

from . import _serde
from ._context import ContextPool, ContextQueue
from ._turn import Turn, dynamic_argument
from .errors import CheckpointError, SerializationError
from .store import CHECKPOINT_FORMAT, Checkpoint

__all__ = ["FORMAT", "apply", "encode", "read"]

#: The ``format`` field of every checkpoint document.
FORMAT = CHECKPOINT_FORMAT
_RESTORE_ERRORS = (SerializationError, LookupError, TypeError, ValueError, RecursionError)


def _turn_state(turn: Turn, agent_name: str) -> dict[str, Any]:
    dynamic = dynamic_argument(turn)
    if dynamic is not None:
        raise SerializationError(
            f"Agent {agent_name!r} cannot be checkpointed: its turn of tool "
            f"{turn.tool_name!r} has a callable {dynamic} (a dynamic argument), which a "
            f"checkpoint cannot hold"
        )
    data = turn.to_dict()
    data.pop("output", None)  # a queued turn has not run; a re-run starts afresh
    return data


def encode(agent: Any, seq: int, head_started: bool) -> Checkpoint:
    """Snapshot ``agent`` now (synchronously, on the event loop).

    Args:
        agent: the agent.
        seq: the checkpoint's sequence number.
        head_started: the service is about to start the first queued turn: record it as the
            turn in flight (when no other turn is).

    Raises:
        SerializationError: a turn argument or a context item is not JSON data.
    """
    current = agent._current_turn
    queue = agent._queue
    turns = [_turn_state(t, agent._name) for t in queue]
    in_flight: dict[str, Any] | None = None
    if current is not None:
        in_flight = _turn_state(current, agent._name)
    elif head_started and turns:
        in_flight = turns.pop(0)
    state = {
        "name": agent._name,
        "tool_names": list(agent._tools),
        "queue": turns,
        "current_turn": in_flight,
        "context_queue": agent._context_queue.to_dict(),
        "context_pool": agent._context_pool.to_dict(),
        "is_paused": agent._paused,
    }
    now = time()
    document = {"format": FORMAT, "agent": agent._name, "seq": seq, "saved_at": now, "state": state}
    try:
        data = _serde.json_text(document, _user_data(state)).encode()
    except SerializationError as exc:
        raise SerializationError(
            f"Agent {agent._name!r} cannot be checkpointed: {exc} (turn arguments and context "
            f"item contents must be JSON data when the agent is served with a store)"
        ) from None
    return Checkpoint(agent._name, seq, data, now)


def _user_data(state: dict[str, Any]) -> list[Any]:
    """The values in a checkpoint's state that the program gave (the rest is the library's).

    Turns' arguments, context items' contents: where a dict key may not be a string.
    """
    turns = state["queue"]
    if state["current_turn"] is not None:
        turns = [*turns, state["current_turn"]]
    data: list[Any] = []
    for turn in turns:
        data += turn["args"]
        data.append(turn["kwargs"])
    for context in (state["context_queue"], state["context_pool"]):
        data += [item["content"] for item in context["items"]]
    return data


def read(agent: Any, checkpoint: Checkpoint, where: str) -> tuple[Any, ...]:
    """The checkpoint's state for ``agent``, validated; nothing changes (``apply`` puts it in).

    Raises:
        CheckpointError: the document is not JSON, has the wrong shape, belongs to another
            agent, or names a tool or hook that is not registered or not the agent's.
    """
    name = agent._name
    prefix = f"Checkpoint of agent {name!r} in {where}"
    try:
        data: Any = checkpoint.data
        # UTF-8, as written (json.loads would also take UTF-16 and UTF-32 bytes).
        document = json.loads(
            data.decode() if isinstance(data, bytes | bytearray) else data,
            parse_constant=_serde.no_constant,  # never written, so never restored
        )
        parsed = _parse(agent, document, prefix)
    except CheckpointError:
        raise
    except _RESTORE_ERRORS as exc:
        raise CheckpointError(
            f"{prefix} cannot be restored: {exc}. Register what it names, or delete it "
            f"(await store.delete({name!r})) to start the agent empty",
            agent_name=name,
        ) from None
    return parsed


def apply(agent: Any, parsed: tuple[Any, ...]) -> Turn | None:
    """Put a state ``read`` returned into ``agent`` (idle); return the turn that was in flight.

    The turn in flight (if any) is queued first with ``metadata.attempt`` one higher; turns
    already queued on ``agent`` (put before the service started) follow the restored ones. A
    paused agent stays paused.
    """
    current: Turn | None = parsed[0]
    turns, queue_items, pool_items, paused = parsed[1:]
    if current is not None:
        current._attempt += 1
        turns.insert(0, current)
    pending = list(agent._queue)
    agent._queue.clear()
    agent._queue.extend(turns)
    agent._queue.extend(pending)
    live_queue = agent._context_queue
    live_queue._items.clear()
    live_queue._items.extend(queue_items[-live_queue.limit :] if live_queue.limit else queue_items)
    live_pool = agent._context_pool
    live_pool._items.clear()
    live_pool._items.update(pool_items)
    agent._paused = paused or agent._paused  # a pause() made before start() is kept
    return current


def _parse(agent: Any, document: Any, where: str) -> tuple[Any, ...]:
    document = _serde.mapping(document, where)
    if document.get("format") != FORMAT:
        raise SerializationError(
            f"field 'format' is {_serde.short(document.get('format'))}, expected {FORMAT!r}"
        )
    owner = _serde.field(document, "agent", str, where)
    if owner != agent._name:
        raise SerializationError(f"it was saved for agent {_serde.short(owner)}")
    state = _serde.mapping(_serde.field(document, "state", dict, where), where)
    known = agent._tools

    def turn(path: str, raw: Any) -> Turn:
        built: Turn = _serde.nested(where, path, Turn.from_dict, raw)
        if known.get(built.tool.__name__) is not built.tool:
            raise SerializationError(
                f"field {path} uses tool {built.tool.__name__!r}, not one of the agent's "
                f"tools {sorted(known)}"
            )
        return built

    raw_current = _serde.field(state, "current_turn", (dict, type(None)), where, default=None)
    current = None if raw_current is None else turn("'current_turn'", raw_current)
    raw_queue = _serde.field(state, "queue", list, where, default=[])
    turns = [turn(f"'queue'[{i}]", raw) for i, raw in enumerate(raw_queue)]
    queue_items: list[Any] = []
    pool_items: dict[str, Any] = {}
    for key, cls in (("context_queue", ContextQueue), ("context_pool", ContextPool)):
        raw = _serde.field(state, key, (dict, type(None)), where, default=None)
        if raw is None:
            continue
        # Hooks and limits are configuration: the live agent's win, the stored ones are
        # not resolved (a renamed hook must not make the state unrecoverable).
        items = raw.get("items")
        size = len(items) if isinstance(items, list) else 0
        raw = dict(raw, hooks=[], limit=max(1, size) if key == "context_queue" else None)
        built = _serde.nested(where, f"'{key}'", cls.from_dict, raw)
        if key == "context_queue":
            queue_items = list(built._items)
        else:
            pool_items = dict(built._items)
    paused = _serde.field(state, "is_paused", bool, where, default=False)
    return current, turns, queue_items, pool_items, paused
