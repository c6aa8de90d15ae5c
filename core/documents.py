"""Beanie documents: what mqchat stores, with its indexes declared next to the data.

Store-compatibility rules (docs/store.md): references to other documents are
24-hex strings, never ObjectIds or `Link`s; datetimes and bools are only written
in whole documents (insert/replace); partial updates `$set` strings and ints
(`*_ms` fields are epoch milliseconds) or `$inc`/`$addToSet`/`$pull` scalars.
tests/test_store_conformance.py pins every shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel

from core.clock import utcnow
from core.roles import Role


class User(Document):
    """A person who chats: customer, merchant, designer, support agent or admin.

    `email` is the unique sign-in key: the lower-cased address of a password account,
    or `platform <issuer> <external id>` for an account of the host platform (not an
    address: it can never be typed into a password login; core.services.platform_users).
    A platform account keeps the platform's address in `platform_email` and has no
    password (`password_hash` is empty).
    """

    email: str
    username: str
    role: Role
    password_hash: str
    external_id: str | None = None
    platform_email: str | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    presence_status: str = "offline"
    last_seen_ms: int | None = None
    # what a staff member chose (core.services.availability): online | busy | offline
    availability: str = "online"
    email_notifications: bool = True
    # bumped ($inc) by logout, password change and disabling: older tokens stop working
    token_version: int = 0
    erased_at: datetime | None = None  # set by erasure (core.services.data_rights): the profile is anonymised

    @property
    def is_platform_user(self) -> bool:
        """True for an account provisioned from the host platform (it signs in there, not with a password)."""
        return self.external_id is not None

    @property
    def contact_email(self) -> str | None:
        """Where notifications go: the platform's address for platform accounts, nowhere for an erased one."""
        if self.erased_at is not None:
            return None
        return self.platform_email if self.is_platform_user else self.email

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", ASCENDING)], name="users_email_unique", unique=True),
            IndexModel([("username", ASCENDING)], name="users_username"),
            IndexModel([("role", ASCENDING)], name="users_role"),
            IndexModel([("presence_status", ASCENDING)], name="users_presence"),
        ]


class ConversationContext(BaseModel):
    """What a conversation is about: a product, an order or a listing of the shop."""

    type: Literal["product", "order", "listing"]
    id: str
    title: str


def direct_key_prefix(a: str, b: str) -> str:
    """The start of the `unique_key` of every direct conversation of the pair `a`, `b` (one per context)."""
    low, high = sorted((a, b))
    return f"direct:{low}:{high}:"


class Conversation(Document):
    """A direct (two people) or group conversation."""

    kind: Literal["direct", "group"]
    title: str | None = None
    context: ConversationContext | None = None
    participant_ids: list[str]
    created_by: str
    # "direct:<a>:<b>:<context>" (a < b, `direct_key_prefix`) makes a direct conversation unique per pair and context.
    unique_key: str
    created_at: datetime = Field(default_factory=utcnow)
    last_seq: int = 0
    updated_ms: int = 0
    # set for a support ticket's conversation: its members follow the ticket's assignment
    ticket_id: str | None = None

    class Settings:
        name = "conversations"
        indexes = [
            IndexModel([("unique_key", ASCENDING)], name="conversations_unique_key", unique=True),
            IndexModel([("participant_ids", ASCENDING), ("updated_ms", DESCENDING)], name="conversations_member_activity"),
        ]


class AttachmentRef(BaseModel):
    """What a message keeps of an attachment (the file itself is in GridFS, bucket `attachments`)."""

    id: str
    filename: str
    content_type: str
    size: int
    kind: Literal["image", "file"]


SYSTEM_SENDER = "system"  # the stored sender of system messages (never a user id: those are 24-hex)


