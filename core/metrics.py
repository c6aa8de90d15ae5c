"""Every Prometheus metric of mqchat, defined in this one place (exposed by the API at `/metrics`, api.metrics).

Under `mqchat up` each component is its own process; the supervisor points
`PROMETHEUS_MULTIPROC_DIR` at `<data dir>/metrics` for all of them (emptied at each
start), so prometheus-client writes every process's values to files there and the
API's `/metrics` adds them up (docs/operations.md). Gauges therefore say how
processes combine (`livesum`: the live processes' values added). Without that
variable (a component run alone) the metrics live in the process's memory.

Labels are bounded: route templates, actions, outcomes, command names, components;
never user, conversation or client ids. Figures read from the store when scraped
(ticket queue, webhook backlog, store and broker up) are api.metrics' job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector
from pymongo import monitoring

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
PROCESS_SAMPLE_SECONDS = 5.0

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OUTBOX_ACTIONS = frozenset({"send", "edit", "delete", "read", "typing", "react", "presence"})
STORE_COMMANDS = frozenset({
    "find", "getMore", "insert", "update", "delete", "findAndModify", "aggregate", "count", "distinct",
    "createIndexes", "listIndexes", "listCollections", "ping", "killCursors", "endSessions",
})  # fmt: skip

# HTTP (api.request_id calls `http_request` once per request)
HTTP_REQUESTS = Counter("mqchat_http_requests_total", "HTTP requests answered, by route template and status.", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "mqchat_http_request_duration_seconds", "Time to answer an HTTP request.", ["method", "route"], buckets=LATENCY_BUCKETS
)

# The bridge
OUTBOX_REQUESTS = Counter(
    "mqchat_outbox_requests_total",
    "Outbox requests handled by the bridge, by action and outcome "
    "(accepted, duplicate, refused, rate_limited, collapsed, failed).",
    ["action", "outcome"],
)
BRIDGE_LATENCY = Histogram(
    "mqchat_bridge_latency_seconds",
    "Time from a request batch's arrival at the bridge to `stored` (persisted, webhook events recorded) and to "
    "`confirmed` (its events acknowledged by the broker), per request.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
BRIDGE_BATCH = Histogram("mqchat_bridge_batch_size", "Deliveries per bridge batch.", buckets=BATCH_BUCKETS)
BRIDGE_CONNECTED = Gauge("mqchat_bridge_connected", "Bridge workers connected to the broker and consuming.", multiprocess_mode="livesum")

# Shared by the bridge and the API (REST sends)
MESSAGES_STORED = Counter("mqchat_messages_stored_total", "New chat messages stored (duplicates of a resent request not counted).")
SEQ_COLLISIONS = Counter(
    "mqchat_message_seq_collisions_total",
    "New messages whose insert was refused because their `seq` was taken (another writer, a record behind the store), "
    "each retried after the stored top.",
)
EVENTS_PUBLISHED = Counter("mqchat_events_published_total", "Events handed to the broker (by the bridge and the API).")

# The store (every process): one pymongo CommandListener
STORE_DURATION = Histogram(
    "mqchat_store_command_duration_seconds", "Store command latency, by command.", ["command"], buckets=STORE_BUCKETS
)
STORE_FAILURES = Counter(
    "mqchat_store_command_failures_total",
    "Store commands that failed, by command and error (the server's code name, or `connection`).",
    ["command", "error"],
)
STORE_WRITE_ERRORS = Counter(
    "mqchat_store_write_errors_total",
    "Writes a store command answered but refused, by command and error (an ordered insert of messages stops at a "
    "`DuplicateKey`: a resent message, or a `seq` another bridge worker took first, retried with the next number).",
    ["command", "error"],
)

# The embedded broker (broker.plugins.MetricsPlugin)
MQTT_CLIENTS = Gauge("mqchat_mqtt_connected_clients", "MQTT clients connected to the embedded broker.", multiprocess_mode="livesum")
MQTT_SESSIONS = Gauge(
    "mqchat_mqtt_sessions", "Sessions the embedded broker keeps (connected or persistent).", multiprocess_mode="livesum"
)
MQTT_SUBSCRIPTIONS = Gauge("mqchat_mqtt_subscriptions", "Subscriptions on the embedded broker.", multiprocess_mode="livesum")
MQTT_RECEIVED = Counter(
    "mqchat_mqtt_messages_received_total", "PUBLISHes the embedded broker received, by kind (outbox, presence, other).", ["kind"]
)

# Notifications (the lead bridge worker) and webhooks (its sender, or `mqchat webhooks`)
NOTIFICATIONS_PENDING = Gauge(
    "mqchat_notifications_pending", "Digest windows open (recipient x conversation) waiting to be sent.", multiprocess_mode="livesum"
)
NOTIFICATIONS = Counter(
    "mqchat_notifications_total", "Notification attempts by channel (email, push) and outcome (sent, failed, gave_up, gone).",
    ["channel", "outcome"],
)  # fmt: skip
WEBHOOK_ATTEMPTS = Counter(
    "mqchat_webhook_attempts_total", "Webhook delivery attempts by outcome (delivered, retrying, given_up).", ["outcome"]
)

# Every component's process (prometheus-client's own process collector cannot be combined across processes)
PROCESS_CPU = Counter("mqchat_process_cpu_seconds_total", "CPU time used by the component's processes.", ["component"])
PROCESS_MEMORY = Gauge(
    "mqchat_process_resident_memory_bytes", "Resident memory of the component's live processes.", ["component"],
    multiprocess_mode="livesum",
)  # fmt: skip
PROCESS_FDS = Gauge(
    "mqchat_process_open_fds", "Open file descriptors of the component's live processes.", ["component"],
    multiprocess_mode="livesum",
)  # fmt: skip

# Zero series for the small, known label sets, so that the first failure is a visible increase (and alert rules
# can refer to them before anything failed). A store failure of any command that could not reach the store:
for _command_name in sorted(STORE_COMMANDS | {"other"}):
    STORE_FAILURES.labels(_command_name, "connection")
for _outcome in ("delivered", "retrying", "given_up"):
    WEBHOOK_ATTEMPTS.labels(_outcome)
for _channel in ("email", "push"):
    for _outcome in ("sent", "failed", "gave_up", "gone"):
        NOTIFICATIONS.labels(_channel, _outcome)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request (route: the template, never the raw path)."""
    method = method if method in HTTP_METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def outbox_action(action: str) -> str:
    """The action as a label: topics are chosen by clients, so unknown ones are one value."""
    return action if action in OUTBOX_ACTIONS else "unknown"


