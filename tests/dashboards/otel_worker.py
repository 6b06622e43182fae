"""A demo Redis worker with its metrics on the OpenTelemetry pipeline (run by
test_end_to_end.py), as otel_workload.py is the in-process demo's.

    python otel_worker.py PORT REDIS_URL NAMESPACE

The SDK's ``MeterProvider`` with the official ``PrometheusMetricReader`` exports pygents'
instruments and the worker's ``pygents.redis.*`` observable instruments into
``prometheus_client.REGISTRY``, served on 127.0.0.1:PORT; the worker registers no Prometheus
collector of its own (``prometheus_registry=False``), so every family is there once.
SIGTERM stops it.
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
from pygents.demo._cli import add_arguments
from pygents.demo._redis import serve_worker


def main() -> int:
    port, url, namespace = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    resource = Resource.create({"service.name": "pygents-otel-worker"})
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    )
    server, thread = start_http_server(port, addr="127.0.0.1")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(
        ["worker", "--redis", url, "--namespace", namespace, "--seed", "3", "--lease-ttl", "3"]
    )
    print(f"otel worker: serving /metrics on 127.0.0.1:{port}", flush=True)
    try:
        asyncio.run(serve_worker(options, [], prometheus_registry=False))
    finally:
        server.shutdown()
        thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
