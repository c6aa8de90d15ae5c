"""Notifications for people who are away: one email digest per conversation per delay window, and Web Push.

Runs in the lead bridge worker beside request handling, on its own connection:
it watches `message.created` on `chat/conversations/+/messages` (from MQTT and
REST sends alike). For each recipient and conversation the first unseen message
opens a window of MQCHAT_NOTIFY_DELAY_MS; when it closes, if the recipient has
no connected device, has not read those messages and has not muted the conversation, they get one email (unless
they turned email off: the newest messages in text and HTML, with a link that
opens the conversation in the web client) and one push per browser. Failures are retried with
backoff and never touch message delivery. Pending windows live in memory: a
bridge restart forgets them (the messages themselves are safe in history).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import aiomqtt
from beanie import PydanticObjectId

from bridge import layout
from core import metrics, topics
from core.documents import Conversation, ReadState, User
from core.mail import Digest, DigestLine, cut, digest_email, send_email
from core.mqtt import service_client
from core.mqtt.endpoints import Endpoints
from core.services import member_settings
from core.services.push import PushSender
from core.settings import Settings

log = logging.getLogger("mqchat.bridge.notifier")

MESSAGES = f"{topics.ROOT}/conversations/+/messages"
RETRY_DELAYS = (1.0, 5.0, 30.0)
SNIPPET = 140
# The web client's deep links (api/client/app.js reads them after sign-in too).
UNSUBSCRIBE_PATH = "/client/#/settings/email"


def client_link(conversation_id: str) -> str:
    """The path that opens a conversation in the web client."""
    return f"/client/#/c/{conversation_id}"


@dataclass
class Window:
    """Messages one recipient has not seen in one conversation, collected during the delay."""

    messages: list[dict] = field(default_factory=list)


class Notifier:
    """Schedules and sends digests; `enabled` is False when neither SMTP nor VAPID is configured."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._windows: dict[tuple[str, str], Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._push = PushSender(settings) if settings.push_enabled else None
        self.enabled = settings.email_enabled or self._push is not None

    def describe(self) -> dict[str, bool]:
        return {"email": self._settings.email_enabled, "push": self._push is not None}

    async def run(self) -> None:
        """Watch new messages until cancelled, reconnecting with backoff."""
        backoff = 0.5
        instance = f"notifier-{self._settings.bridge_instance}"
        endpoints = Endpoints(self._settings, instance)
        while True:
            try:
                async with service_client(self._settings, layout.ACCOUNT, instance, address=endpoints.current) as client:
                    await client.subscribe(MESSAGES, qos=1)
                    backoff = 0.5
                    async for message in client.messages:
                        await self._observe(bytes(message.payload or b""))
            except aiomqtt.MqttError as exc:
                log.warning("notifier.disconnected", extra={"error": str(exc), "retry_in": backoff, "broker": endpoints.current})
                endpoints.failed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _observe(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            message = event["message"]
            if event.get("type") != "message.created":
                return
            conversation = await Conversation.get(PydanticObjectId(message["conversation_id"]))
        except (ValueError, KeyError, TypeError):
            return
        if conversation is None:
            return
        for user_id in conversation.participant_ids:
            if user_id == message["sender_id"]:
                continue
            key = (user_id, str(conversation.id))
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = Window()
                metrics.NOTIFICATIONS_PENDING.set(len(self._windows))
                self._spawn(self._close_window(key, conversation))
            window.messages.append(message)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_window(self, key: tuple[str, str], conversation: Conversation) -> None:
        await asyncio.sleep(self._settings.notify_delay)
        window = self._windows.pop(key)
        metrics.NOTIFICATIONS_PENDING.set(len(self._windows))
        user_id, conversation_id = key
        try:
            user = await User.get(PydanticObjectId(user_id))
            if user is None or not user.active or user.presence_status != "offline":
                return
            settings = await member_settings.of_member(conversation_id, user_id)
            if settings is not None and settings.muted:
                return
            state = await ReadState.get(f"{conversation_id}:{user_id}")
            unread = [m for m in window.messages if m["seq"] > (state.last_read_seq if state else 0)]
            if unread:
                await self._notify(user, conversation, unread)
        except Exception:
            log.exception("notifier.window_failed", extra={"user_id": user_id, "conversation_id": conversation_id})

    async def _notify(self, user: User, conversation: Conversation, unread: list[dict]) -> None:
        senders = await _names({m["sender_id"] for m in unread})
        about = conversation.title or (conversation.context.title if conversation.context else None)
        who = ", ".join(sorted(senders.values()))
        subject = f"{len(unread)} new message{'s' if len(unread) > 1 else ''} from {who}" + (f" in {about}" if about else "")
        digest = [DigestLine(senders.get(m["sender_id"], "someone"), m["body"] or "[attachment]") for m in unread]
        cid = str(conversation.id)
        path = client_link(cid)
        address = user.contact_email
        if self._settings.email_enabled and user.email_notifications and address:
            mail = digest_email(self._settings, Digest(
                to=address, username=user.username, subject=subject, conversation_id=cid, lines=digest,
                link=f"{self._settings.api_base_url}{path}", unsubscribe=f"{self._settings.api_base_url}{UNSUBSCRIBE_PATH}",
            ))  # fmt: skip
            self._spawn(_with_retries("email", lambda: send_email(self._settings, mail), user_id=str(user.id)))
        if self._push is not None:
            last = digest[-1]
            payload = {"type": "message.digest", "conversation_id": cid, "title": subject,
                       "body": f"{last.sender}: {cut(last.text, SNIPPET)}", "count": len(unread), "url": path}  # fmt: skip
            await self._push_each(self._push, user, payload)

    async def _push_each(self, push: PushSender, user: User, payload: dict[str, object]) -> None:
        """One push per browser, each retried on its own: a dead one never holds back the others."""
        for subscription in await push.subscriptions(str(user.id)):
            context = {"user_id": str(user.id), "subscription_id": str(subscription.id)}
            self._spawn(_with_retries("push", partial(push.send_to, subscription, payload), **context))


async def _names(user_ids: set[str]) -> dict[str, str]:
    users = await asyncio.gather(*(User.get(PydanticObjectId(uid)) for uid in user_ids if topics.is_object_id(uid)))
    return {str(u.id): u.username for u in users if u is not None}


async def _with_retries(channel: str, send: Callable[[], Awaitable[object]], **context: str) -> None:
    """Send, retrying with backoff; `send` returning False means the recipient is gone for good (an expired push
    subscription, already deleted): nothing is sent and nothing retried."""
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
        await asyncio.sleep(delay)
        try:
            if await send() is False:
                log.info("notifier.recipient_gone", extra={"channel": channel, **context})
                metrics.NOTIFICATIONS.labels(channel, "gone").inc()
                return
            log.info("notifier.sent", extra={"channel": channel, **context})
            metrics.NOTIFICATIONS.labels(channel, "sent").inc()
            return
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then given up with a log line
            log.warning("notifier.send_failed", extra={"channel": channel, "attempt": attempt + 1, "error": repr(exc), **context})
            metrics.NOTIFICATIONS.labels(channel, "failed").inc()
    log.error("notifier.gave_up", extra={"channel": channel, **context})
    metrics.NOTIFICATIONS.labels(channel, "gave_up").inc()
