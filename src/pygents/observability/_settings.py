"""Telemetry settings: content capture, cardinality, switches read from the environment."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pygents._env import telemetry_switched_off

__all__ = [
    "REDACTION_FAILED",
    "ContentCapture",
    "LabelLimiter",
    "disabled_by_env",
    "first_time",
    "warn_once",
]

logger = logging.getLogger("pygents.observability")

_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: What a span records in place of text whose redaction callback failed.
REDACTION_FAILED = "[redaction failed]"
_MAX_LENGTH = 1024  # ContentCapture.max_length by default
_CAPTURE_ON = {"true", "1", "yes", "span_only", "span_and_event", "event_only"}


# slots: ``enabled`` is read per turn, and a dataclass field's default is a class attribute,
# which before Python 3.13 stops an instance's read of that name from being specialised.
@dataclass(frozen=True, slots=True)
class ContentCapture:
    """Whether and how tool arguments and results are recorded on spans.

    Args:
        enabled: record ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``.
        max_length: truncate each recorded string to this many characters.
        redact: called with each string before it is recorded (serialized arguments and
            results, before truncation; exception messages, tracebacks and span status
            descriptions); returns what to record. If it raises or returns a non-string,
            the placeholder ``[redaction failed]`` is recorded instead.
    """

    enabled: bool = False
    max_length: int = _MAX_LENGTH
    redact: Callable[[str], str] | None = None

    def render(self, value: Any) -> str:
        """Serialize ``value`` (JSON, else repr), redact and truncate it."""
        try:
            text = json.dumps(value, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
        text = self.scrub(text)
        if len(text) > self.max_length:
            text = text[: self.max_length] + "…"
        return text

    def scrub(self, text: str) -> str:
        """Apply the redaction callback to ``text`` (unchanged without one).

        A callback that raises or returns something other than a string yields
        ``REDACTION_FAILED`` instead: the span keeps a placeholder, never the raw text.
        """
        if self.redact is None:
            return text
        try:
            out: Any = self.redact(text)
        except Exception as exc:
            warn_once(
                f"redact:{type(exc).__name__}",
                "pygents telemetry: the redaction callback raised %s; %r is recorded instead",
                type(exc).__name__,
                REDACTION_FAILED,
            )
            return REDACTION_FAILED
        if not isinstance(out, str):
            warn_once(
                "redact:type",
                "pygents telemetry: the redaction callback returned %s, not a string; %r is "
                "recorded instead",
                type(out).__name__,
                REDACTION_FAILED,
            )
            return REDACTION_FAILED
        return out

    @classmethod
    def resolve(cls, value: bool | ContentCapture | None) -> ContentCapture:
        """Build the setting from ``instrument(capture_content=...)`` and the environment."""
        if isinstance(value, ContentCapture):
            return value
        max_length = _int_env("PYGENTS_CAPTURE_CONTENT_MAX_LENGTH", _MAX_LENGTH)
        if value is None:
            raw = os.environ.get(_CAPTURE_ENV, "").strip().lower()
            value = raw in _CAPTURE_ON and raw != "event_only"
        return cls(enabled=bool(value), max_length=max_length)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return max(1, int(raw))
    except ValueError:
        logger.warning("Ignoring %s=%r: not an integer", name, raw)
        return default


def disabled_by_env() -> str | None:
    """Return why telemetry is switched off by the environment, or None."""
    if telemetry_switched_off():
        return "PYGENTS_TELEMETRY=off"
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "OTEL_SDK_DISABLED=true"
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if "pygents" in {part.strip() for part in disabled.split(",")}:
        return "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS contains pygents"
    return None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def first_time(key: str) -> bool:
    """Return True the first time ``key`` is seen (per process, until ``reset_warnings()``).

    Export threads of different signals ask at the same moment: the check is atomic.
    """
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log a warning the first time ``key`` is seen (per process)."""
    if first_time(key):
        logger.warning(message, *args)


def reset_warnings() -> None:
    """Forget which warnings were logged (tests)."""
    with _warned_lock:
        _warned.clear()


class LabelLimiter:
    """Caps the distinct values of one metric label; later values become ``other``."""

    __slots__ = ("_label", "_limit", "_seen")

    def __init__(self, label: str, limit: int) -> None:
        self._label = label
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        """Return ``value``, or ``other`` once the limit of distinct values is reached."""
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            warn_once(
                f"cardinality:{self._label}",
                "pygents telemetry: more than %d distinct values of metric label %r; further "
                "values are reported as 'other' (raise PYGENTS_METRICS_MAX_LABEL_VALUES)",
                self._limit,
                self._label,
            )
            return "other"
        self._seen.add(value)
        return value


def yield_events_cap() -> int:
    """``pygents.tool.yield`` events kept per span (``PYGENTS_YIELD_EVENTS_MAX``, default 100).

    ``0`` records none (``pygents.turn.values`` still counts every value); a value that is not
    a non-negative integer is ignored with a warning.
    """
    name = "PYGENTS_YIELD_EVENTS_MAX"
    raw = os.environ.get(name, "").strip()
    if not raw:
        return 100
    try:
        cap = int(raw)
    except ValueError:
        cap = -1
    if cap < 0:
        logger.warning("Ignoring %s=%r: not a non-negative integer (using 100)", name, raw)
        return 100
    return cap


def label_limit() -> int:
    """The per-label cap on distinct values (``PYGENTS_METRICS_MAX_LABEL_VALUES``, default 200)."""
    return _int_env("PYGENTS_METRICS_MAX_LABEL_VALUES", 200)
