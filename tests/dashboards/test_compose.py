"""docker-compose.yml, the Dockerfile and Grafana's provisioning, checked without Docker:
`docker-compose config -q`, the compose-spec JSON schema, bind mounts, pinned images, and
ports/hosts consistent between compose, the Prometheus scrape config and the data sources."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
from dashboard_support import (
    COMPOSE_FILE,
    DASHBOARD_JSON,
    DOCKERFILE,
    PROMETHEUS_CONFIG,
    PROVISIONING,
    ROOT,
    find_executable,
    load_dashboards,
    load_yaml,
    missing,
)

#: The port `pygents demo` serves /metrics on in the stack.
DEMO_METRICS_PORT = 9464


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    return data


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yml")):
        for source in load_yaml(path)["datasources"]:
            found[source["uid"]] = source
    return found


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of every bind mount (short or long syntax) of a service."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *_ = volume.split(":")
        else:
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def host_path(source: str) -> Any:
    return (COMPOSE_FILE.parent / source).resolve()


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of every published port (``[ip:]host:container[/proto]``)."""
    ports = set()
    for spec in service.get("ports", []):
        text = str(spec["target"] if isinstance(spec, dict) else spec)
        ports.add(int(text.split("/")[0].rsplit(":", 1)[-1]))
    return ports


