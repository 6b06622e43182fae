"""``RedisStore``: checkpoints in Redis, one hash per agent, saved by one atomic script."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pygents.errors import CheckpointStoreError
from pygents.store import Checkpoint

from . import _scripts
from ._keys import GROUP, Keys, check_name

__all__ = ["LeaseLostError", "RedisStore", "connect"]


class LeaseLostError(CheckpointStoreError):
    """Raised when a worker saves an agent whose lease another worker now holds.

    The save changed nothing: the other worker owns the agent and its checkpoint.
    """


#: Seconds a client made from a URL waits to connect, and for a reply, before it raises
#: (redis-py's own default from 8.0; earlier releases wait forever on a Redis that accepts
#: connections and never answers). A ``socket_timeout`` / ``socket_connect_timeout`` in the URL
#: wins. Longer than any blocking command pygents sends (``XREADGROUP`` blocks 200 ms).
SOCKET_TIMEOUT = 5.0


def connect(redis: aioredis.Redis | str) -> tuple[aioredis.Redis, bool]:
    """Return a client for ``redis`` (a client, kept; or a URL, connected) and whether we own it."""
    if isinstance(redis, str):
        client = aioredis.Redis.from_url(
            redis, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
        )
        return client, True
    if isinstance(redis, aioredis.Redis):
        return redis, False
    raise TypeError(f"expected a redis.asyncio.Redis client or a redis:// URL, got {redis!r}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """A ``CheckpointStore`` in Redis: the shared store of workers on many machines.

    Each agent's checkpoint is a hash (``seq``, ``data``, ``saved_at``) under
    ``{namespace}:{{agent}}:checkpoint``, written by one Lua script that keeps the highest
    ``seq`` (a late, older save never overwrites a newer one): atomic, like every script.

    Args:
        redis: a ``redis.asyncio.Redis`` client (kept open by ``aclose()``) or a ``redis://``
            URL (the store makes and closes its own client).
        namespace: the prefix of every key.

    Raises:
        TypeError: ``redis`` is neither a client nor a URL.
    """

    def __init__(self, redis: aioredis.Redis | str, *, namespace: str = "pygents") -> None:
        check_name(
            namespace, "RedisStore namespace"
        )  # before connecting: a mistake costs no client
        self._redis, self._owned = connect(redis)
        self.keys = Keys(namespace)
        self._save = self._redis.register_script(_scripts.SAVE)
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.keys.namespace!r})"

    @property
    def redis(self) -> aioredis.Redis:
        """The client."""
        return self._redis

    async def save(self, checkpoint: Checkpoint) -> None:
        """Store the checkpoint unless one with a higher or equal ``seq`` is stored.

        Raises:
            CheckpointStoreError: Redis failed (the error is the ``__cause__``).
        """
        await self.save_fenced(checkpoint)

    async def save_fenced(
        self,
        checkpoint: Checkpoint,
        *,
        worker: str = "",
        acks: Sequence[str] = (),
        dead_letter: Sequence[str] = (),
    ) -> bool:
        """Save, acknowledge stream entries and append a dead letter, in one atomic step.

        Args:
            checkpoint: what to store (kept only if newer than the stored one).
            worker: if not empty, save only while this worker holds the agent's lease.
            acks: ids of entries of the agent's stream that the checkpoint now holds: they are
                acknowledged and deleted from the stream.
            dead_letter: field/value pairs of an entry to append to the dead-letter stream.

        Returns:
            True if the checkpoint was stored, False if a newer one was there.

        Raises:
            LeaseLostError: ``worker`` does not hold the lease (nothing was written).
            CheckpointStoreError: Redis failed.
        """
        self._check_open()
        agent = checkpoint.agent
        keys = self.keys
        lease = keys.lease(agent) if worker else ""
        args: list[Any] = [
            agent,
            checkpoint.seq,
            checkpoint.data,
            repr(checkpoint.saved_at),
            worker,
            GROUP,
            len(acks),
            *acks,
            *dead_letter,
        ]
        try:
            result = await self._save(
                keys=[keys.checkpoint(agent), keys.index, lease, keys.stream(agent), keys.dead],
                args=args,
            )
        except RedisError as exc:
            raise CheckpointStoreError(
                f"{self!r} failed to save agent {agent!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if result == -1:
            raise LeaseLostError(
                f"{self!r}: worker {worker!r} no longer holds the lease of agent {agent!r}; "
                f"another worker serves it now"
            )
        return bool(result)

    async def load(self, agent: str) -> Checkpoint | None:
        """Return the agent's checkpoint, or None.

        Raises:
            CheckpointStoreError: Redis failed, or the hash is malformed.
        """
        self._check_open()
        try:
            row = await self._redis.hmget(self.keys.checkpoint(agent), "seq", "data", "saved_at")
        except RedisError as exc:
            raise CheckpointStoreError(
                f"{self!r} failed to load agent {agent!r}: {type(exc).__name__}: {exc}"
            ) from exc
        seq, data, saved_at = row
        if seq is None and data is None:
            return None
        try:
            if isinstance(data, str):
                data = data.encode()
            if not isinstance(data, bytes):
                raise TypeError("no data")
            return Checkpoint(agent, int(_text(seq)), data, float(_text(saved_at)))
        except (TypeError, ValueError) as exc:
            raise CheckpointStoreError(
                f"{self!r}: the checkpoint of agent {agent!r} is malformed ({exc}); delete it"
            ) from None

    async def delete(self, agent: str) -> None:
        """Forget the agent's checkpoint."""
        self._check_open()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.checkpoint(agent))
                pipe.srem(self.keys.index, agent)
                await pipe.execute()
        except RedisError as exc:
            raise CheckpointStoreError(f"{self!r} failed to delete agent {agent!r}: {exc}") from exc

    async def agents(self) -> list[str]:
        """Return the names with a checkpoint, sorted."""
        self._check_open()
        try:
            names = await self._redis.smembers(self.keys.index)
        except RedisError as exc:
            raise CheckpointStoreError(f"{self!r} failed to list agents: {exc}") from exc
        return sorted(_text(n) for n in names)

    async def aclose(self) -> None:
        """Close the client if the store made it (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            await self._redis.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise CheckpointStoreError(f"{self!r} is closed; make a new store")