class Message(Document):
    """One message of a conversation, numbered by `seq` (1, 2, 3... without gaps)."""

    conversation_id: str
    seq: int
    sender_id: str
    client_msg_id: str
    kind: Literal["text", "image", "file", "system"] = "text"  # "system": posted by the platform, sender SYSTEM_SENDER
    body: str
    attachment_ids: list[str] = Field(default_factory=list)
    attachments: list[AttachmentRef] = Field(default_factory=list)
    reply_to: str | None = None
    reply_to_seq: int | None = None  # the quoted message's seq: previews of a page are one query per conversation
    created_at: datetime = Field(default_factory=utcnow)
    edited_at: datetime | None = None
    deleted: bool = False
    # 0 until the search indexer (core.services.search.indexer) has written its MessageWords; set to 0 again
    # by an edit or a delete. Sending does no search work: the text index is on `message_words`.
    search_indexed: int = 0
    # 0 when sent, 1 once first reacted to: a history page looks up the reactions of messages not at 0 only.
    # None (absent) in messages stored before the flag existed, whose reactions are always looked up.
    reacted: int | None = None

    def stored_form(self) -> dict[str, Any]:
        """The document as Beanie would store it, for bulk inserts on the hot path.

        pydantic's dump is ~8x cheaper than Beanie's encoder and gives the same
        document for these field types (tests/test_store_conformance.py checks it).
        """
        return self.model_dump(by_alias=True, exclude={"revision_id"})

    class Settings:
        name = "messages"
        indexes = [
            # claiming a seq is inserting the message: no counter that a crash could skip
            IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], name="messages_conversation_seq", unique=True),
            IndexModel(
                [("conversation_id", ASCENDING), ("sender_id", ASCENDING), ("client_msg_id", ASCENDING)],
                name="messages_idempotency",
                unique=True,
            ),
            # compound on purpose: nx-27017's find() misses documents through a single-field
            # index on an array (docs/store.md); this one also serves MongoDB
            IndexModel([("attachment_ids", ASCENDING), ("conversation_id", ASCENDING)], name="messages_attachments"),
            IndexModel([("search_indexed", ASCENDING)], name="messages_search_pending"),
        ]


class MessageWords(Document):
    """What message search finds: a message's folded words (core.services.search.folding.index_terms),
    written by the search indexer after the message is stored, removed once it is deleted.
    `id` is the message id; the text index (MESSAGE_SEARCH_INDEX) is created by core.db."""

    id: str  # type: ignore[assignment]
    conversation_id: str
    seq: int
    body: str
    search_text: str

    class Settings:
        name = "message_words"


# Message search's text index; "none": no stemming or stop words (any language), the terms are folded
# by mqchat (docs/store.md). Not declared to Beanie: nx-27017 cannot create it twice (core.db).
MESSAGE_SEARCH_INDEX = IndexModel([("search_text", TEXT)], name="message_words_text", default_language="none")


class ReadState(Document):
    """How far one member has read one conversation (a watermark). `id` is `<conversation>:<user>`."""

    id: str  # type: ignore[assignment]
    conversation_id: str
    user_id: str
    last_read_seq: int
    message_id: str
    at_ms: int

    class Settings:
        name = "read_states"
        indexes = [
            IndexModel([("conversation_id", ASCENDING)], name="read_states_conversation"),
            IndexModel([("user_id", ASCENDING)], name="read_states_user"),
        ]


TicketStatus = Literal["open", "assigned", "in_progress", "resolved", "closed"]


class Ticket(Document):
    """A support request; `status` follows the state machine of core.services.tickets."""

    number: int
    customer_id: str
    assignee_id: str | None = None
    subject: str
    description: str
    category: str
    priority: str
    order_id: str | None = None
    status: TicketStatus = "open"
    conversation_id: str
    created_at: datetime = Field(default_factory=utcnow)
    # epoch-ms twins of the times reports bucket by: nx-27017's aggregation cannot compute on datetimes
    created_ms: int = 0
    updated_ms: int = 0
    assigned_ms: int | None = None
    first_response_ms: int | None = None
    resolved_ms: int | None = None  # the latest resolution; cleared when the ticket is reopened
    held_until_ms: int = 0  # an auto-assigner holds the open ticket until then (core.services.tickets)
    team_id: str | None = None  # the team whose queue it is in (core.services.teams); None: every agent's
    escalated_ms: int | None = None  # when it waited longer than its team's threshold without an answer
    # the desk counters (core.services.rollups): the state last counted (JSON) and the changes not counted yet
    rollup: str = ""
    rollup_due: int = 1

    class Settings:
        name = "tickets"
        indexes = [
            IndexModel([("number", ASCENDING)], name="tickets_number_unique", unique=True),
            IndexModel([("status", ASCENDING), ("number", ASCENDING)], name="tickets_status_number"),
            IndexModel([("customer_id", ASCENDING), ("number", DESCENDING)], name="tickets_customer"),
            IndexModel([("assignee_id", ASCENDING), ("status", ASCENDING)], name="tickets_assignee_status"),
            # the reports' time ranges (core.services.analytics)
            IndexModel([("created_ms", ASCENDING)], name="tickets_created"),
            IndexModel([("first_response_ms", ASCENDING)], name="tickets_first_response"),
            IndexModel([("resolved_ms", ASCENDING)], name="tickets_resolved"),
            IndexModel([("rollup_due", ASCENDING)], name="tickets_rollup_due"),
        ]


