"""Reports: users flag a message or a user; admins work through the queue and resolve each with a note.

A reported message is copied into its report as it was (body, attachments' descriptions,
author), so the evidence stays although its author edits or deletes it. A reporter's second
report of the same thing while the first is open answers the open one.
"""

from __future__ import annotations

from beanie import PydanticObjectId

from core import topics
from core.clock import iso, iso_from_ms, to_ms, utcnow
from core.documents import SYSTEM_SENDER, Report, ReportedMessage, User
from core.errors import Conflict, InvalidInput, NotFound
from core.payloads import ReportedMessageOut, ReportOut
from core.services import attachments
from core.services.lookup import get_by_id
from core.services.messages import get_message_for_member
from core.services.users import find_user

MAX_LIST = 100


async def report(reporter: User, reason: str, message_id: str | None, user_id: str | None) -> tuple[ReportOut, bool]:
    """File a report of a message (of a conversation the reporter belongs to) or of a user; (report, new)."""
    reporter_id = str(reporter.id)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason must not be blank")
    if (message_id is None) == (user_id is None):
        raise InvalidInput("report either a message_id or a user_id")
    record = await (_of_message(reporter_id, message_id) if message_id else _of_user(reporter_id, user_id or ""))
    existing = await Report.find_one(
        {"reporter_id": reporter_id, "status": "open", "user_id": record.user_id, "message_id": {"$eq": record.message_id}}
    )
    if existing is not None:
        return report_out(existing), False
    now = utcnow()
    record.reason, record.created_at, record.created_ms = reason, now, to_ms(now)
    await record.insert()
    return report_out(record), True


async def _of_message(reporter_id: str, message_id: str) -> Report:
    message, _ = await get_message_for_member(message_id, reporter_id)
    if message.sender_id == reporter_id:
        raise InvalidInput("you cannot report your own message")
    if message.sender_id == SYSTEM_SENDER:
        raise InvalidInput("system messages come from the platform and cannot be reported")
    if message.deleted:
        raise Conflict("the message was deleted")
    snapshot = ReportedMessage(sender_id=message.sender_id, seq=message.seq, kind=message.kind, body=message.body,
                               attachments=list(message.attachments), created_at=message.created_at)  # fmt: skip
    return Report(reporter_id=reporter_id, user_id=message.sender_id, message_id=message_id,
                  conversation_id=message.conversation_id, message=snapshot, reason="")  # fmt: skip


async def _of_user(reporter_id: str, user_id: str) -> Report:
    if user_id == reporter_id:
        raise InvalidInput("you cannot report yourself")
    if await find_user(user_id) is None:
        raise NotFound("user not found")
    return Report(reporter_id=reporter_id, user_id=user_id, reason="")


async def queue(status: str | None, user_id: str | None, limit: int) -> list[ReportOut]:
    """Reports oldest first (a queue), optionally only `open` or `resolved` ones, or those about one user."""
    query = {"status": status} if status else {}
    if user_id:
        query["user_id"] = user_id
    found = await Report.find(query).sort([("created_ms", 1)]).limit(max(1, min(limit, MAX_LIST))).to_list()
    return [report_out(record) for record in found]


async def resolve(report_id: str, admin: User, note: str) -> ReportOut:
    """Close an open report with a note; NotFound for an unknown id, Conflict if already resolved."""
    if not topics.is_object_id(report_id):
        raise NotFound("report not found")
    result = await Report.get_pymongo_collection().update_one(
        {"_id": PydanticObjectId(report_id), "status": "open"},
        {"$set": {"status": "resolved", "resolution_note": note.strip(), "resolved_by": str(admin.id),
                  "resolved_ms": to_ms(utcnow())}},
    )  # fmt: skip
    record = await get_by_id(Report, report_id)
    if record is None:
        raise NotFound("report not found")
    if result.modified_count == 0:
        raise Conflict("the report is already resolved")
    return report_out(record)


def report_out(record: Report) -> ReportOut:
    shown = record.message
    return ReportOut(
        id=str(record.id),
        reporter_id=record.reporter_id,
        user_id=record.user_id,
        message_id=record.message_id,
        conversation_id=record.conversation_id,
        message=ReportedMessageOut(
            sender_id=shown.sender_id, seq=shown.seq, kind=shown.kind, body=shown.body,
            attachments=[attachments.attachment_out(ref) for ref in shown.attachments],
            created_at=iso(shown.created_at) or "",
        ) if shown else None,
        reason=record.reason,
        status=record.status,
        created_at=iso(record.created_at) or "",
        resolution_note=record.resolution_note,
        resolved_by=record.resolved_by or None,
        resolved_at=iso_from_ms(record.resolved_ms) if record.resolved_ms else None,
    )  # fmt: skip
