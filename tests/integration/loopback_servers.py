"""Servers on 127.0.0.1 for the instrumented-client tests (a helper, not a test module).

``LoopbackService`` is one small HTTP server that plays two downstream services a tool may call:

- ``GET /weather?city=NAME``: a JSON document (``{"city": NAME, "temp_c": ...}``);
- ``POST /v1/chat/completions``: an OpenAI-compatible chat completion whose answer echoes the
  last user message (``"echo: <message>"``), with token usage, so the ``openai`` client and its
  instrumentation see a real, well-formed response; with ``"stream": true``, the same answer as
  server-sent events, one ``chat.completion.chunk`` per word. When a test has put assistant
  messages in ``service.script``, each request is answered with the next of them instead
  (tool calls included), so a test can play a model that calls tools.

Every request is recorded with its headers, so a test can read the ``traceparent`` the client
propagated.

    with LoopbackService() as service:
        httpx.get(f"{service.url}/weather?city=Oslo")
        service.requests[-1].headers["traceparent"]

``load_otlp_receiver()`` loads the OTLP/HTTP receiver of ``tests/observability`` (a plain module
there, not a package).
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "LoopbackService",
    "RecordedRequest",
    "chat_completion",
    "chat_completion_chunks",
    "load_otlp_receiver",
    "scripted_completion",
]

#: The name tests/dashboards also loads the receiver under: one module object per process.
_RECEIVER_MODULE = "pygents_tests_otlp_receiver"
_RECEIVER_PATH = Path(__file__).resolve().parent.parent / "observability" / "otlp_receiver.py"


def load_otlp_receiver() -> ModuleType:
    """Return the ``tests/observability/otlp_receiver.py`` module (loaded once)."""
    loaded = sys.modules.get(_RECEIVER_MODULE)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_RECEIVER_MODULE, _RECEIVER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_RECEIVER_MODULE] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class RecordedRequest:
    """A request the service answered."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: Any  # the decoded JSON body, or None


def chat_completion(model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An OpenAI chat completion answering the last user message with ``echo: <message>``."""
    question = next(
        (str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return {
        "id": f"chatcmpl-{len(question)}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"echo: {question}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(question.split()),
            "completion_tokens": len(question.split()) + 1,
            "total_tokens": 2 * len(question.split()) + 1,
        },
    }


def chat_completion_chunks(model: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer of ``chat_completion`` as stream chunks: one per word, then the usage."""
    whole = chat_completion(model, messages)
    words = whole["choices"][0]["message"]["content"].split(" ")
    base = {"id": whole["id"], "object": "chat.completion.chunk", "created": whole["created"]}
    chunks: list[dict[str, Any]] = [
        {
            **base,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word if i == 0 else f" {word}"},
                    "finish_reason": None,
                }
            ],
        }
        for i, word in enumerate(words)
    ]
    chunks.append(
        {**base, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    chunks.append({**base, "model": model, "choices": [], "usage": whole["usage"]})
    return chunks


def scripted_completion(model: str, message: dict[str, Any]) -> dict[str, Any]:
    """A chat completion whose answer is ``message`` (an assistant message, maybe tool calls)."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, **message},
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Any  # the background server; its owner is the LoopbackService
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self._record(None)
        if url.path != "/weather":
            self._reply(404, {"error": f"no such path: {url.path}"})
            return
        city = parse_qs(url.query).get("city", [""])[0]
        self._reply(200, {"city": city, "temp_c": len(city)})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self._record(body)
        if urlsplit(self.path).path != "/v1/chat/completions":
            self._reply(404, {"error": {"message": f"no such path: {self.path}"}})
            return
        scripted = self.server.owner._next_scripted()
        if scripted is not None:
            self._reply(200, scripted_completion(body["model"], scripted))
            return
        if body.get("stream"):
            events = [
                f"data: {json.dumps(chunk)}\n\n"
                for chunk in chat_completion_chunks(body["model"], body["messages"])
            ]
            self._send(200, "".join([*events, "data: [DONE]\n\n"]).encode(), "text/event-stream")
            return
        self._reply(200, chat_completion(body["model"], body["messages"]))

    def _record(self, body: Any) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.owner._add(RecordedRequest(self.command, self.path, headers, body))

    def _reply(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class LoopbackService(load_otlp_receiver().BackgroundHTTPServer):  # type: ignore[misc]
    """The weather and chat-completions service on 127.0.0.1 (ephemeral port)."""

    handler = _Handler
    thread_name = "loopback-service"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        #: Assistant messages answering the next chat requests, in order (see the docstring).
        self.script: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def _next_scripted(self) -> dict[str, Any] | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    def _add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
