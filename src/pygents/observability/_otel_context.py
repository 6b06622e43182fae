"""OpenTelemetry's current context, read and switched at the cost of one ``ContextVar`` call.

The API's ``context.attach`` / ``detach`` / ``get_current`` each go through two Python calls
to reach the ``ContextVar`` of its default runtime context (``ContextVarsRuntimeContext``),
and ``is_instrumentation_enabled()`` through six. The bridge switches the context about four
times per turn, so when the runtime context is that default one, with the API's own code
(nothing wraps or replaces it), it uses the variable directly: the same ``set``, ``reset``
and ``get`` the API would end up making. Anything else (``OTEL_PYTHON_CONTEXT`` naming
another runtime context, a patched function, an API release whose code differs, or
``PYGENTS_FAST_SPANS=0``) takes the public functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context

__all__ = ["FAST_SPANS_ENV", "ContextAccess", "fast_spans_enabled"]

#: The environment switch of the fast paths: ``0`` / ``false`` / ``off`` force the public API.
FAST_SPANS_ENV = "PYGENTS_FAST_SPANS"


def fast_spans_enabled() -> bool:
    """False when ``PYGENTS_FAST_SPANS`` switches the fast span path off."""
    raw = os.environ.get(FAST_SPANS_ENV, "").strip().lower()
    return raw not in {"0", "false", "off", "no"}


def _names(function: Any) -> frozenset[str]:
    code = getattr(function, "__code__", None)
    return frozenset(code.co_names) if code is not None else frozenset({"?"})


#: What the API's functions and the default runtime context's methods reference (the code of
#: API 1.27 through 1.45): anything else means their behaviour may differ from one call.
_EXPECTED = {
    "get_current": frozenset({"_RUNTIME_CONTEXT", "get_current"}),
    "attach": frozenset({"_RUNTIME_CONTEXT", "attach"}),
    "detach": frozenset({"_RUNTIME_CONTEXT", "detach", "Exception", "logger", "exception"}),
}
_EXPECTED_RUNTIME = {
    "get_current": frozenset({"_current_context", "get"}),
    "attach": frozenset({"_current_context", "set"}),
    "detach": frozenset({"_current_context", "reset"}),
}


def _runtime_var() -> ContextVar[Any] | None:
    """The ``ContextVar`` behind the API's current context, when using it directly is exact."""
    if not fast_spans_enabled():
        return None
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    except ImportError:
        return None
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is not ContextVarsRuntimeContext:
        return None
    for name, expected in _EXPECTED.items():
        function = getattr(otel_context, name, None)
        if getattr(function, "__module__", None) != otel_context.__name__:
            return None
        if not _names(function) <= expected:
            return None
    for name, expected in _EXPECTED_RUNTIME.items():
        if name in vars(runtime) or not _names(getattr(type(runtime), name, None)) <= expected:
            return None
    var = getattr(runtime, "_current_context", None)
    return var if type(var) is ContextVar else None


def _suppression_keys() -> tuple[str, ...] | None:
    """The context keys ``is_instrumentation_enabled()`` reads, when that is all it does."""
    try:
        from opentelemetry.instrumentation import utils
    except ImportError:
        return ()  # nothing can suppress without the package that does it
    function = getattr(utils, "is_instrumentation_enabled", None)
    if function is None:
        return ()
    names = _names(function)
    keys = names - {"context", "get_value"}
    if not keys or not all(type(getattr(utils, key, None)) is str for key in keys):
        return None
    if not all(key.startswith("_SUPPRESS_INSTRUMENTATION_KEY") for key in keys):
        return None
    if _names(getattr(otel_context, "get_value", None)) > {"get", "get_current"}:
        return None
    return tuple(getattr(utils, key) for key in sorted(keys))


class ContextAccess:
    """Reads and switches OpenTelemetry's current context (directly when that is exact)."""

    def __init__(self) -> None:
        var = _runtime_var()
        keys = _suppression_keys() if var is not None else None
        self.direct = var is not None and keys is not None
        self.get_current: Callable[[], Any]
        self.attach: Callable[[Any], Any]
        self.detach: Callable[[Any], None]
        #: Whether instrumentation is on (honours ``suppress_instrumentation()``); when
        #: ``direct``, the context keys that switch it off, read directly instead.
        self.keys: tuple[str, ...]
        self.enabled: Callable[[], bool] = _instrumentation_switch()
        if var is not None and keys is not None:
            self.get_current = var.get
            self.attach = var.set
            self.detach = var.reset
            self.keys = keys
        else:
            self.get_current = otel_context.get_current
            self.attach = otel_context.attach
            self.detach = otel_context.detach
            self.keys = ()


def _instrumentation_switch() -> Callable[[], bool]:
    """``is_instrumentation_enabled`` (honours ``suppress_instrumentation()``), if installed.

    ``suppress_instrumentation()`` lives in opentelemetry-instrumentation; without that
    package nothing can suppress, so instrumentation is always on.
    """
    try:
        from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    except ImportError:
        return lambda: True
    enabled: Callable[[], bool] = is_instrumentation_enabled
    return enabled
