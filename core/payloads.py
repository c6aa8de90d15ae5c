"""Wire shapes (msgspec structs) of the contract, shared by the API, the bridge and the CLI."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from core.roles import Role
from core.topics import EXTERNAL_ID_PATTERN

Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# Characters no display name may hold: control and invisible formatting ones (bidi overrides,
# zero-width characters) and line/paragraph separators; core.services.users.display_name refuses them.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


# The same as ranges of a regex character class, for the OpenAPI schema: written out rather than computed from
# all 1.1M code points at every start (a quarter of a second); tests/test_unicode_rules.py checks it against
# this Python's Unicode database (14.0).
INVISIBLE_CLASS = (
    r"\U00000000-\U0000001f\U0000007f-\U0000009f\U000000ad\U00000600-\U00000605"
    r"\U0000061c\U000006dd\U0000070f\U00000890-\U00000891"
    r"\U000008e2\U0000180e\U0000200b-\U0000200f\U00002028-\U0000202e"
    r"\U00002060-\U00002064\U00002066-\U0000206f\U0000feff\U0000fff9-\U0000fffb"
    r"\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)


# at least one visible character, none of the invisible ones (the server strips surrounding spaces)
USERNAME_PATTERN = rf"^(?=.*\S)[^{INVISIBLE_CLASS}]+$"
Username = Annotated[str, Meta(
    # the rule is checked by core.services.users.display_name, which says in plain words what is wrong;
    # the schema states it as a pattern (api.errors copies it into the OpenAPI schema)
    min_length=1, max_length=64, extra_json_schema={"pattern": USERNAME_PATTERN},
    description="A display name (not unique): no control or invisible formatting characters (Unicode Cc, Cf, Zl, Zp), "
    "such as bidi overrides or zero-width characters (400 invalid_input)",
)]
Password = Annotated[str, Meta(min_length=8, max_length=256)]
ObjectIdStr = Annotated[str, Meta(pattern=r"^[0-9a-f]{24}$")]


class ErrorDetail(Struct):
    code: str
    message: str


class ErrorResponse(Struct):
    """The contract's error shape: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class PresenceOut(Struct):
    status: str
    last_seen: str | None


class Preferences(Struct, omit_defaults=True):
    email_notifications: bool | None = None


class UserOut(Struct, omit_defaults=True):
    """A user as others see it; `email` only for the user themself and admins, `preferences` only for themself."""

    id: str
    username: str
    role: Role
    created_at: str
    presence: PresenceOut
    email: str | None = None
    preferences: Preferences | None = None
    external_id: str | None = None  # the host platform's id of a platform account
    active: bool = True  # shown only as false: a deactivated or erased account, still named in others' history


class UpdateMeRequest(Struct, forbid_unknown_fields=True):
    username: Username | None = None
    preferences: Preferences | None = None


class UserEnvelope(Struct):
    user: UserOut


class UserList(Struct):
    items: list[UserOut]


class MqttConnectInfo(Struct):
    """Everything a client needs to connect to the broker."""

    host: str
    port: int
    ws_url: str
    username: str
    password: str
    client_id_prefix: str


class AuthResponse(Struct):
    user: UserOut
    access_token: str
    expires_in: int
    mqtt: MqttConnectInfo
    refresh_token: str
    refresh_expires_in: int
    token_type: str = "bearer"


class RefreshRequest(Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=200)]


class PasswordChangeRequest(Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, Meta(max_length=256)]
    new_password: Password


class SignupRequest(Struct, forbid_unknown_fields=True):
    email: Email
    username: Username
    password: Password
    role: Role | None = None


class LoginRequest(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(max_length=254)]
    password: Annotated[str, Meta(max_length=256)]


class CreateUserRequest(Struct, forbid_unknown_fields=True):
    email: Email
    username: Username
    password: Password
    role: Role


class HealthOut(Struct):
    status: str
    store: str
    broker: str
    version: str
    restarts: dict[str, int] = {}  # components `mqchat up` restarted since it started, and how often



