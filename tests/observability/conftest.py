"""Fixtures for telemetry tests: fresh SDK providers and a private Prometheus registry per test.

Never the global providers (they can be set only once per process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from pygents.observability import _instrument, instrument, uninstrument
from pygents.observability._settings import reset_warnings

#: The span suite runs on either span path: PYGENTS_FAST_SPANS=0 forces the public SDK API
#: (.ci/run runs it both ways); =1 makes every ``telemetry`` test check the fast path is taken.
FAST_SPANS = os.environ.get("PYGENTS_FAST_SPANS", "")


def pytest_report_header() -> str:
    path = "public SDK API (forced)" if FAST_SPANS == "0" else "fast path where exact"
    return f"pygents spans: {path} (PYGENTS_FAST_SPANS={FAST_SPANS!r})"


@dataclass
class Telemetry:
    """What a test inspects: finished spans, OTel metrics, Prometheus exposition."""

    spans: InMemorySpanExporter
    tracer_provider: TracerProvider
    metric_reader: InMemoryMetricReader
    meter_provider: MeterProvider
    registry: CollectorRegistry

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def by_name(self, name: str) -> list[Any]:
        return [s for s in self.finished() if s.name == name]

    def sample(self, name: str, labels: dict[str, str]) -> float | None:
        return self.registry.get_sample_value(name, labels)


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    reset_warnings()
    yield
    uninstrument()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Instrument with in-memory exporters; uninstrument afterwards."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    registry = CollectorRegistry()
    assert instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, prometheus_registry=registry
    )
    if FAST_SPANS in {"0", "1"}:
        bridge = _instrument._bridge
        assert bridge is not None
        assert (bridge.spans._fast is not None) is (FAST_SPANS == "1"), "span path not as asked"
    yield Telemetry(spans, tracer_provider, reader, meter_provider, registry)
    uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