class TicketEvent(Document):
    """One entry of a ticket's history: a status it reached, who caused it and when."""

    ticket_id: str
    status: TicketStatus
    by: str
    assignee_id: str | None = None
    at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "ticket_events"
        indexes = [IndexModel([("ticket_id", ASCENDING), ("at", ASCENDING)], name="ticket_events_ticket")]


class Team(Document):
    """A group of agents (shipping, returns, payments...) with its own queue; leads may reassign its tickets.

    Members change by `$addToSet`/`$pull`. `escalate_after_seconds` 0 means MQCHAT_ESCALATE_AFTER.
    """

    name: str
    name_key: str  # the lower-cased name: team names are unique regardless of case
    description: str = ""
    member_ids: list[str] = Field(default_factory=list)
    lead_ids: list[str] = Field(default_factory=list)
    escalate_after_seconds: int = 0
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "teams"
        indexes = [IndexModel([("name_key", ASCENDING)], name="teams_name_unique", unique=True)]


class TicketRouting(Document):
    """Which team a ticket's category goes to; one document (`id` "routing"), replaced whole."""

    id: str  # type: ignore[assignment]
    routes: dict[str, str] = Field(default_factory=dict)  # category -> team id
    default_team_id: str | None = None  # categories without a route; None: no team (every agent)

    class Settings:
        name = "ticket_routing"


class CannedResponse(Document):
    """A saved reply an agent inserts with `/short_code`: a team's (`team_id`) or one agent's own (`owner_id`).

    `scope` is `team:<id>` or `user:<id>`; a short code is unique within its scope.
    """

    short_code: str
    content: str
    scope: str
    team_id: str | None = None
    owner_id: str | None = None
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_ms: int = 0

    class Settings:
        name = "canned_responses"
        indexes = [IndexModel([("scope", ASCENDING), ("short_code", ASCENDING)], name="canned_scope_code_unique", unique=True)]


class CsatRating(Document):
    """A customer's satisfaction rating of a resolved ticket; `id` is the ticket id (one answer per ticket)."""

    id: str  # type: ignore[assignment]
    ticket_id: str
    customer_id: str
    agent_id: str | None
    team_id: str | None
    rating: int
    comment: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    created_ms: int = 0  # created_at in epoch ms: the reports bucket by it (core.services.analytics)
    rollup_due: int = 1  # 1 until the desk counters count it (core.services.rollups)

    class Settings:
        name = "csat_ratings"
        indexes = [
            IndexModel([("agent_id", ASCENDING), ("created_at", ASCENDING)], name="csat_agent"),
            IndexModel([("team_id", ASCENDING), ("created_at", ASCENDING)], name="csat_team"),
            IndexModel([("created_at", ASCENDING)], name="csat_created"),
            IndexModel([("created_ms", ASCENDING)], name="csat_created_ms"),
            IndexModel([("rollup_due", ASCENDING)], name="csat_rollup_due"),
        ]


class AgentLoad(Document):
    """An agent's open (assigned + in_progress) tickets, claimed by compare-and-swap. `id` is the agent id."""

    id: str  # type: ignore[assignment]
    open_count: int = 0
    last_assigned_ms: int = 0

    class Settings:
        name = "agent_loads"


class RefreshToken(Document):
    """A rotating refresh token, stored as its hash. `used_ms` > 0 once exchanged; a reuse revokes the family."""

    id: str  # type: ignore[assignment]  # sha256 of the token
    user_id: str
    family: str
    version: int
    expires_ms: int
    used_ms: int = 0

    class Settings:
        name = "refresh_tokens"
        indexes = [
            IndexModel([("user_id", ASCENDING)], name="refresh_tokens_user"),
            IndexModel([("family", ASCENDING)], name="refresh_tokens_family"),
        ]


class PushSubscription(Document):
    """A browser's Web Push subscription for one user; removed when the push service says it expired."""

    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "push_subscriptions"
        indexes = [
            IndexModel([("endpoint", ASCENDING)], name="push_subscriptions_endpoint", unique=True),
            IndexModel([("user_id", ASCENDING)], name="push_subscriptions_user"),
        ]


class ApiKey(Document):
    """A key of the host platform's backend for `/api/platform/*`, stored only as its SHA-256."""

    name: str
    key_hash: str
    prefix: str  # the key's first characters, to recognise it in a list
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "api_keys"
        indexes = [IndexModel([("key_hash", ASCENDING)], name="api_keys_hash_unique", unique=True)]