class StoreCommands(monitoring.CommandListener):
    """Latency and failures of every store command of the process's client (core.db.init_db registers it)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        command = _command(event.command_name)
        STORE_DURATION.labels(command).observe(event.duration_micros / 1e6)
        for refused in event.reply.get("writeErrors") or ():  # an ordered insert stopped at a duplicate key
            STORE_WRITE_ERRORS.labels(command, _error_name(refused.get("code"))).inc()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        command = _command(event.command_name)
        STORE_DURATION.labels(command).observe(event.duration_micros / 1e6)
        failure = event.failure if isinstance(event.failure, dict) else {}
        error = str(failure.get("codeName") or ("connection" if not failure.get("code") else f"code_{failure['code']}"))
        STORE_FAILURES.labels(command, error[:40]).inc()


def _command(name: str) -> str:
    return name if name in STORE_COMMANDS else "other"


def _error_name(code: object) -> str:
    return "DuplicateKey" if code == 11000 else f"code_{code}"[:40]


class ProcessSampler:
    """Copies this process's CPU time, memory and open files into the component's metrics."""

    def __init__(self, component: str) -> None:
        self._component = component
        self._reader = ProcessCollector(registry=None)
        self._cpu_seen = 0.0

    def sample(self) -> None:
        figures = {sample.name: sample.value for family in self._reader.collect() for sample in family.samples}
        cpu = figures.get("process_cpu_seconds_total")
        if cpu is not None and cpu > self._cpu_seen:
            PROCESS_CPU.labels(self._component).inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu
        if "process_resident_memory_bytes" in figures:
            PROCESS_MEMORY.labels(self._component).set(figures["process_resident_memory_bytes"])
        if "process_open_fds" in figures:
            PROCESS_FDS.labels(self._component).set(figures["process_open_fds"])

    async def run(self) -> None:
        """Sample every PROCESS_SAMPLE_SECONDS until cancelled."""
        while True:
            with contextlib.suppress(OSError):  # no /proc (not Linux): nothing to report
                self.sample()
            await asyncio.sleep(PROCESS_SAMPLE_SECONDS)


def since(started: float) -> float:
    """Seconds elapsed since a `time.perf_counter()` reading."""
    return time.perf_counter() - started