# --- conversations and messages -------------------------------------------------------

MAX_BODY_LENGTH = 10_000
ClientMsgId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f$]+$")]
MessageKind = Literal["text", "image", "file"]
# Checked by the service (413, not 400, above the limit); the schema says so.
MessageBody = Annotated[str, Meta(extra_json_schema={
    "description": f"at most {MAX_BODY_LENGTH:,} characters (413 payload_too_large above); not blank unless files are attached",
    "extra": {"maxLength": MAX_BODY_LENGTH},
})]


class ContextIn(Struct, forbid_unknown_fields=True):
    type: Literal["product", "order", "listing"]
    id: Annotated[str, Meta(min_length=1, max_length=128)]
    title: Annotated[str, Meta(max_length=300)] = ""


class CreateConversationRequest(Struct, forbid_unknown_fields=True):
    participant_ids: Annotated[list[ObjectIdStr], Meta(min_length=1, max_length=100)]
    kind: Literal["direct", "group"] = "direct"
    title: Annotated[str, Meta(max_length=200)] | None = None
    context: ContextIn | None = None


class AddMemberRequest(Struct, forbid_unknown_fields=True):
    user_id: ObjectIdStr


class ConversationOut(Struct):
    id: str
    kind: str
    title: str | None
    context: ContextIn | None
    participant_ids: list[str]
    created_by: str
    created_at: str
    updated_at: str
    last_message: MessageOut | None = None
    unread_count: int = 0
    archived: bool = False  # the viewer's own settings (core.services.member_settings)
    muted: bool = False


class ConversationList(Struct):
    items: list[ConversationOut]


class AttachmentOut(Struct):
    id: str
    filename: str
    content_type: str
    size: int
    url: str
    kind: str


class ReplyPreview(Struct):
    """What a reply shows of the message it quotes: the start of its body (empty once deleted)."""

    id: str
    seq: int
    sender_id: str | None
    kind: str
    body: str
    deleted: bool


class MessageOut(Struct):
    id: str
    conversation_id: str
    seq: int
    sender_id: str | None  # None for a system message (kind "system", posted by the platform)
    client_msg_id: str
    kind: str
    body: str
    attachments: list[AttachmentOut]
    reply_to: str | None
    created_at: str
    edited_at: str | None
    deleted: bool
    read_by: list[str]
    reactions: list[ReactionOut] = []  # core.services.reactions; none on a deleted message
    reply_preview: ReplyPreview | None = None  # set when reply_to is


class ReactionOut(Struct):
    """One emoji on a message: how many reacted with it and who (in the order they reacted)."""

    emoji: str
    count: int
    user_ids: list[str]


class MessagePage(Struct, omit_defaults=True):
    items: list[MessageOut]
    next_before: str | UnsetType | None = UNSET


class SnippetPart(Struct):
    """A piece of a search snippet; `hit` marks a matched word (or the matched beginning of one)."""

    text: str
    hit: bool


class SearchHit(Struct):
    message: MessageOut
    snippet: list[SnippetPart]


class SearchPage(Struct):
    items: list[SearchHit]
    next_before: str | None


class SendMessageRequest(Struct, forbid_unknown_fields=True):
    """REST body of `POST /api/conversations/{id}/messages`; the body length is checked by the service (413)."""

    body: MessageBody
    client_msg_id: ClientMsgId | None = None
    kind: MessageKind = "text"
    attachment_ids: Annotated[list[ObjectIdStr], Meta(max_length=10)] = []
    reply_to: ObjectIdStr | None = None


class EditMessageRequest(Struct, forbid_unknown_fields=True):
    body: MessageBody


class ReadRequest(Struct, forbid_unknown_fields=True):
    message_id: ObjectIdStr


Emoji = Annotated[str, Meta(min_length=1, max_length=64, description="one emoji (a single grapheme); checked by the service")]