class WebhookEndpoint(Document):
    """Where the platform wants events: a URL, the event types it takes and its signing secret.

    Enabled while `disabled_reason` is empty (a string, not a bool: nx-27017 keeps `$set`
    bools as ints). The sender `$inc`s `consecutive_failures` and resets it on a success.
    `enabled_at`: when it was last enabled again after being disabled (unset: enabled since
    `created_at`); it is sent the events recorded from then on.
    """

    url: str
    events: list[str]
    description: str = ""
    secret: str  # whsec_<base64>, the Standard Webhooks form
    disabled_reason: str = ""
    consecutive_failures: int = 0
    failing_since_ms: int = 0
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    enabled_at: datetime | None = None

    class Settings:
        name = "webhook_endpoints"


class WebhookEvent(Document):
    """One thing that happened, recorded before its MQTT events are published. `id` is deterministic
    (`message.created:<message id>`...), so recording it again (a redelivered request) is a no-op.

    `stream` is what it is ordered within (a conversation, a ticket); `seq`, `rank` and
    `recorded_ms` order it there. `data` is the JSON of the view the REST API returns;
    `member_ids` whose external ids the sender adds. `fanned` turns 1 once a delivery per
    matching endpoint exists. Expires (TTL) after core.services.webhook_events.RETENTION.
    """

    id: str  # type: ignore[assignment]
    type: str
    stream: str
    seq: int
    rank: int
    recorded_ms: int
    data: str
    member_ids: list[str] = Field(default_factory=list)
    fanned: int = 0
    expires_at: datetime

    class Settings:
        name = "webhook_events"
        indexes = [
            IndexModel([("fanned", ASCENDING), ("recorded_ms", ASCENDING)], name="webhook_events_unfanned"),
            IndexModel([("recorded_ms", ASCENDING)], name="webhook_events_recorded"),
            IndexModel([("expires_at", ASCENDING)], name="webhook_events_ttl", expireAfterSeconds=0),
        ]


class WebhookDelivery(Document):
    """One event for one endpoint and its attempts so far. `id` is `<endpoint id>|<event id>`.

    `next_at_ms` > 0 while there is something to do (due then); 0 once delivered or given up.
    A sender claims it by setting `held_until_ms` (a lease, like tickets' holds).
    """

    id: str  # type: ignore[assignment]
    endpoint_id: str
    event_id: str
    type: str
    stream: str
    seq: int
    rank: int
    recorded_ms: int
    status: str = "pending"  # pending | delivered | failed (the last attempt failed; retried while next_at_ms > 0)
    attempts: int = 0
    next_at_ms: int
    held_until_ms: int = 0
    last_attempt_ms: int = 0
    last_status_code: int = 0
    last_error: str = ""
    last_duration_ms: int = 0
    expires_at: datetime

    class Settings:
        name = "webhook_deliveries"
        indexes = [
            IndexModel([("endpoint_id", ASCENDING), ("next_at_ms", ASCENDING)], name="webhook_deliveries_due"),
            IndexModel([("endpoint_id", ASCENDING), ("last_attempt_ms", DESCENDING)], name="webhook_deliveries_recent"),
            IndexModel([("expires_at", ASCENDING)], name="webhook_deliveries_ttl", expireAfterSeconds=0),
        ]


class ReactionSet(Document):
    """A message's reactions: `<user id>:<emoji>` entries in the order they were added. `id` is the message id.

    Only ever changed by `$addToSet`/`$pull` of one entry (core.services.reactions), so concurrent
    reactions all count; created empty by an insert (nx-27017 drops the `$addToSet` of an upsert).
    """

    id: str  # type: ignore[assignment]
    conversation_id: str
    entries: list[str] = Field(default_factory=list)

    class Settings:
        name = "reactions"


class MemberSettings(Document):
    """One member's own view of one conversation (archived, muted). `id` is `<conversation>:<user>`.

    Written whole (replace with upsert). An archived conversation comes back when a message newer
    than `archived_seq` arrives, unless it is muted (core.services.member_settings).
    """

    id: str  # type: ignore[assignment]
    conversation_id: str
    user_id: str
    archived: bool = False
    archived_seq: int = 0
    muted: bool = False

    class Settings:
        name = "member_settings"
        indexes = [IndexModel([("user_id", ASCENDING)], name="member_settings_user")]


class Block(Document):
    """`blocker_id` blocked `blocked_id`; `id` is `<blocker>:<blocked>`.

    `enforced` is False when the blocked user is staff (agent, admin): recorded for admins,
    but staff can always reach customers (core.services.blocks).
    """

    id: str  # type: ignore[assignment]
    blocker_id: str
    blocked_id: str
    enforced: bool
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "blocks"
        indexes = [
            IndexModel([("blocker_id", ASCENDING)], name="blocks_blocker"),
            IndexModel([("created_at", DESCENDING)], name="blocks_created"),
        ]


