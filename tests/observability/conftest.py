"""Fixtures for telemetry tests: fresh SDK providers and a private Prometheus registry per test.

Never the global providers (they can be set only once per process).
"""

from __future__ import annotations

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

from pygents.observability import instrument, uninstrument
from pygents.observability._settings import reset_warnings


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
    yield Telemetry(spans, tracer_provider, reader, meter_provider, registry)
    uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
