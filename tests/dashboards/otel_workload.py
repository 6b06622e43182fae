"""The demo's workload with its metrics on the OpenTelemetry pipeline, as a program that uses
the standard OpenTelemetry Prometheus exporter has them (run by test_end_to_end.py).

    python otel_workload.py PORT SECONDS

``import pygents`` instruments itself while the global meter provider is still the API's
placeholder; the program then sets an SDK ``MeterProvider`` with the official
``PrometheusMetricReader`` on ``prometheus_client.REGISTRY`` and serves that registry on
127.0.0.1:PORT. The same registry also holds pygents' own collector, registered at import:
``/metrics`` must still have every family once, through the exporter.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

import pygents  # noqa: F401  (instruments itself: the global meter provider is a proxy here)
from pygents.demo._cli import RunInfo, _main, add_arguments
from pygents.observability import is_instrumented


def main() -> int:
    port, seconds = int(sys.argv[1]), sys.argv[2]
    assert is_instrumented(), "import pygents did not instrument (PYGENTS_TELEMETRY=off?)"
    resource = Resource.create({"service.name": "pygents-otel-workload"})
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    )
    server, thread = start_http_server(port, addr="127.0.0.1")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(["--duration", seconds, "--seed", "3"])
    print(f"otel workload: serving /metrics on 127.0.0.1:{port}", flush=True)
    try:
        asyncio.run(_main(options, RunInfo(3)))
    finally:
        server.shutdown()
        thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
