"""Names used by the telemetry bridge: span names, attribute keys, metric names.

Kept in one place so the docs table can be checked against the code.
The OpenTelemetry GenAI semantic conventions are at "Development" stability; we follow
the version pinned below.
"""

from __future__ import annotations

from typing import NamedTuple

SEMCONV_VERSION = "1.38.0"
"""The OpenTelemetry semantic-conventions version the span, attribute and metric names follow."""
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
"""The schema URL of ``SEMCONV_VERSION``; the tracer and meter are created with it."""
INSTRUMENTATION_NAME = "pygents"

# -- span names -----------------------------------------------------------------------------
SPAN_INVOKE_AGENT = "invoke_agent {agent}"
SPAN_EXECUTE_TOOL = "execute_tool {tool}"

# -- attributes -----------------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"
PYGENTS_AGENT_TAGS = "pygents.agent.tags"
PYGENTS_AGENT_TURNS = "pygents.agent.turns"
PYGENTS_TURN_TIMEOUT = "pygents.turn.timeout"
PYGENTS_TURN_STOP_REASON = "pygents.turn.stop_reason"
PYGENTS_TURN_VALUES = "pygents.turn.values"

OP_INVOKE_AGENT = "invoke_agent"
OP_EXECUTE_TOOL = "execute_tool"

# -- span events ----------------------------------------------------------------------------
EVENT_PUT = "pygents.agent.put"
EVENT_PAUSE = "pygents.agent.pause"
EVENT_RESUME = "pygents.agent.resume"
EVENT_QUEUE_APPEND = "pygents.context_queue.append"
EVENT_QUEUE_EVICT = "pygents.context_queue.evict"
EVENT_QUEUE_CLEAR = "pygents.context_queue.clear"
EVENT_POOL_ADD = "pygents.context_pool.add"
EVENT_POOL_REMOVE = "pygents.context_pool.remove"
EVENT_POOL_EVICT = "pygents.context_pool.evict"
EVENT_POOL_CLEAR = "pygents.context_pool.clear"
EVENT_YIELD = "pygents.tool.yield"

# -- event attributes -----------------------------------------------------------------------
PYGENTS_TOOL_YIELD_INDEX = "pygents.tool.yield.index"
PYGENTS_CONTEXT_ITEMS = "pygents.context.items"
PYGENTS_CONTEXT_ITEM_ID = "pygents.context.item.id"

# -- metrics -----------------------------------------------------------------------------------


