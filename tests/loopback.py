"""Free loopback ports for the servers and workloads a test starts (one helper for all)."""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago.

    The sockets are held open together until all are chosen: asked one at a time, the
    kernel may hand the same just-released port out twice (seen in CI, where two workloads
    then raced for one port and the later one exited with "Address already in use").
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """A loopback port that was free a moment ago (``free_ports`` for more than one)."""
    return free_ports(1)[0]
