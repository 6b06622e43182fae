"""What ``configure()`` reads from the standard ``OTEL_*`` variables, checked before it builds.

Reading the environment never raises: a value ``configure()`` does not know is ignored with a
warning that names the variable, and the default is used, as the OpenTelemetry SDK does. Nothing
here touches global state, so ``configure()`` can read everything before it builds anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from ._settings import logger

__all__ = [
    "DEFAULT_METRIC_EXPORT_INTERVAL",
    "BatchSettings",
    "ExportPlan",
    "SignalPlan",
    "read_plan",
    "redact_text",
    "redact_url",
]

Signal = Literal["TRACES", "METRICS"]

#: The values of ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` that configure() builds.
EXPORTERS = ("otlp", "console", "none")
#: The OTLP protocols the Python exporters speak (``http/json`` is standard but has none).
PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_PROTOCOL = "http/protobuf"

#: The variables of each signal, spelled out so that a search finds them.
_VARIABLES: dict[Signal, dict[str, str]] = {
    "TRACES": {
        "exporter": "OTEL_TRACES_EXPORTER",
        "endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "protocol": "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    },
    "METRICS": {
        "exporter": "OTEL_METRICS_EXPORTER",
        "endpoint": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "protocol": "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    },
}
_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"

#: What the OTLP exporters use when no endpoint variable is set.
_DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}


@dataclass(frozen=True)
class SignalPlan:
    """Where one signal goes, as the environment asks.

    Args:
        otlp: export over OTLP.
        console: print to stdout.
        protocol: the OTLP protocol (one of ``PROTOCOLS``).
        endpoint: the endpoint variable's value, or None for the exporter's default.
    """

    otlp: bool
    console: bool
    protocol: str
    endpoint: str | None

    def destinations(self) -> tuple[str, ...]:
        """Say where the signal goes, credentials in the endpoint redacted."""
        found = []
        if self.otlp:
            if self.endpoint:
                found.append(f"OTLP to {redact_url(self.endpoint)}")
            else:
                found.append(f"OTLP to {_DEFAULT_ENDPOINTS[self.protocol]} (the default)")
        if self.console:
            found.append("the console")
        return tuple(found)


@dataclass(frozen=True)
class BatchSettings:
    """The ``BatchSpanProcessor`` settings (``OTEL_BSP_*``), checked."""

    max_queue_size: int
    schedule_delay_millis: int
    max_export_batch_size: int
    export_timeout_millis: int


@dataclass(frozen=True)
class ExportPlan:
    """Everything ``configure()`` takes from the environment."""

    traces: SignalPlan
    metrics: SignalPlan
    batch: BatchSettings
    #: Seconds between OTLP metric exports from ``OTEL_METRIC_EXPORT_INTERVAL`` (None: unset).
    metric_export_interval: float | None = None


#: Seconds between OTLP metric exports when neither configure() nor the environment says
#: (the SDK's own default, 60 s, leaves a short run's metrics to the final export).
DEFAULT_METRIC_EXPORT_INTERVAL = 10.0

#: The batch span queue. The SDK's default (2,048) drops spans when an agent runs thousands
#: of fast turns between two exports; OTEL_BSP_MAX_QUEUE_SIZE still wins when set.
DEFAULT_SPAN_QUEUE = 65_536


_UNUSED = SignalPlan(otlp=False, console=False, protocol=DEFAULT_PROTOCOL, endpoint=None)


def read_plan(traces: bool = True, metrics: bool = True) -> ExportPlan:
    """Read the export settings from the environment, warning about values it ignores.

    Args:
        traces: read the traces' variables (False: a provider that is already global
            decides where spans go, so its variables are not configure()'s business).
        metrics: the same for metrics.
    """
    warnings: dict[str, str] = {}  # one warning per variable, even when read for both signals
    plan = ExportPlan(
        traces=_signal("TRACES", warnings) if traces else _UNUSED,
        metrics=_signal("METRICS", warnings) if metrics else _UNUSED,
        batch=_batch(warnings),
        metric_export_interval=_metric_interval(warnings) if metrics else None,
    )
    for message in warnings.values():
        logger.warning("pygents configure(): %s", message)
    return plan


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _signal(signal: Signal, warnings: dict[str, str]) -> SignalPlan:
    names = _VARIABLES[signal]
    endpoint = _env(names["endpoint"]) or _env(_ENDPOINT)
    chosen = _exporters(names["exporter"], warnings)
    # Unset: OTLP when an endpoint is set (never to an endpoint nobody named); set: as listed.
    otlp = bool(endpoint) if chosen is None else "otlp" in chosen
    console = chosen is not None and "console" in chosen
    protocol = DEFAULT_PROTOCOL
    if otlp:
        protocol = _protocol(names["protocol"], warnings)
    return SignalPlan(otlp=otlp, console=console, protocol=protocol, endpoint=endpoint)


def _exporters(variable: str, warnings: dict[str, str]) -> set[str] | None:
    raw = _env(variable)
    if raw is None:
        return None
    chosen = set()
    for part in raw.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name in EXPORTERS:
            chosen.add(name)
        elif name == "prometheus" and variable == "OTEL_METRICS_EXPORTER":
            warnings[variable] = (
                f"ignoring {variable}={raw!r}: 'prometheus' is not an exporter configure() "
                f"builds; pass configure(prometheus_port=...) to serve /metrics"
            )
        else:
            warnings[variable] = (
                f"ignoring {name!r} in {variable}={raw!r}: configure() knows only "
                f"{', '.join(EXPORTERS)}"
            )
    return chosen


def _protocol(variable: str, warnings: dict[str, str]) -> str:
    used = variable if _env(variable) else _PROTOCOL
    raw = _env(used)
    if raw is None:
        return DEFAULT_PROTOCOL
    value = raw.lower()
    if value in PROTOCOLS:
        return value
    warnings[used] = (
        f"ignoring {used}={raw!r}: the OTLP exporters speak only {' and '.join(PROTOCOLS)}; "
        f"using {DEFAULT_PROTOCOL}"
    )
    return DEFAULT_PROTOCOL


#: (variable, default) of each batch span processor setting; the SDK's defaults but the queue.
_BATCH_VARIABLES = (
    ("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_SPAN_QUEUE),
    ("OTEL_BSP_SCHEDULE_DELAY", 5_000),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
    ("OTEL_BSP_EXPORT_TIMEOUT", 30_000),
)


def _batch(warnings: dict[str, str]) -> BatchSettings:
    # Checked here, because the SDK raises ValueError from BatchSpanProcessor() on 0 or -1
    # and logs a traceback on a non-number.
    values = []
    for variable, default in _BATCH_VARIABLES:
        raw = _env(variable)
        value = default
        if raw is not None:
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                warnings[variable] = (
                    f"ignoring {variable}={raw!r}: not a positive integer; using {default}"
                )
                value = default
        values.append(value)
    queue, delay, batch, timeout = values
    if batch > queue:
        given = "" if _env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") is not None else " (its default)"
        warnings["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = (
            f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={batch}{given} is more than the queue holds "
            f"(OTEL_BSP_MAX_QUEUE_SIZE={queue}); using {queue}"
        )
        batch = queue
    return BatchSettings(queue, delay, batch, timeout)


def _metric_interval(warnings: dict[str, str]) -> float | None:
    """``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds) in seconds; None when unset or invalid."""
    variable = "OTEL_METRIC_EXPORT_INTERVAL"
    raw = _env(variable)
    if raw is None:
        return None
    try:
        millis = float(raw)
    except ValueError:
        millis = 0.0
    if not 0 < millis < float("inf"):
        warnings[variable] = (
            f"ignoring {variable}={raw!r}: not a number of milliseconds above 0; using "
            f"{DEFAULT_METRIC_EXPORT_INTERVAL:g} seconds"
        )
        return None
    return millis / 1000


# --------------------------------------------------------------------------- redaction

#: A path segment that looks like a token: long, letters and digits mixed.
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~=+]{24,}$")
_HIDDEN = "***"


def _segment(segment: str) -> str:
    """A path segment fit to print: a token-like one hidden, a matrix parameter's value too."""
    name, semicolon, params = segment.partition(";")  # /v1/traces;token=... (RFC 3986 3.3)
    shown = _HIDDEN if _TOKEN_LIKE.match(name) else name
    if semicolon:
        shown += ";" + ";".join(
            f"{p.partition('=')[0]}={_HIDDEN}" if "=" in p else _HIDDEN for p in params.split(";")
        )
    return shown