class ReportedMessage(BaseModel):
    """A reported message as it was when reported: kept although its author may edit or delete it."""

    sender_id: str
    seq: int
    kind: str
    body: str
    attachments: list[AttachmentRef] = Field(default_factory=list)
    created_at: datetime


class Report(Document):
    """A user's report of a message or a user, for the admins' moderation queue.

    `user_id` is the reported user (a message's author); `message` the reported content as it was.
    Resolved once (`status` "open" -> "resolved", a compare-and-swap of strings and ints).
    """

    reporter_id: str
    user_id: str
    message_id: str | None = None
    conversation_id: str | None = None
    message: ReportedMessage | None = None
    reason: str
    status: Literal["open", "resolved"] = "open"
    created_at: datetime = Field(default_factory=utcnow)
    created_ms: int = 0
    resolution_note: str = ""
    resolved_by: str = ""
    resolved_ms: int = 0

    class Settings:
        name = "reports"
        indexes = [
            IndexModel([("status", ASCENDING), ("created_ms", ASCENDING)], name="reports_queue"),
            IndexModel([("reporter_id", ASCENDING), ("status", ASCENDING)], name="reports_reporter"),
        ]


class AuditEntry(Document):
    """One admin action (core.services.audit): who did what to which user, key or webhook, and when.

    `seq` numbers the log (a `counters` sequence) and is its page cursor; `details` holds short strings.
    """

    seq: int
    at: datetime = Field(default_factory=utcnow)
    actor_id: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, str] = Field(default_factory=dict)

    class Settings:
        name = "audit"
        indexes = [
            IndexModel([("seq", DESCENDING)], name="audit_seq_unique", unique=True),
            IndexModel([("target_id", ASCENDING), ("seq", DESCENDING)], name="audit_target"),
        ]


class Counter(Document):
    """A named sequence (ticket numbers, the audit log), advanced with an atomic `$inc` (core.services.counters)."""

    id: str  # type: ignore[assignment]
    value: int = 0

    class Settings:
        name = "counters"


class BridgeWorker(Document):
    """The worker count a bridge worker last started under (bridge.layout): on Mosquitto its persistent
    session's backlog was queued then, and sessions of workers beyond the current count are retired."""

    id: str  # type: ignore[assignment]  # the worker's instance, worker-<n>
    workers: int

    class Settings:
        name = "bridge_workers"


class RateWindow(Document):
    """How many actions one key took in one window of a shared rate limit (core.services.rate_windows).

    `id` is `<limit>|<key>|<window number>`; `n` grows with `$inc`; `until_ms` (epoch ms) is when the
    window stops mattering, after which it is swept (an int, not a TTL date: nx-27017 stores a `$set`
    datetime as a string, docs/store.md)."""

    id: str  # type: ignore[assignment]
    n: int = 0
    until_ms: int = 0

    class Settings:
        name = "rate_windows"
        indexes = [IndexModel([("until_ms", ASCENDING)], name="rate_windows_until")]


class DeskRollup(Document):
    """The desk's counters of one UTC day, agent and team (core.services.rollups); written only with `$inc` upserts.

    Besides these fields it holds `<measure>_t` and `<measure>_<slot>` integers (flat names: nx-27017 stores the
    dotted paths of an upsert's `$inc` as literal keys).
    """

    id: str  # type: ignore[assignment]
    day_ms: int
    agent_id: str  # "" for none
    team_id: str  # "" for none

    class Settings:
        name = "desk_rollups"
        indexes = [
            IndexModel([("day_ms", ASCENDING)], name="desk_rollups_day"),
            IndexModel([("agent_id", ASCENDING), ("day_ms", ASCENDING)], name="desk_rollups_agent"),
            IndexModel([("team_id", ASCENDING), ("day_ms", ASCENDING)], name="desk_rollups_team"),
        ]


DOCUMENT_MODELS: list[type[Document]] = [
    User, Conversation, Message, MessageWords, ReadState, Ticket, TicketEvent, AgentLoad, RefreshToken, PushSubscription, ApiKey,
    Counter, WebhookEndpoint, WebhookEvent, WebhookDelivery, ReactionSet, MemberSettings, Block, Report,
    Team, TicketRouting, CannedResponse, CsatRating, AuditEntry, RateWindow, DeskRollup, BridgeWorker,
]
