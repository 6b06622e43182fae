"""A real redis-server on loopback for the Redis tests (a helper, not a test module).

Debian's ``redis-server`` (CI installs it), started as a child process on a free port with
no persistence, stopped with ``redis-cli shutdown nosave``. Tests skip without the binary,
unless ``CI=true``: there they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from loopback import free_port

__all__ = ["redis_server", "require_redis_server", "stopped"]


def require_redis_server() -> str:
    """The redis-server binary, or skip (fail under CI)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Start a redis-server on 127.0.0.1 (on a free port by default); yield its URL; stop it.

    Started again on the port of one stopped, it is that Redis restarted with its data lost.
    """
    binary = require_redis_server()
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        cli = shutil.which("redis-cli")
        if cli is not None and process.poll() is None:
            subprocess.run(
                [cli, "-p", str(port), "shutdown", "nosave"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def stopped(process: subprocess.Popen[Any], log: Path, within: float = 30.0) -> int:
    """The exit code of a worker process sent SIGTERM; fail (it is killed) if it runs on.

    A worker that does not stop writes its tasks' stacks to its log first (see
    ``redis_worker.py``): the failure shows them.
    """
    try:
        return process.wait(within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        pytest.fail(f"a worker did not stop on SIGTERM:\n{log.read_text(errors='replace')}")