def option(command: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command line."""
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------- validation


def test_docker_compose_config_accepts_the_file() -> None:
    binary = find_executable("docker-compose")
    if binary is None:
        missing("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_file_matches_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path: Any) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        COMPOSE_FILE.read_text(encoding="utf-8").replace("    ports:\n", "    portz:\n", 1),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", bad],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0


def test_the_stack_has_its_services(services: dict[str, Any]) -> None:
    assert {"demo", "jaeger", "prometheus", "grafana"} <= set(services)


def test_every_bind_mount_source_exists(services: dict[str, Any]) -> None:
    checked = 0
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert host_path(source).exists(), f"{name}: bind mount source {source} is missing"
            checked += 1
    assert checked >= 3


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue  # built from this repo; its base image is checked below
        image = service.get("image", "")
        match = re.fullmatch(r"[\w./-]+:([\w.-]+)", image)
        assert match, f"{name}: image {image!r} has no tag"
        assert match.group(1) != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d", match.group(1)), f"{name}: {image} tag is not a version"


def test_jaeger_is_v2_and_prometheus_is_v3(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", services["jaeger"]["image"])
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", services["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:1[1-9]\.\d+\.\d+", services["grafana"]["image"])


def test_dockerfile_is_pinned_and_copies_what_exists() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert bases, "no FROM"
    for base in bases:
        match = re.fullmatch(r"[\w./-]+:([\w.-]+)", base)
        assert match and match.group(1) != "latest", base
        assert re.match(r"\d+\.\d+\.\d+", match.group(1)), f"{base}: pin the full version"
    for line in re.findall(r"^COPY\s+(.+)$", text, flags=re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is missing"
    entry = re.search(r"^ENTRYPOINT\s+(\[.*\])", text, flags=re.M)
    assert entry and '"pygents"' in entry.group(1)
    # The console script the image's entry point runs.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "pygents" in project.get("scripts", {}), "no `pygents` console script"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "README.md", "src"} <= kept


# --------------------------------------------------------------------------- consistency


def test_demo_serves_metrics_where_prometheus_scrapes(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    demo = services["demo"]
    command = demo["command"]
    assert command[0] == "demo"
    assert option(command, "--metrics-host") == "0.0.0.0"  # reachable from other containers
    port = int(option(command, "--metrics-port") or DEMO_METRICS_PORT)
    assert port in container_ports(demo)

    jobs = prometheus_config["scrape_configs"]
    targets = [t for job in jobs for sc in job["static_configs"] for t in sc["targets"]]
    assert f"demo:{port}" in targets
    job = next(j for j in jobs if f"demo:{port}" in str(j["static_configs"]))
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # Exemplars are only in the OpenMetrics exposition: negotiate it first.
    protocols = job["scrape_protocols"]
    assert protocols[0].startswith("OpenMetricsText"), protocols


def test_prometheus_keeps_exemplars_and_reads_the_mounted_config(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    command = prometheus["command"]
    assert "--enable-feature=exemplar-storage" in command
    config = option(command, "--config.file")
    mounts = {target: source for source, target in bind_mounts(prometheus)}
    assert config in mounts, f"{config} is not mounted"
    assert host_path(mounts[config]) == PROMETHEUS_CONFIG
    listen = option(command, "--web.listen-address") or "0.0.0.0:9090"
    assert int(listen.rsplit(":", 1)[1]) in container_ports(prometheus)


def test_datasources_point_at_the_services(
    services: dict[str, Any],
    datasources: dict[str, dict[str, Any]],
    prometheus_config: dict[str, Any],
) -> None:
    by_type = {s["type"]: s for s in datasources.values()}
    assert set(by_type) == {"prometheus", "jaeger"}

    prom = urlsplit(by_type["prometheus"]["url"])
    command = services["prometheus"]["command"]
    listen = option(command, "--web.listen-address") or "0.0.0.0:9090"
    assert prom.hostname == "prometheus" and prom.port == int(listen.rsplit(":", 1)[1])
    assert by_type["prometheus"].get("isDefault") is True
    # $__rate_interval is derived from the data source's scrape interval: keep them equal.
    assert (
        by_type["prometheus"]["jsonData"]["timeInterval"]
        == prometheus_config["global"]["scrape_interval"]
    )

    jaeger = urlsplit(by_type["jaeger"]["url"])
    assert jaeger.hostname == "jaeger" and jaeger.port == 16686
    assert 16686 in container_ports(services["jaeger"])


def test_exemplars_link_to_the_jaeger_datasource_by_uid(
    datasources: dict[str, dict[str, Any]],
) -> None:
    prometheus = next(s for s in datasources.values() if s["type"] == "prometheus")
    links = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert links, "no exemplar link"
    for link in links:
        # The exemplar label pygents writes (see test_promtool.py for the exposition side).
        assert link["name"] == "trace_id"
        assert datasources[link["datasourceUid"]]["type"] == "jaeger"
        assert "url" not in link  # an internal link: by uid, not a hard-coded URL


def test_demo_exports_spans_to_jaeger_otlp(services: dict[str, Any]) -> None:
    env = services["demo"]["environment"]
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    url = urlsplit(endpoint)
    assert url.hostname == "jaeger"
    assert url.port in container_ports(services["jaeger"])
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert url.port == (4317 if protocol == "grpc" else 4318)
    if "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env:
        assert url.path == "/v1/traces"  # signal-specific endpoints are used as given
    assert services["jaeger"]["environment"]["JAEGER_LISTEN_HOST"] == "0.0.0.0"


def test_grafana_is_provisioned_with_the_committed_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    mounts = {target: host_path(source) for source, target in bind_mounts(grafana)}
    assert mounts["/etc/grafana/provisioning"] == PROVISIONING
    env = grafana["environment"]
    assert str(env["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert 3000 in container_ports(grafana)

    providers = [
        provider
        for path in sorted((PROVISIONING / "dashboards").glob("*.yml"))
        for provider in load_yaml(path)["providers"]
    ]
    assert len(providers) == 1
    folder = providers[0]["options"]["path"]
    assert mounts.get(folder) == DASHBOARD_JSON, f"{folder} is not the dashboards mount"
    # The home dashboard is one of the mounted files.
    home = PurePosixPath(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert str(home.parent) == folder
    assert home.name in load_dashboards()


def test_every_published_port_is_on_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for spec in service.get("ports", []):
            assert str(spec).startswith("127.0.0.1:"), f"{name}: {spec} is published publicly"


def test_two_redis_workers_are_fed_by_the_demo_and_scraped(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    assert re.fullmatch(r"redis:7\.\d+\.\d+", services["redis"]["image"])
    url = "redis://redis:6379/0"
    demo = services["demo"]["command"]
    assert option(demo, "--redis") == url, "the demo feeds the workers through Redis"
    targets = {
        t for job in prometheus_config["scrape_configs"] for sc in job["static_configs"]
        for t in sc["targets"]
    }  # fmt: skip
    workers = [name for name in services if name.startswith("worker-")]
    assert len(workers) == 2
    names = set()
    for name in workers:
        command = services[name]["command"]
        assert command[:2] == ["demo", "worker"], command
        assert option(command, "--redis") == url
        assert option(command, "--seed") == option(demo, "--seed"), "the same questions"
        assert option(command, "--metrics-host") == "0.0.0.0"
        port = int(option(command, "--metrics-port") or DEMO_METRICS_PORT)
        assert port in container_ports(services[name])
        assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}"
        assert "redis" in services[name]["depends_on"]
        names.add(option(command, "--name"))
    assert names == set(workers), "each worker has its own --name"
