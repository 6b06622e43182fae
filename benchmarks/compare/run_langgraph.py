"""LangGraph: a one-node graph that loops N steps.

Each step: the node runs (it calls the trivial tool function and increments the counter in
the state), LangGraph merges the state update and evaluates the conditional edge back to
the node. No checkpointer. Tracing on: LangSmith tracing (its standard tracer) sent to a
local HTTP sink on 127.0.0.1 that accepts and drops everything; the run is flushed before
the clock stops, so sending is inside the measurement.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypedDict

from _common import guarded, measure, parse

args = parse()


class _Sink(BaseHTTPRequestHandler):
    def _ok(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = _ok

    def log_message(self, *a: Any) -> None:
        pass


def start_sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


class State(TypedDict):
    left: int
    calls: int


async def tool_fn(x: int) -> int:
    return x


async def step(state: State) -> dict[str, int]:
    await tool_fn(state["left"])
    return {"left": state["left"] - 1, "calls": state["calls"] + 1}


def run() -> None:
    if args.tracing == "on":
        os.environ.update(
            LANGSMITH_TRACING="true",
            LANGSMITH_ENDPOINT=start_sink(),
            LANGSMITH_API_KEY="local-sink",
            LANGSMITH_PROJECT="bench",
        )
    else:
        os.environ["LANGSMITH_TRACING"] = "false"

    from importlib.metadata import version

    from langgraph.graph import END, START, StateGraph

    def route(state: State) -> str:
        return "step" if state["left"] > 0 else END

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", route)
    graph = builder.compile()

    flush: Any = None
    if args.tracing == "on":
        from langchain_core.tracers.langchain import wait_for_all_tracers

        flush = wait_for_all_tracers

    async def workload(steps: int) -> int:
        out = await graph.ainvoke({"left": steps, "calls": 0}, {"recursion_limit": steps + 10})
        if flush is not None:
            flush()
        return int(out["calls"])

    measure("LangGraph", version("langgraph"), workload, args)


guarded("LangGraph", args, run)