def redact_url(url: str) -> str:
    """Return ``url`` fit to print: no userinfo, no query values, no token-like path segment.

    ``https://user:secret@host:4318/v1?api_key=k`` becomes ``https://***@host:4318/v1?api_key=***``.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return "<an endpoint that is not a valid URL>"
    if not parts.netloc:
        # No "//": "user:secret@host:4318" parses as scheme "user". Keep only what follows "@".
        head = text.split("?", 1)[0].split("#", 1)[0]
        return f"{_HIDDEN}@{head.rpartition('@')[2]}" if "@" in head else head
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_HIDDEN}@{netloc.rpartition('@')[2]}"
    path = "/".join(_segment(segment) for segment in parts.path.split("/"))
    # Every value goes, not only those named like a token; a bare "?abc" may be one too.
    query = "&".join(
        f"{piece.partition('=')[0]}={_HIDDEN}" if "=" in piece else _HIDDEN
        for piece in parts.query.split("&")
        if piece
    )
    return urlunsplit((parts.scheme, netloc, path, query, ""))


#: A URL, or a path (as an HTTP client's error quotes the URL it asked for), in free text.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"()<>]+|(?<![\w/])/[^\s'\"()<>]*")


def redact_text(text: str) -> str:
    """Return ``text`` (an exporter's error message) with every URL and path in it redacted.

    As ``redact_url``: no userinfo, no query values, no token-like path segment.
    """

    def one(found: re.Match[str]) -> str:
        url = found.group(0)
        if "://" in url:
            return redact_url(url)
        return redact_url("http://h" + url).removeprefix("http://h")

    return _URL_IN_TEXT.sub(one, text)
