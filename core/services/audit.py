"""The admin audit log: every admin action on users, API keys and webhooks, newest first.

Callers record after the action succeeded, with the actor's id (`cli` for the
`mqchat` command), a dotted action name, what it touched and a few short details.
"""

from __future__ import annotations

from core.admin_payloads import AuditEntryOut
from core.clock import iso
from core.documents import AuditEntry
from core.services import counters

CLI_ACTOR = "cli"
MAX_PAGE = 100
MAX_DETAIL = 500


async def record(actor_id: str, action: str, target_type: str, target_id: str, **details: str) -> None:
    """Append one entry (details are cut to MAX_DETAIL characters: a log line, not a copy of the data)."""
    await AuditEntry(
        seq=await counters.next_value("audit"), actor_id=actor_id, action=action, target_type=target_type,
        target_id=target_id, details={key: value[:MAX_DETAIL] for key, value in details.items()},
    ).insert()  # fmt: skip


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=str(entry.id), seq=entry.seq, at=iso(entry.at) or "", actor_id=entry.actor_id, action=entry.action,
        target_type=entry.target_type, target_id=entry.target_id, details=entry.details,
    )  # fmt: skip


async def page(
    before: int | None, limit: int | None, action: str | None = None, actor_id: str | None = None, target_id: str | None = None
) -> tuple[list[AuditEntryOut], int | None]:
    """Entries newest first, older than `before` (a `seq`), optionally of one action, actor or target."""
    query: dict[str, object] = {}
    for field, value in (("action", action), ("actor_id", actor_id), ("target_id", target_id)):
        if value is not None:
            query[field] = value
    if before is not None:
        query["seq"] = {"$lt": before}
    size = max(1, min(limit or 50, MAX_PAGE))
    found = await AuditEntry.find(query).sort([("seq", -1)]).limit(size + 1).to_list()
    return [entry_out(entry) for entry in found[:size]], found[size - 1].seq if len(found) > size else None