class MetricSpec(NamedTuple):
    """One metric of the contract: its Prometheus and OpenTelemetry forms."""

    name: str  #: the Prometheus name
    kind: str  #: counter, gauge or histogram
    labels: tuple[str, ...]  #: Prometheus label names
    otel_name: str  #: the OpenTelemetry instrument name
    unit: str  #: the OpenTelemetry unit
    source: str  #: the hooks it comes from (the docs table's last column)
    description: str  #: Prometheus HELP and OpenTelemetry description


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "pygents_turns_total",
        "counter",
        ("agent", "tool", "stop_reason"),
        "pygents.turns",
        "{turn}",
        "TurnHook ON_COMPLETE",
        "Turns finished, by agent, tool and stop reason.",
    ),
    MetricSpec(
        "pygents_turn_duration_seconds",
        "histogram",
        ("agent", "tool", "stop_reason"),
        "pygents.turn.duration",
        "s",
        "TurnHook BEFORE_RUN → ON_COMPLETE",
        "Turn duration from BEFORE_RUN to ON_COMPLETE.",
    ),
    MetricSpec(
        "pygents_turn_timeouts_total",
        "counter",
        ("agent", "tool"),
        "pygents.turn.timeouts",
        "{turn}",
        "TurnHook ON_TIMEOUT",
        "Turns that timed out.",
    ),
    MetricSpec(
        "pygents_turn_errors_total",
        "counter",
        ("agent", "tool", "error_type"),
        "pygents.turn.errors",
        "{turn}",
        "TurnHook ON_ERROR",
        "Turns that failed, by exception type.",
    ),
    MetricSpec(
        "pygents_turn_values_total",
        "counter",
        ("agent", "tool"),
        "pygents.turn.values",
        "{value}",
        "TurnHook ON_COMPLETE (a returned value), ToolHook ON_YIELD (a streamed one)",
        "Values yielded by turns run by agents.",
    ),
    MetricSpec(
        "pygents_tool_invocations_total",
        "counter",
        ("tool", "outcome"),
        "pygents.tool.invocations",
        "{invocation}",
        "ToolHook BEFORE_INVOKE, AFTER_INVOKE, ON_ERROR",
        "Tool invocations, by outcome (ok/error).",
    ),
    MetricSpec(
        "pygents_tool_duration_seconds",
        "histogram",
        ("tool",),
        "pygents.tool.duration",
        "s",
        "ToolHook BEFORE_INVOKE → AFTER_INVOKE / ON_ERROR",
        "Tool invocation duration.",
    ),
    MetricSpec(
        "pygents_agent_turns_enqueued_total",
        "counter",
        ("agent",),
        "pygents.agent.turns_enqueued",
        "{turn}",
        "`put()` adds a turn to the queue",
        "Turns put on an agent's queue.",
    ),
    MetricSpec(
        "pygents_agent_queue_depth",
        "gauge",
        ("agent",),
        "pygents.agent.queue_depth",
        "{turn}",
        "`put()`, ON_RUN_START (queue length read at collection)",
        "Turns waiting in an agent's queue.",
    ),
    MetricSpec(
        "pygents_agent_running",
        "gauge",
        ("agent",),
        "pygents.agent.running",
        "{agent}",
        "AgentHook ON_RUN_START, ON_RUN_END",
        "1 while the agent's run loop is active.",
    ),
    MetricSpec(
        "pygents_agent_busy_seconds_total",
        "counter",
        ("agent",),
        "pygents.agent.busy",
        "s",
        "AgentHook ON_RUN_START → ON_RUN_END",
        "Seconds agents' run loops have been active, up to the moment of collection.",
    ),
    MetricSpec(
        "pygents_agent_paused",
        "gauge",
        ("agent",),
        "pygents.agent.paused",
        "{agent}",
        "AgentHook ON_PAUSE, ON_RESUME; read from the agent at collection",
        "1 while the agent is paused.",
    ),
    MetricSpec(
        "pygents_context_queue_items",
        "gauge",
        ("owner",),
        "pygents.context_queue.items",
        "{item}",
        "ContextQueueHook AFTER_APPEND, AFTER_CLEAR, ON_EVICT; an agent's read at collection",
        "Items in a context queue, by owner.",
    ),
    MetricSpec(
        "pygents_context_queue_evictions_total",
        "counter",
        ("owner",),
        "pygents.context_queue.evictions",
        "{item}",
        "ContextQueueHook ON_EVICT",
        "Items evicted from context queues.",
    ),
    MetricSpec(
        "pygents_context_pool_items",
        "gauge",
        ("owner",),
        "pygents.context_pool.items",
        "{item}",
        "ContextPoolHook AFTER_ADD, AFTER_REMOVE, AFTER_CLEAR, ON_EVICT;"
        " an agent's read at collection",
        "Items in a context pool, by owner.",
    ),
    MetricSpec(
        "pygents_context_pool_evictions_total",
        "counter",
        ("owner",),
        "pygents.context_pool.evictions",
        "{item}",
        "ContextPoolHook ON_EVICT",
        "Items evicted from context pools.",
    ),
    MetricSpec(
        "pygents_turn_queue_wait_seconds",
        "histogram",
        ("agent",),
        "pygents.turn.queue_wait",
        "s",
        "`put()` → TurnHook BEFORE_RUN",
        "Time a turn waited in the queue before running.",
    ),
)

#: Prometheus histogram buckets: 1 ms to 10 min.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

#: The OpenTelemetry attribute key of each Prometheus label. The standard OpenTelemetry ->
#: Prometheus translation (the official exporter, OTLP into Prometheus) replaces every character
#: that is not a letter or digit with ``_``, so these keys come out as exactly the labels above:
#: ``error.type`` (the semantic-conventions key) becomes ``error_type``; the others are already
#: label names. Keys under a namespace (``gen_ai.agent.name``) would become ``gen_ai_agent_name``
#: and miss every dashboard query.
OTEL_ATTRIBUTE_FOR_LABEL = {
    "agent": "agent",
    "tool": "tool",
    "stop_reason": "stop_reason",
    "error_type": ERROR_TYPE,
    "outcome": "outcome",
    "owner": "owner",
}
