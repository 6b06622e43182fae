"""A tiny OTLP/HTTP receiver for tests (a helper, not a test module).

It listens on 127.0.0.1 (ephemeral port), accepts ``POST /v1/traces`` and ``POST /v1/metrics``,
decodes the protobuf bodies with ``opentelemetry-proto`` and keeps them. For fault tests it can
answer 500 to everything, or hang (sleep longer than the exporter's timeout) before answering.

    with OTLPReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        ...
        receiver.spans()          # every decoded span, with its resource and scope
        receiver.metric("pygents.turns")
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Self

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

Mode = Literal["ok", "error", "hang"]

__all__ = ["OTLPReceiver", "ReceivedSpan", "attributes", "value_of"]


def value_of(value: AnyValue) -> Any:
    """Turn an OTLP ``AnyValue`` into a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """Turn repeated OTLP ``KeyValue`` into a dict."""
    result: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        result[pair.key] = value_of(pair.value)
    return result


@dataclass(frozen=True)
class ReceivedSpan:
    """A decoded span with the resource and scope it arrived under."""

    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    schema_url: str
    span: Any  # opentelemetry.proto.trace.v1.trace_pb2.Span

    @property
    def name(self) -> str:
        return str(self.span.name)

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        receiver = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver._note_request(self.path)
        mode = receiver.mode
        if mode == "hang":
            # Longer than any exporter timeout the tests use; released early on close().
            receiver._release.wait(receiver.hang_seconds)
            self._reply(500, b"receiver told to hang")
            return
        if mode == "error":
            self._reply(500, b"receiver told to fail")
            return
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if self.path == "/v1/traces":
                request: Any = ExportTraceServiceRequest()
                request.ParseFromString(body)
                response: Any = ExportTraceServiceResponse()
            elif self.path == "/v1/metrics":
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                response = ExportMetricsServiceResponse()
            else:
                self._reply(404, b"unknown path")
                return
        except Exception as exc:
            receiver._note_error(f"{self.path}: {type(exc).__name__}: {exc}")
            self._reply(400, b"undecodable body")
            return
        receiver._store(self.path, request)
        self._reply(200, response.SerializeToString(), "application/x-protobuf")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout): nothing to answer
            pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


class BackgroundHTTPServer:
    """An HTTP server on 127.0.0.1 (ephemeral port) served from a daemon thread.

    Subclasses name their request ``handler``; the handler reaches the subclass instance as
    ``self.server.owner``. Use it as a context manager.
    """

    handler: type[http.server.BaseHTTPRequestHandler]
    thread_name = "loopback-http"

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), self.handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])


class OTLPReceiver(BackgroundHTTPServer):
    """An OTLP/HTTP (protobuf) receiver on 127.0.0.1; use it as a context manager.

    Args:
        mode: ``"ok"`` decodes and stores; ``"error"`` answers 500; ``"hang"`` waits
            ``hang_seconds`` (or until the receiver closes) before answering.
        hang_seconds: how long a hanging request waits.
    """

    handler = _Handler
    thread_name = "otlp-receiver"

    def __init__(self, mode: Mode = "ok", hang_seconds: float = 30.0) -> None:
        self.mode: Mode = mode
        self.hang_seconds = hang_seconds
        self.trace_requests: list[ExportTraceServiceRequest] = []
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self.request_counts: dict[str, int] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        super().__init__()

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._release.set()
        super().close()

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    # -- called by the handler ------------------------------------------------------------------

    def _note_request(self, path: str) -> None:
        with self._lock:
            self.request_counts[path] = self.request_counts.get(path, 0) + 1

    def _note_error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def _store(self, path: str, request: Any) -> None:
        with self._lock:
            if path == "/v1/traces":
                self.trace_requests.append(request)
            else:
                self.metric_requests.append(request)

    # -- inspection -----------------------------------------------------------------------------

    def requests(self, path: str) -> int:
        """How many requests arrived on ``path`` (whatever the answer was)."""
        with self._lock:
            return self.request_counts.get(path, 0)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._lock:
            requests = list(self.trace_requests)
        found = []
        for request in requests:
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    scope = (ss.scope.name, ss.scope.version, ss.schema_url)
                    found.extend(ReceivedSpan(resource, *scope, span) for span in ss.spans)
        return found

    def metrics(self, name: str) -> Iterator[tuple[dict[str, Any], Any]]:
        """Yield ``(resource attributes, Metric)`` for every received metric called ``name``.

        In arrival order: with cumulative temporality the last one holds the final totals.
        """
        with self._lock:
            requests = list(self.metric_requests)
        for request in requests:
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name == name:
                            yield resource, metric

    def last_metric(self, name: str) -> tuple[dict[str, Any], Any] | None:
        """The most recently received metric called ``name``, or None."""
        found = list(self.metrics(name))
        return found[-1] if found else None

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