class ReactRequest(Struct, forbid_unknown_fields=True):
    """REST body of `POST /api/messages/{id}/reactions`."""

    emoji: Emoji
    on: bool = True


class ReactionsOut(Struct):
    """A message's reactions after a change."""

    message_id: str
    conversation_id: str
    reactions: list[ReactionOut]


class ConversationSettingsRequest(Struct, forbid_unknown_fields=True):
    """`PATCH /api/conversations/{id}/settings`: the caller's own view of the conversation."""

    archived: bool | None = None
    muted: bool | None = None


class UnreadCount(Struct):
    unread_count: int


class UnreadSummary(Struct):
    total: int
    by_conversation: dict[str, int]


# --- MQTT outbox requests (chat/users/{uid}/outbox/{action}) ---------------------------


class OutboxSend(Struct, forbid_unknown_fields=True):
    conversation_id: ObjectIdStr
    client_msg_id: ClientMsgId
    body: str
    kind: MessageKind = "text"
    attachment_ids: Annotated[list[ObjectIdStr], Meta(max_length=10)] = []
    reply_to: ObjectIdStr | None = None


class OutboxEdit(Struct, forbid_unknown_fields=True):
    message_id: ObjectIdStr
    body: str


class OutboxDelete(Struct, forbid_unknown_fields=True):
    message_id: ObjectIdStr


class OutboxRead(Struct, forbid_unknown_fields=True):
    conversation_id: ObjectIdStr
    message_id: ObjectIdStr


class OutboxTyping(Struct, forbid_unknown_fields=True):
    conversation_id: ObjectIdStr
    typing: bool


class OutboxReact(Struct, forbid_unknown_fields=True):
    message_id: ObjectIdStr
    emoji: Emoji
    on: bool = True


class OutboxPresence(Struct, forbid_unknown_fields=True):
    status: Literal["online", "away", "offline"]


# --- blocks and reports ------------------------------------------------------------------

ReportReason = Annotated[str, Meta(min_length=1, max_length=1000)]


class BlockRequest(Struct, forbid_unknown_fields=True):
    user_id: ObjectIdStr


class BlockOut(Struct):
    """`enforced` is false when the blocked user is staff: recorded, but staff can still reach the blocker."""

    user_id: str
    enforced: bool
    created_at: str


class BlockList(Struct):
    items: list[BlockOut]


class AdminBlockOut(Struct):
    blocker_id: str
    blocked_id: str
    enforced: bool
    created_at: str


class AdminBlockList(Struct):
    items: list[AdminBlockOut]


class ReportRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/reports`: exactly one of `message_id` and `user_id`."""

    reason: ReportReason
    message_id: ObjectIdStr | None = None
    user_id: ObjectIdStr | None = None


class ResolveReportRequest(Struct, forbid_unknown_fields=True):
    note: Annotated[str, Meta(max_length=2000)] = ""


class ReportedMessageOut(Struct):
    sender_id: str
    seq: int
    kind: str
    body: str
    attachments: list[AttachmentOut]
    created_at: str


class ReportOut(Struct):
    id: str
    reporter_id: str
    user_id: str
    message_id: str | None
    conversation_id: str | None
    message: ReportedMessageOut | None
    reason: str
    status: str
    created_at: str
    resolution_note: str
    resolved_by: str | None
    resolved_at: str | None


class ReportList(Struct):
    items: list[ReportOut]


# --- tickets ----------------------------------------------------------------------------

TicketCategory = Literal["order", "payment", "shipping", "returns", "product", "account", "other"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
TicketStatusName = Literal["open", "assigned", "in_progress", "resolved", "closed"]


class CreateTicketRequest(Struct, forbid_unknown_fields=True):
    subject: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(min_length=1, max_length=MAX_BODY_LENGTH)]
    category: TicketCategory = "other"
    priority: TicketPriority = "normal"
    order_id: Annotated[str, Meta(min_length=1, max_length=128)] | None = None


class AssignRequest(Struct, forbid_unknown_fields=True):
    agent_id: ObjectIdStr | None = None


class StatusRequest(Struct, forbid_unknown_fields=True):
    status: TicketStatusName


class HistoryItem(Struct):
    status: str
    by: str
    at: str


class TicketOut(Struct):
    id: str
    number: int
    customer_id: str
    assignee_id: str | None
    subject: str
    description: str
    category: str
    priority: str
    order_id: str | None
    status: str
    conversation_id: str
    created_at: str
    updated_at: str
    first_response_at: str | None
    history: list[HistoryItem]
    team_id: str | None = None
    escalated: bool = False
    escalated_at: str | None = None


class TicketList(Struct):
    items: list[TicketOut]
    next_before: int | None = None


# --- support desk: teams, availability, canned responses, satisfaction ratings -------------

TeamName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")]
TeamDescription = Annotated[str, Meta(max_length=500)]
EscalateAfter = Annotated[int, Meta(ge=0, le=30 * 24 * 3600, description="seconds; 0: MQCHAT_ESCALATE_AFTER")]
Availability = Literal["online", "busy", "offline"]


class CreateTeamRequest(Struct, forbid_unknown_fields=True):
    name: TeamName
    description: TeamDescription = ""
    escalate_after_seconds: EscalateAfter = 0


class UpdateTeamRequest(Struct, forbid_unknown_fields=True):
    name: TeamName | None = None
    description: TeamDescription | None = None
    escalate_after_seconds: EscalateAfter | None = None


class TeamMemberRequest(Struct, forbid_unknown_fields=True):
    user_id: ObjectIdStr
    lead: bool = False


class AgentStatusOut(Struct):
    """A staff member's availability: what they chose, whether a device is connected, and the result."""

    user_id: str
    username: str
    availability: str  # chosen: online | busy | offline
    presence: str  # connections: online | away | offline
    status: str  # effective: offline without a connected device, else the choice


class AgentOut(Struct):
    """A staff member on the admins' desk overview: their status, role, load and teams."""

    user_id: str
    username: str
    availability: str
    presence: str
    status: str
    role: str
    open_tickets: int  # assigned + in progress: what MQCHAT_AGENT_CAPACITY limits
    team_ids: list[str]


class AgentList(Struct):
    items: list[AgentOut]
    capacity: int  # MQCHAT_AGENT_CAPACITY


class TeamOut(Struct):
    id: str
    name: str
    description: str
    member_ids: list[str]
    lead_ids: list[str]
    escalate_after_seconds: int
    created_at: str
    members: list[AgentStatusOut]


class TeamList(Struct):
    items: list[TeamOut]


class RoutingBody(Struct, forbid_unknown_fields=True):
    """Which team each ticket category goes to; other categories go to `default_team_id` (None: every agent)."""

    routes: dict[TicketCategory, ObjectIdStr] = {}
    default_team_id: ObjectIdStr | None = None


class AvailabilityRequest(Struct, forbid_unknown_fields=True):
    availability: Availability


class TicketTeamRequest(Struct, forbid_unknown_fields=True):
    team_id: ObjectIdStr | None


ShortCode = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]
CannedContent = Annotated[str, Meta(min_length=1, max_length=MAX_BODY_LENGTH)]


class CreateCannedRequest(Struct, forbid_unknown_fields=True):
    short_code: ShortCode
    content: CannedContent
    team_id: ObjectIdStr | None = None  # a team's response; without it, the caller's own


class UpdateCannedRequest(Struct, forbid_unknown_fields=True):
    short_code: ShortCode | None = None
    content: CannedContent | None = None


class CannedOut(Struct):
    id: str
    short_code: str
    content: str
    team_id: str | None
    owner_id: str | None
    created_by: str
    created_at: str
    updated_at: str
    expanded: str | None = None  # `content` with the placeholders filled from `?ticket_id=`


class CannedList(Struct):
    items: list[CannedOut]


class ExpandRequest(Struct, forbid_unknown_fields=True):
    ticket_id: ObjectIdStr
    short_code: ShortCode


class ExpandOut(Struct):
    short_code: str
    text: str


class CsatRequest(Struct, forbid_unknown_fields=True):
    # a whole number 1-5; typed as a number so that 4.0 (the same JSON Schema integer) is accepted as 4
    rating: Annotated[float, Meta(ge=1, le=5, multiple_of=1)]
    comment: Annotated[str, Meta(max_length=2000)] = ""


class CsatOut(Struct):
    ticket_id: str
    customer_id: str
    agent_id: str | None
    team_id: str | None
    rating: int
    comment: str
    created_at: str


class CsatEnvelope(Struct):
    csat: CsatOut | None  # None while the ticket is unrated


class CsatFigures(Struct):
    """Ratings of one agent or team (`id`; None: tickets without one), or of everyone."""

    id: str | None
    count: int
    average: float | None
    distribution: dict[str, int]  # "1".."5" -> count


class CsatSummary(Struct):
    overall: CsatFigures
    by_agent: list[CsatFigures]
    by_team: list[CsatFigures]


class StatsOut(Struct):
    users_by_role: dict[str, int]
    online_now: int
    conversations: int
    messages_last_24h: int
    tickets_by_status: dict[str, int]
    median_first_response_seconds: float | None
    open_backlog: int
    oldest_open_ticket_age_seconds: float | None


# --- web push ----------------------------------------------------------------------------


class PushKeys(Struct, forbid_unknown_fields=True):
    p256dh: Annotated[str, Meta(min_length=16, max_length=256, pattern=r"^[A-Za-z0-9_=-]+$")]
    auth: Annotated[str, Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_=-]+$")]


class PushSubscriptionRequest(Struct, forbid_unknown_fields=True):
    endpoint: Annotated[str, Meta(min_length=8, max_length=2048)]
    keys: PushKeys
    expirationTime: int | None = None  # noqa: N815 - the browser's PushSubscription.toJSON() field


class PushSubscriptionOut(Struct):
    id: str
    endpoint: str


class VapidKey(Struct):
    public_key: str | None


# --- platform integration (docs/integration.md) --------------------------------------------

ExternalId = Annotated[str, Meta(min_length=1, max_length=128, pattern=EXTERNAL_ID_PATTERN)]


class ExchangeRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/auth/exchange`: a JWT issued by the host platform."""

    token: Annotated[str, Meta(min_length=1, max_length=8192)]


class ApiKeyRequest(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ApiKeyOut(Struct):
    """An API key as listed: never its secret, only the first characters to recognise it by."""

    id: str
    name: str
    prefix: str
    created_at: str
    created_by: str


class ApiKeyCreated(Struct):
    """A new API key; `key` is shown this once and stored only hashed."""

    id: str
    name: str
    key: str
    prefix: str
    created_at: str


class ApiKeyList(Struct):
    items: list[ApiKeyOut]


class PlatformUserRequest(Struct, forbid_unknown_fields=True):
    """`PUT /api/platform/users/{external_id}`."""

    name: Username
    role: Role
    email: Email | None = None


class PlatformConversationRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/platform/conversations`: members are the platform's user ids."""

    members: Annotated[list[ExternalId], Meta(min_length=2, max_length=100)]
    kind: Literal["direct", "group"] = "direct"
    title: Annotated[str, Meta(max_length=200)] | None = None
    context: ContextIn | None = None


class SystemMessageRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/platform/conversations/{id}/messages`: a system message (no human sender)."""

    body: str
    client_msg_id: ClientMsgId


class PlatformTicketRequest(Struct, forbid_unknown_fields=True):
    """`POST /api/platform/tickets`: a ticket opened on behalf of a customer (a platform user id)."""

    customer: ExternalId
    subject: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(min_length=1, max_length=MAX_BODY_LENGTH)]
    category: TicketCategory = "other"
    priority: TicketPriority = "normal"
    context: ContextIn | None = None
