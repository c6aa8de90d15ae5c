"""A hypothesis-driven MQTT fuzzer: random and mutated requests from a signed-in client.

Afterwards the bridge must still serve requests, nothing may be stored outside
the fuzzer's own conversation, and no event may reach a user who shares no
conversation with the fuzzer.
"""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import topics
from tests.support import System, device, open_conversation, signup, user_client

CASES = 150
ACTIONS = ["send", "edit", "delete", "read", "typing", "presence", "nope", "send/extra", ""]
FIELDS = ["conversation_id", "client_msg_id", "body", "kind", "attachment_ids", "reply_to", "message_id", "typing", "status"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
operators = st.dictionaries(st.sampled_from(["$ne", "$gt", "$where", "$regex", "$in"]), json_values, min_size=1, max_size=2)


def cases(own: str, foreign: str, own_conversation: str, foreign_conversation: str) -> list[tuple[str, bytes]]:
    """Generate (topic, payload) pairs with hypothesis (deterministic, bounded)."""
    found: list[tuple[str, bytes]] = []
    ids = st.sampled_from([own_conversation, foreign_conversation, "0" * 24, "zz", ""])
    requests = st.fixed_dictionaries(
        {"conversation_id": ids | operators, "client_msg_id": st.text(max_size=40) | operators, "body": st.text(max_size=200) | json_values},
        optional={field: json_values | operators | ids for field in FIELDS[3:]},
    )
    payloads = (
        st.binary(max_size=300)
        | requests.map(lambda r: json.dumps(r).encode())
        | st.dictionaries(st.sampled_from(FIELDS), json_values | operators, max_size=6).map(lambda r: json.dumps(r).encode())
    )
    level = st.text(alphabet=st.characters(blacklist_characters="+#/\x00", blacklist_categories=("Cs",)), max_size=12)
    topics_ = (
        st.sampled_from(ACTIONS).map(lambda a: f"chat/users/{own}/outbox/{a}")
        | st.sampled_from(ACTIONS).map(lambda a: f"chat/users/{foreign}/outbox/{a}")
        | st.lists(level, min_size=1, max_size=6).map("/".join)
        | st.just(topics.conversation(foreign_conversation, "messages"))
        | st.just(topics.user_inbox(foreign))
    )

    @settings(max_examples=CASES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(topics_.filter(bool), payloads)
    def collect(topic: str, payload: bytes) -> None:
        found.append((topic, payload))

    collect()
    return found


async def test_fuzzed_requests_leave_others_untouched(system: System, api: httpx.AsyncClient) -> None:
    fuzzer, partner, bob, carol = [await signup(api) for _ in range(4)]
    own_conversation = (await open_conversation(api, fuzzer, partner))["id"]
    foreign_conversation = (await open_conversation(api, bob, carol))["id"]
    generated = cases(fuzzer.id, bob.id, own_conversation, foreign_conversation)
    assert len(generated) == CASES

    async with device(system, bob, "watch", topics.conversation(foreign_conversation, "messages")) as bystander:
        client = user_client(system, fuzzer, "fuzz")
        for topic, payload in generated:
            try:
                async with client:
                    await client.publish(topic, payload, qos=1, timeout=5)
            except (aiomqtt.MqttError, ValueError):
                pass  # the broker may end a connection over a bad packet; reconnect for the next one
            client = user_client(system, fuzzer, "fuzz")
        async with device(system, fuzzer, "check") as check:  # the bridge still serves requests
            request = {"conversation_id": own_conversation, "client_msg_id": "after-fuzz", "body": "still fine"}
            await check.client.publish(topics.user_outbox(fuzzer.id, "send"), json.dumps(request), qos=1)
            acks = await check.wait_for(1, "message.created", timeout=30)
        assert any(a["message"]["client_msg_id"] == "after-fuzz" for a in acks)
        await asyncio.sleep(1.0)
        assert bystander.messages == [], "nothing reached a user who shares no conversation with the fuzzer"

    foreign = (await api.get(f"/api/conversations/{foreign_conversation}/messages", headers=bob.headers)).json()["items"]
    assert foreign == []
    own = (await api.get(f"/api/conversations/{own_conversation}/messages", params={"limit": 100}, headers=partner.headers)).json()
    assert all(m["sender_id"] == fuzzer.id and isinstance(m["body"], str) for m in own["items"])
