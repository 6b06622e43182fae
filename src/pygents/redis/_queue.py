"""``RedisQueue``: send turns to agents served by any worker; read the dead letters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from pygents import Turn
from pygents.errors import SerializationError
from pygents.store import to_json

from ._keys import GROUP, Keys, check_agent_name, check_name
from ._store import connect
from ._telemetry import Telemetry

__all__ = ["ENTRY_FIELD", "DeadLetter", "RedisQueue", "decode_fields", "encode_turn"]

#: The prefix, in a dead letter, of the fields of an undecodable message other than ``turn``.
ENTRY_FIELD = "entry."


def encode_turn(turn: Turn) -> str:
    """The turn's serialized form (``Turn.to_dict()`` as JSON, without an output).

    Raises:
        SerializationError: an argument is not JSON data.
    """
    data = turn.to_dict()
    data.pop("output", None)
    try:
        return to_json(data)
    except SerializationError as exc:
        raise SerializationError(
            f"Turn of tool {turn.tool_name!r} cannot be sent through Redis: {exc} (its "
            f"arguments must be JSON data)"
        ) from None


def decode_fields(fields: Any, errors: str = "strict") -> dict[str, str]:
    """A stream entry's fields as ``str -> str``.

    Args:
        fields: the entry's fields as Redis returned them (``bytes`` or ``str``).
        errors: how bytes that are not UTF-8 are decoded (``bytes.decode()``'s ``errors``).

    Raises:
        UnicodeDecodeError: with ``errors="strict"``, a field is not UTF-8.
    """
    return {
        (k.decode(errors=errors) if isinstance(k, bytes) else str(k)): (
            v.decode(errors=errors) if isinstance(v, bytes) else str(v)
        )
        for k, v in dict(fields).items()
    }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A turn given up on, as kept in the dead-letter stream.

    A turn that failed ``max_attempts`` times, a message no worker can decode into a turn of
    its agent, or a turn a ``before_put`` hook refused.

    Attributes:
        id: the entry's id in the dead-letter stream.
        agent: the agent it was for.
        turn: its serialized form (``Turn.from_dict(json.loads(turn))`` rebuilds it); for a
            message that could not be decoded, its ``turn`` field as sent (bytes that are not
            UTF-8 shown as backslash escapes; the stream keeps them as they were).
        error_type: the last error's class name (``WorkerLost`` when workers died running it,
            the error of a ``before_put`` hook that refused it).
        error: the last error's message.
        attempts: how many times it ran.
        worker: the worker that gave up on it.
        fields: for a message that could not be decoded, its other fields as sent (bytes
            that are not UTF-8 shown as backslash escapes), so that nothing it carried is
            lost; empty otherwise.
    """

    id: str
    agent: str
    turn: str
    error_type: str
    error: str
    attempts: int
    worker: str
    fields: dict[str, str] = field(default_factory=dict)


class RedisQueue:
    """Send turns to agents served by ``RedisWorker`` processes, from any process.

    ``send()`` appends the turn's serialized form, with the W3C trace context of a PRODUCER
    span (``send {stream}``), to the agent's stream; whichever worker holds the agent's
    lease hands it to the agent, in stream order.

    Args:
        redis: a ``redis.asyncio.Redis`` client or a ``redis://`` URL.
        namespace: the prefix of every key (the workers' namespace).
        tracer_provider: None for the global one; False for no spans.
    """

    def __init__(
        self,
        redis: aioredis.Redis | str,
        *,
        namespace: str = "pygents",
        tracer_provider: Any = None,
        _telemetry: Telemetry | None = None,
    ) -> None:
        check_name(
            namespace, "RedisQueue namespace"
        )  # before connecting: a mistake costs no client
        self._redis, self._owned = connect(redis)
        self.keys = Keys(namespace)
        self._telemetry = _telemetry or Telemetry(tracer_provider=tracer_provider)
        self._groups: set[str] = set()

    def __repr__(self) -> str:
        return f"RedisQueue(namespace={self.keys.namespace!r})"

    @property
    def redis(self) -> aioredis.Redis:
        """The client."""
        return self._redis

    async def ensure_group(self, agent: str, *, check: bool = False) -> bool:
        """Create the agent's stream and the workers' consumer group if missing.

        Args:
            agent: the agent's name.
            check: ask Redis even if this queue made sure of the group before (Redis may
                have lost its data since: restarted without persistence, flushed, failed over).

        Returns:
            Whether it created the group (False when it was there).
        """
        stream = self.keys.stream(agent)
        if stream in self._groups and not check:
            return False
        created = True
        try:
            await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            created = False
        self._groups.add(stream)
        return created

    async def send(self, agent: str, turn: Turn) -> str:
        """Enqueue ``turn`` for the agent called ``agent``, wherever it is served.

        The turn records the PRODUCER span's context (``turn.metadata.trace_context``), so the
        worker's spans for it are in the sender's trace.

        Returns:
            The stream entry's id.

        Raises:
            TypeError: ``agent`` is not a string, or ``turn`` is not a ``Turn``.
            ValueError: ``agent`` is empty.
            SerializationError: its arguments are not JSON data.
            redis.exceptions.RedisError: Redis failed (the turn was not sent).
        """
        check_agent_name(agent, "RedisQueue.send()")
        if not isinstance(turn, Turn):
            raise TypeError(f"RedisQueue.send() takes a Turn, got {type(turn).__name__}")
        await self.ensure_group(agent)
        stream = self.keys.stream(agent)
        carrier: dict[str, str] = {}
        with self._telemetry.send_span(stream, agent, carrier) as span:
            if carrier:
                turn.metadata.trace_context = dict(carrier)
            body = encode_turn(turn)
            fields: dict[str, str] = {"turn": body, "sent_at": repr(time.time())}
            if turn.metadata.trace_context:
                fields.update(turn.metadata.trace_context)
            entry = await self._redis.xadd(stream, fields)  # type: ignore[arg-type]
            entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
            if span is not None:
                span.set_attribute("messaging.message.id", entry_id)
                span.set_attribute("messaging.message.body.size", len(body))
        return entry_id

    async def depth(self, agent: str) -> int:
        """Turns in the agent's stream not yet handed to its owner (not counting its queue)."""
        return int(await self._redis.xlen(self.keys.stream(agent)))

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """Return the oldest ``count`` dead letters."""
        entries = await self._redis.xrange(self.keys.dead, count=count)
        letters = []
        for entry_id, raw in entries or ():
            f = decode_fields(raw, errors="backslashreplace")  # an undecodable message's bytes
            letters.append(
                DeadLetter(
                    entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                    f.get("agent", ""),
                    f.get("turn", ""),
                    f.get("error_type", ""),
                    f.get("error", ""),
                    int(f.get("attempts", "0")),
                    f.get("worker", ""),
                    {k[len(ENTRY_FIELD) :]: v for k, v in f.items() if k.startswith(ENTRY_FIELD)},
                )
            )
        return letters

    async def aclose(self) -> None:
        """Close the client if the queue made it."""
        if self._owned:
            self._owned = False
            try:
                await self._redis.aclose()
            except RedisError:
                pass
