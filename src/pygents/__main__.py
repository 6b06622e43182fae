"""The ``pygents`` command (also ``python -m pygents``).

Commands:
    demo: run a multi-agent workload with telemetry on (see ``pygents demo --help``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: The exit code when stdout is closed before the output ends (128 + SIGPIPE, as the shell
#: reports a program that a closed pipe ended).
EXIT_BROKEN_PIPE = 141


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser, and its ``demo`` subcommand's."""
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    prog = "python -m pygents" if invoked == "__main__.py" else "pygents"
    parser = argparse.ArgumentParser(
        prog=prog, description="pygents: lightweight async agent orchestration."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="run a multi-agent workload with telemetry on",
        description=(
            "Run a research team of agents (planners, fetchers, writers, a supervisor) against "
            "simulated services, with timeouts, errors, evictions and pauses, and telemetry on: "
            "Prometheus /metrics served locally, spans exported over OTLP when "
            "OTEL_EXPORTER_OTLP_ENDPOINT is set. Prints live progress on stderr and a per-agent "
            "summary on stdout. Exit code: 0 when finished, 130 on Ctrl-C (SIGINT), 143 on "
            "SIGTERM, 2 when the telemetry extras are missing."
        ),
    )
    from pygents.demo._cli import add_arguments

    add_arguments(demo)
    return parser, demo


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line), run the command, return its exit code."""
    parser, demo = _parser()
    options = parser.parse_args(argv)
    if options.command == "demo":
        from pygents.demo._cli import check_options, run

        check_options(demo, options)  # exits 2, as argparse does, on a bad combination
        try:
            return run(options)
        except BrokenPipeError:
            # stdout closed early (`pygents demo | head`): no traceback; stdout is pointed
            # at /dev/null so that the interpreter's last flush of it does not fail too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
    raise AssertionError(f"unhandled command {options.command!r}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
