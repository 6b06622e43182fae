"""``pygents demo``: options, telemetry set-up, signals, and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._agents import build_crew
from ._progress import Progress
from ._redis import DEFAULT_NAMESPACE, add_worker_arguments
from ._summary import Stats
from ._workload import Workload
from ._world import World, enter_world

if TYPE_CHECKING:
    from pygents.observability import TelemetryHandle

__all__ = ["add_arguments", "run"]

EXIT_OK = 0
EXIT_NO_METRICS_PORT = 1
EXIT_MISSING_EXTRAS = 2
EXIT_NO_REDIS = 3
#: 128 + the signal number, as a shell reports a process killed by it.
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: How long the exit waits for spans and metrics to be exported.
FLUSH_TIMEOUT = 5.0

INSTALL_HINT = 'python -m pip install "pygents[all]"'


#: The most fetcher agents a demo runs (each is a few tasks; thousands make stopping slow).
MAX_AGENTS = 1000


# The validators' names are what argparse shows ("invalid positive integer value: 'x'").
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _agents(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_AGENTS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_AGENTS}, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number more than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _redis_url(text: str) -> str:
    if urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise argparse.ArgumentTypeError(
            f"must be a Redis URL (redis://host:port/db, rediss://, unix://), got {text!r}"
        )
    return text


_positive_int.__name__ = "positive integer"
_agents.__name__ = "agent count"
_positive_float.__name__ = "positive number"
_port.__name__ = "port"
_text.__name__ = "text"
_redis_url.__name__ = "Redis URL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``."""
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="feed new questions for this long, then let those in flight finish (at most 2 s "
        "more); default: run until Ctrl-C",
    )
    length.add_argument(
        "--turns",
        type=_positive_int,
        metavar="N",
        help="feed whole questions until they account for at least N turns, run them all, and "
        "stop (with --seed, the same turns, timeouts and errors every time)",
    )
    parser.add_argument(
        "--agents",
        type=_agents,
        default=3,
        metavar="N",
        help=f"number of fetcher agents (default 3, at most {MAX_AGENTS}); planners (one per 3 "
        "fetchers) and writers (one per 2) scale with it",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of every latency, failure and question (default: a random one, printed; "
        "with --redis, 0, as the workers')",
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=9464,
        metavar="PORT",
        help="serve Prometheus /metrics on this port (default 9464; 0 picks a free one)",
    )
    parser.add_argument(
        "--metrics-host",
        type=_text,
        default="127.0.0.1",
        metavar="HOST",
        help="address /metrics binds to (default 127.0.0.1, loopback only)",
    )
    parser.add_argument(
        "--console-spans",
        action="store_true",
        help="also print every span to stdout (verbose)",
    )
    parser.add_argument(
        "--redis",
        type=_redis_url,
        metavar="URL",
        help="run no agent here: send the questions through Redis (redis://host:port/db) to "
        "the team served by `pygents demo worker` processes (needs pygents[redis])",
    )
    parser.add_argument(
        "--namespace",
        type=_text,
        help=f"with --redis: prefix of every Redis key (default {DEFAULT_NAMESPACE})",
    )
    parser.epilog = (
        "Exit code: 0 when done; 1 when /metrics cannot be served (the port is taken: choose "
        "another --metrics-port, 0 picks a free one); 2 for a bad option or a missing extra; "
        "3 when --redis cannot be reached; 130 on SIGINT, 143 on SIGTERM (the summary is "
        "printed either way); 141 when stdout is closed before the end (`| head`)."
    )
    workers = parser.add_subparsers(dest="demo_command", metavar="worker")
    worker = workers.add_parser(
        "worker",
        help="serve the demo's team from Redis (run several)",
        description=(
            "Serve the demo's agents from Redis with a pygents.redis.RedisWorker, together with "
            "any number of other workers, telemetry on (Prometheus /metrics, and spans over OTLP "
            "when OTEL_EXPORTER_OTLP_ENDPOINT is set). Feed it with `pygents demo --redis URL`. "
            "SIGINT / SIGTERM stop it cleanly: turns in flight finish and the leases are given "
            "back. Exit code: 130 on SIGINT, 143 on SIGTERM, 2 when an extra is missing, 3 "
            "when Redis cannot be reached."
        ),
    )
    add_worker_arguments(worker, _positive_int, _agents, _text, _redis_url, _port)


def check_options(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """Refuse (``parser.error``: usage, exit 2) options that only make sense together."""
    if getattr(options, "demo_command", None) == "worker":
        return
    if options.namespace is not None and options.redis is None:
        parser.error("argument --namespace: only with --redis (the agents run here otherwise)")
    if options.namespace is None:
        options.namespace = DEFAULT_NAMESPACE


def missing_extras() -> list[str]:
    """The telemetry packages the demo needs that are not installed."""
    missing = []
    for module, distribution in (
        ("opentelemetry.sdk", "opentelemetry-sdk"),
        ("prometheus_client", "prometheus-client"),
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(distribution)
    return missing


def _say_missing(what: str) -> int:
    print(
        f"pygents demo needs the telemetry extras ({what} missing).\n"
        f"Install them with:  {INSTALL_HINT}",
        file=sys.stderr,
    )
    return EXIT_MISSING_EXTRAS


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/metrics"


def start_telemetry(options: argparse.Namespace) -> TelemetryHandle | int:
    """Configure OpenTelemetry and serve ``/metrics``; an exit code if that is impossible."""
    missing = missing_extras()
    if missing:
        return _say_missing(", ".join(missing))
    try:
        from pygents.observability import configure

        return configure(
            service_name=os.environ.get("OTEL_SERVICE_NAME") or "pygents-demo",
            prometheus_port=options.metrics_port,
            prometheus_host=options.metrics_host,
            console_spans=options.console_spans,
        )
    except ImportError as exc:
        return _say_missing(exc.name or str(exc))
    except OSError as exc:
        print(
            f"pygents demo: cannot serve /metrics on {options.metrics_host}:"
            f"{options.metrics_port}: {exc.strerror or exc}. Choose another --metrics-port "
            f"(0 picks a free one), or check --metrics-host.",
            file=sys.stderr,
        )
        return EXIT_NO_METRICS_PORT


def _traces_destination(handle: TelemetryHandle) -> str:
    # The handle's words, with any credentials in the endpoint already redacted.
    if not handle.span_destinations:
        return "not exported (set OTEL_EXPORTER_OTLP_ENDPOINT, or use --console-spans)"
    return " and ".join(handle.span_destinations)


@dataclass
class RunInfo:
    """What the summary needs beyond the per-agent statistics."""

    seed: int
    stats: Stats = field(default_factory=Stats)
    signal: int | None = None
    questions: int = 0
    planned_turns: int = 0


def _redis_missing() -> int | None:
    try:
        found = importlib.util.find_spec("redis") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    print(
        'pygents demo over Redis needs the redis extra: python -m pip install "pygents[redis]"',
        file=sys.stderr,
    )
    return EXIT_MISSING_EXTRAS


def _say_unreachable(url: str, exc: Exception, who: str = "pygents demo") -> int:
    print(
        f"{who}: Redis at {url} failed: {str(exc).rstrip('.')}. Is a redis-server running "
        f"there (redis-server --port N), and is --redis its URL (redis://host:port/db)?",
        file=sys.stderr,
    )
    return EXIT_NO_REDIS


def _exit_code(signum: int | None) -> int:
    if signum is None:
        return EXIT_OK
    return EXIT_FOR_SIGNAL.get(signal.Signals(signum), 128 + signum)


def run_worker(options: argparse.Namespace) -> int:
    """Run ``pygents demo worker`` with parsed ``options``; return the process exit code."""
    missing = _redis_missing()
    if missing is not None:
        return missing
    started = start_telemetry(options)
    if isinstance(started, int):
        return started
    handle = started
    from ._redis import serve_worker

    port = handle.metrics_port if handle.metrics_port is not None else options.metrics_port
    print(f"pygents demo worker: {options.redis}, namespace {options.namespace!r}")
    print(f"  metrics: {_url(options.metrics_host, port)}")
    print(f"  traces:  {_traces_destination(handle)}", flush=True)
    from redis.exceptions import RedisError

    caught: list[int] = []
    stats: dict[str, object] = {}
    try:
        stats = asyncio.run(serve_worker(options, caught))
    except KeyboardInterrupt:
        caught.append(signal.SIGINT)
    except RedisError as exc:
        return _say_unreachable(options.redis, exc, "pygents demo worker")
    finally:
        _flush(handle, caught)
    print(f"pygents demo worker stopped: {stats}", flush=True)
    return _exit_code(caught[0] if caught else None)


def _run_feeder(options: argparse.Namespace) -> int:
    missing = _redis_missing()
    if missing is not None:
        return missing
    started = start_telemetry(options)
    if isinstance(started, int):
        return started
    handle = started
    from ._redis import feed_redis

    seed = options.seed if options.seed is not None else 0
    _banner(options, seed, handle)
    from redis.exceptions import RedisError

    caught: list[int] = []
    questions = turns = 0
    try:
        questions, turns = asyncio.run(feed_redis(options, seed, caught))
    except KeyboardInterrupt:
        caught.append(signal.SIGINT)
    except RedisError as exc:
        return _say_unreachable(options.redis, exc)
    finally:
        _flush(handle, caught)
    print(f"pygents demo: sent {questions} questions ({turns} planned turns) through Redis")
    return _exit_code(caught[0] if caught else None)


def run(options: argparse.Namespace) -> int:
    """Run the demo with parsed ``options``; return the process exit code."""
    if getattr(options, "demo_command", None) == "worker":
        return run_worker(options)
    if options.redis is not None:
        return _run_feeder(options)
    started = start_telemetry(options)
    if isinstance(started, int):
        return started
    handle = started
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(10**6)
    info = RunInfo(seed)
    try:
        _banner(options, seed, handle)
        asyncio.run(_main(options, info))
    except KeyboardInterrupt:  # no signal handlers on this platform: Ctrl-C lands here
        info.signal = info.signal or signal.SIGINT
    finally:
        info.stats.stop_clock()
        caught: list[int] = []
        flushed = _flush(handle, caught)  # export the run's spans
        if caught:
            info.signal = info.signal or caught[0]
        elif not flushed:
            print(
                f"pygents demo: telemetry was still exporting after {FLUSH_TIMEOUT:g} s "
                f"(is the OTLP endpoint reachable?); gave up waiting",
                file=sys.stderr,
            )
    _report(options, info)
    if info.signal is not None:
        return EXIT_FOR_SIGNAL.get(signal.Signals(info.signal), 128 + info.signal)
    return EXIT_OK


def _flush(handle: TelemetryHandle, caught: list[int]) -> bool:
    """``handle.shutdown()``, which waits up to ``FLUSH_TIMEOUT`` for the export.

    SIGINT or SIGTERM meanwhile stops the wait (the signal is appended to ``caught``) and
    the summary is still printed: the run loop's handlers are gone by now, and SIGTERM's
    default would end the process on the spot.
    """

    def stop(signum: int, frame: Any) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: no handler of ours
        previous = None
    try:
        return handle.shutdown(timeout=FLUSH_TIMEOUT)
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) while flushing: stop waiting
        if not caught:
            caught.append(signal.SIGINT)
        return False
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _banner(options: argparse.Namespace, seed: int, handle: TelemetryHandle) -> None:
    if options.turns is not None:
        length = f"for at least {options.turns} turns"
    elif options.duration is not None:
        length = f"for {options.duration:g} s"
    else:
        length = "until Ctrl-C"
    port = handle.metrics_port if handle.metrics_port is not None else options.metrics_port
    where = f", over Redis {options.redis}" if options.redis is not None else ""
    print(f"pygents demo: seed {seed}, {options.agents} fetchers, {length}{where}")
    print(f"  metrics: {_url(options.metrics_host, port)}")
    print(f"  traces:  {_traces_destination(handle)}")
    print("  Ctrl-C stops it and prints the summary.", flush=True)


async def _main(options: argparse.Namespace, info: RunInfo) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def interrupted(signum: int) -> None:
        if info.signal is None:
            info.signal = signum
        stop.set()

    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, interrupted, signum)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform
            pass

    crew = build_crew(options.agents)
    world = World(info.seed, [a.name for a in crew.fetchers], [a.name for a in crew.writers])
    enter_world(world)
    info.stats.watch(crew.agents)
    workload = Workload(crew, world)
    progress = Progress(info.stats, sys.stderr, workload.in_flight)
    workload.start()
    reporter = asyncio.create_task(progress.run())
    working = asyncio.create_task(workload.run(options.duration, options.turns))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([working, stopping], return_when=asyncio.FIRST_COMPLETED)
        if working.done():
            working.result()  # a bug in the workload: let it show
    finally:
        for task in (working, stopping, reporter):
            task.cancel()
        await workload.stop()
        await asyncio.gather(working, stopping, reporter, return_exceptions=True)
        progress.close()
        for signum in handled:
            loop.remove_signal_handler(signum)
        info.stats.stop_clock()
        info.questions = workload.questions
        info.planned_turns = workload.planned
        crew.dismiss()


def _report(options: argparse.Namespace, info: RunInfo) -> None:
    stats = info.stats
    elapsed = stats.elapsed
    rate = stats.turns / elapsed if elapsed > 0 else 0.0
    if info.signal is not None:
        how = f"interrupted by {signal.Signals(info.signal).name} after {elapsed:.1f} s"
    else:
        how = f"finished in {elapsed:.1f} s"
    print()
    print(
        f"pygents demo {how}: {stats.turns} turns ({rate:.1f}/s), {stats.timeouts} timeouts, "
        f"{stats.errors} errors, {info.questions} questions, seed {info.seed}"
    )
    if options.turns is not None and info.signal is None:
        print(f"planned turns: {info.planned_turns} (--turns {options.turns}, whole questions)")
    print()
    print(stats.table(), flush=True)
