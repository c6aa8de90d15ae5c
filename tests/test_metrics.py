"""`/metrics` (issue 17, item 4): admins only, Prometheus text that the client library parses, counters that
move with MQTT traffic across processes (API, bridge, broker add up), and alert rules and a dashboard that
name only metrics it exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from core import topics
from tests.metrics_support import Samples, scrape, scrape_until, value
from tests.support import Account, System, device, open_conversation

OPS = Path(__file__).resolve().parents[1] / "docs" / "ops"
METRIC_NAME = re.compile(r"\bmqchat_[a-z0-9_]+")

def exposed_names(samples: Samples) -> set[str]:
    """Sample names and their family names (`x_bucket`, `x_count` -> `x`)."""
    names = {name for name, _ in samples}
    return names | {re.sub(r"_(bucket|count|sum|created)$", "", name) for name in names}


async def test_metrics_need_an_admin_token(api: httpx.AsyncClient, alice: Account) -> None:
    assert (await api.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", headers={"Authorization": "Bearer not-a-token"})).status_code == 401
    refused = await api.get("/metrics", headers=alice.headers)
    assert refused.status_code == 403 and "mqchat_" not in refused.text


async def test_counters_move_when_messages_are_sent_over_mqtt(
    system: System, api: httpx.AsyncClient, admin: Account, alice: Account, bob: Account
) -> None:
    _, before = await scrape(api, admin)
    conversation = await open_conversation(api, alice, bob)
    cid, sent = conversation["id"], 3
    async with device(system, alice) as alice_web, device(system, bob, "phone") as bob_phone:
        for n in range(sent):
            body = json.dumps({"conversation_id": cid, "client_msg_id": f"m-{n}", "body": f"hello {n}"}).encode()
            await alice_web.client.publish(topics.user_outbox(alice.id, "send"), body, qos=1)
        await bob_phone.wait_for(sent, "message.created")
        resent = json.dumps({"conversation_id": cid, "client_msg_id": "m-0", "body": "hello 0"}).encode()
        await alice_web.client.publish(topics.user_outbox(alice.id, "send"), resent, qos=1)
        await alice_web.wait_for(sent + 1, "message.created")

        def grew(name: str, by: float, **labels: str) -> Callable[[Samples], bool]:
            return lambda now: value(now, name, **labels) - value(before, name, **labels) >= by

        checks = {
            "outbox sends accepted": grew("mqchat_outbox_requests_total", sent, action="send", outcome="accepted"),
            "the resend counted as a duplicate": grew("mqchat_outbox_requests_total", 1, action="send", outcome="duplicate"),
            "the resend's insert refused": grew("mqchat_store_write_errors_total", 1, command="insert", error="DuplicateKey"),
            "seq collisions exposed": lambda now: ("mqchat_message_seq_collisions_total", frozenset()) in now,
            "messages stored": grew("mqchat_messages_stored_total", sent),
            "events published (sender, recipient, conversation topic)": grew("mqchat_events_published_total", 2 * sent),
            "outbox PUBLISHes received by the broker": grew("mqchat_mqtt_messages_received_total", sent + 1, kind="outbox"),
            "latency to stored": grew("mqchat_bridge_latency_seconds_count", sent + 1, stage="stored"),
            "latency to events confirmed": grew("mqchat_bridge_latency_seconds_count", sent + 1, stage="confirmed"),
            "bridge batches": grew("mqchat_bridge_batch_size_count", 1),
            "store commands timed": grew("mqchat_store_command_duration_seconds_count", 1, command="insert"),
            "the conversation's POST": grew("mqchat_http_requests_total", 1, method="POST", route="/api/conversations", status="201"),
            "HTTP latency": grew("mqchat_http_request_duration_seconds_count", 1, method="POST", route="/api/conversations"),
            "both devices connected": lambda now: value(now, "mqchat_mqtt_connected_clients") >= 2,
        }
        samples = await scrape_until(api, admin, checks)

    assert value(samples, "mqchat_bridge_connected") == 1
    collisions = value(samples, "mqchat_message_seq_collisions_total") - value(before, "mqchat_message_seq_collisions_total")
    assert collisions == 0, "the resend's refused insert is a duplicate, not a seq taken"
    assert value(samples, "mqchat_store_up") == 1 and value(samples, "mqchat_broker_up") == 1
    assert value(samples, "mqchat_mqtt_subscriptions") >= 2
    for component in ("api", "bridge", "broker"):  # every process reports its own figures
        assert value(samples, "mqchat_process_resident_memory_bytes", component=component) > 0
        assert ("mqchat_process_cpu_seconds_total", frozenset({("component", component)})) in samples
    for figure in ("mqchat_tickets_waiting", "mqchat_tickets_oldest_waiting_seconds", "mqchat_webhook_backlog"):
        assert (figure, frozenset()) in samples
    text, _ = await scrape(api, admin)
    assert alice.id not in text and bob.id not in text and cid not in text, "no ids in labels"


def rule_expressions() -> list[tuple[str, str]]:
    document = yaml.safe_load((OPS / "alerts.yml").read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert rules
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]
    return [(rule["alert"], rule["expr"]) for rule in rules]


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text())
    found = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(found) >= 10
    return found


async def test_alert_rules_and_dashboard_name_only_exposed_metrics(api: httpx.AsyncClient, admin: Account) -> None:
    _, samples = await scrape(api, admin)
    exposed = exposed_names(samples)
    for where, expression in [*rule_expressions(), *dashboard_expressions()]:
        named = set(METRIC_NAME.findall(expression))
        assert named or expression.startswith("up{"), f"{where}: names no mqchat metric"  # `up`: Prometheus's own
        assert named <= exposed, f"{where}: {sorted(named - exposed)} not exposed by /metrics"
    required = {"MqchatBridgeNotConsuming", "MqchatEndToEndLatencyHigh", "MqchatWebhookBacklogGrowing", "MqchatStoreErrors",
                "MqchatBrokerDown"}  # fmt: skip
    assert required <= {alert for alert, _ in rule_expressions()}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(["promtool", "check", "rules", str(OPS / "alerts.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
