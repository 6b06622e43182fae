"""Where ``Agent.send()`` delivers: the process's agents, unless a router takes the turn.

A distributed worker (``pygents.redis.RedisWorker``) installs a router so that ``send()`` to an
agent served by any worker process goes through its queue instead of the local agent object.
Without a router (the default), ``send()`` is ``AgentRegistry.get(name).put(turn)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["SendRouter", "get_send_router", "set_send_router"]

#: ``async (sender, name, turn) -> bool``: True when the router took the turn; False to let
#: ``send()`` put it on the local agent called ``name``.
SendRouter = Callable[[Any, str, Any], Awaitable[bool]]

_router: SendRouter | None = None


def set_send_router(router: SendRouter | None) -> SendRouter | None:
    """Install ``router`` for every ``Agent.send()`` in this process; return the previous one.

    Args:
        router: ``async (sender, name, turn) -> bool``, or None to deliver locally again.

    Raises:
        TypeError: ``router`` is neither None nor callable.
    """
    global _router
    if router is not None and not callable(router):
        raise TypeError(f"set_send_router() takes a callable or None, got {router!r}")
    previous, _router = _router, router
    return previous


def get_send_router() -> SendRouter | None:
    """Return the installed send router, or None."""
    return _router
