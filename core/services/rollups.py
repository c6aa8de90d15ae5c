"""The desk's counters (`desk_rollups`): what the reports sum instead of reading every ticket.

One document per (UTC day, agent, team), `_id` `"<day ms>|<agent id>|<team id>"`
("" for none), holds integer counters, each as a day total `<m>_t` and per
15-minute slot of the UTC day `<m>_<slot>` (0-95):

    o        tickets opened (at `created_ms`)
    fn, fs   tickets first answered (at `first_response_ms`), and the sum of their
             times from opening in ms
    rn, rs   tickets resolved (at `resolved_ms`), and the sum of their times from opening
    cn, cs, cg   CSAT ratings (at their `created_ms`), the sum of the ratings, how many were 4 or 5

A ticket counts for its current assignee and team, as the reports always did:
its contribution is a function of five fields (assignee, team, created, first
response, resolved). The ticket keeps the state its counters were last moved
from (`rollup`, JSON of those five) and how many changes have not been counted
yet (`rollup_due`, incremented in the same update as the change). Rolling a
ticket up is a compare-and-swap of (`rollup`, `rollup_due`) to (its state, 0),
then `$inc` of the difference between the two states: a retried or concurrent
roll-up loses the swap and counts nothing, so nothing is counted twice. A change
whose roll-up did not happen (a process stopped between the two writes) stays
due, and the bridge's sweep rolls it up. Ratings never change: they are rolled up
once (`rollup_due` 1 -> 0). Tickets and ratings stored before the counters have
neither field; `backfill` swaps them 500 at a time in one bulk write, marking its
own with a token (`rollup_by`) to know which swaps were its own.

What remains: a process stopped between the swap and the `$inc` (two consecutive
writes) loses that one change; `mqchat desk-rollups --check` finds the difference
and `--rebuild` recounts (docs/operations.md).
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from core.clock import to_ms
from core.documents import CsatRating, DeskRollup, Ticket

DAY_MS = 86_400_000
SLOT_MS = 15 * 60_000  # every time zone in use today is a whole number of quarter hours from UTC
SLOTS = DAY_MS // SLOT_MS
TOTAL = "t"
SATISFIED_FROM = 4
BATCH = 500
STATE_FIELDS = ("assignee_id", "team_id", "created_ms", "first_response_ms", "resolved_ms")
TICKET_FIELDS = {**dict.fromkeys(STATE_FIELDS, 1), "created_at": 1, "rollup": 1, "rollup_due": 1}
RATING_FIELDS = {"agent_id": 1, "team_id": 1, "rating": 1, "created_ms": 1, "created_at": 1, "rollup_due": 1}

Cell = tuple[int, str, str]  # (UTC day start ms, agent id or "", team id or "")
Increments = dict[Cell, dict[str, int]]


def counters() -> AsyncCollection:
    return DeskRollup.get_pymongo_collection()


def field(measure: str, slot: int | None) -> str:
    """The counter of a measure for one slot of the day, or its day total (slot None)."""
    return f"{measure}_{TOTAL if slot is None else slot}"


def _add(increments: Increments, at_ms: int, agent: str | None, team: str | None, values: dict[str, int], sign: int) -> None:
    day = at_ms - at_ms % DAY_MS
    slot = (at_ms - day) // SLOT_MS
    cell = increments[(day, agent or "", team or "")]
    for measure, value in values.items():
        for name in (field(measure, None), field(measure, slot)):
            cell[name] = cell.get(name, 0) + sign * value


def _ticket_facts(state: list[Any], increments: Increments, sign: int) -> None:
    """Add (sign 1) or take back (-1) what a ticket in `state` (STATE_FIELDS' values) counts."""
    agent, team, created, first_response, resolved = state
    if not created:
        return
    _add(increments, created, agent, team, {"o": 1}, sign)
    if first_response:
        _add(increments, first_response, agent, team, {"fn": 1, "fs": first_response - created}, sign)
    if resolved:
        _add(increments, resolved, agent, team, {"rn": 1, "rs": resolved - created}, sign)


def _rating_facts(doc: dict[str, Any], increments: Increments) -> None:
    if not doc.get("created_ms"):
        return
    rating = int(doc["rating"])
    values = {"cn": 1, "cs": rating, "cg": int(rating >= SATISFIED_FROM)}
    _add(increments, doc["created_ms"], doc.get("agent_id"), doc.get("team_id"), values, 1)


def _created_ms(doc: dict[str, Any]) -> dict[str, int]:
    """`created_ms` for a document from before it was stored (from `created_at`); empty if it has one."""
    if doc.get("created_ms") or doc.get("created_at") is None:
        return {}
    return {"created_ms": to_ms(doc["created_at"])}


def _as_read(doc: dict[str, Any], name: str) -> Any:
    """A compare-and-swap's condition that the field is still as read: its value, or still missing (stored before the counters)."""
    return doc.get(name, {"$exists": False})


async def _apply(increments: Increments) -> None:
    updates = []
    for (day, agent, team), values in increments.items():
        changed = {name: value for name, value in values.items() if value}
        if changed:
            cell = {"day_ms": day, "agent_id": agent, "team_id": team}
            updates.append(UpdateOne({"_id": f"{day}|{agent}|{team}"}, {"$inc": changed, "$set": cell}, upsert=True))
    if updates:
        await counters().bulk_write(updates, ordered=False)


Swap = tuple[dict[str, Any], dict[str, Any]]  # a compare-and-swap's filter and `$set`


async def _swapped(collection: AsyncCollection, swaps: list[Swap], token: str | None) -> list[bool]:
    """Which of these compare-and-swaps took effect: one at a time, or, with a backfill's `token`, in one bulk write.

    A backfill swaps documents never counted. Only a backfill writes `rollup_by`, and only one swap of such a
    document can succeed (later ones find `rollup_due`), so the documents carrying this run's token are the ones
    it swapped, whatever changed them since.
    """
    if token is None:
        return [(await collection.update_one(where, {"$set": update})).modified_count == 1 for where, update in swaps]
    writes = [UpdateOne(where, {"$set": {**update, "rollup_by": token}}) for where, update in swaps]
    if (await collection.bulk_write(writes, ordered=False)).modified_count == len(swaps):
        return [True] * len(swaps)
    ids = [where["_id"] for where, _ in swaps]
    mine = {doc["_id"] async for doc in collection.find({"_id": {"$in": ids}, "rollup_by": token}, {"_id": 1})}
    return [where["_id"] in mine for where, _ in swaps]


async def _roll_tickets(docs: list[dict[str, Any]], token: str | None = None) -> int:
    """Roll up these tickets (as read, with TICKET_FIELDS); how many were this call's to count."""
    swaps, states = [], []
    for doc in docs:
        fixed = _created_ms(doc)
        states.append([{**doc, **fixed}.get(name) for name in STATE_FIELDS])
        swaps.append((
            {"_id": doc["_id"], "rollup": _as_read(doc, "rollup"), "rollup_due": _as_read(doc, "rollup_due")},
            {"rollup": json.dumps(states[-1]), "rollup_due": 0, **fixed},
        ))  # fmt: skip
    increments: Increments = defaultdict(dict)
    won = await _swapped(Ticket.get_pymongo_collection(), swaps, token)
    for doc, state, mine in zip(docs, states, won, strict=True):
        if mine:  # else changed or rolled up meanwhile: whoever swapped counts it
            if doc.get("rollup"):
                _ticket_facts(json.loads(doc["rollup"]), increments, -1)
            _ticket_facts(state, increments, 1)
    await _apply(increments)
    return sum(won)


async def _roll_ratings(docs: list[dict[str, Any]], token: str | None = None) -> int:
    fixed = [_created_ms(doc) for doc in docs]
    swaps = [({"_id": doc["_id"], "rollup_due": _as_read(doc, "rollup_due")}, {"rollup_due": 0, **f}) for doc, f in zip(docs, fixed, strict=True)]
    increments: Increments = defaultdict(dict)
    won = await _swapped(CsatRating.get_pymongo_collection(), swaps, token)
    for doc, f, mine in zip(docs, fixed, won, strict=True):
        if mine:
            _rating_facts({**doc, **f}, increments)
    await _apply(increments)
    return sum(won)


async def sync_ticket(ticket_id: Any, doc: dict[str, Any] | None = None) -> None:
    """Count a ticket's latest changes (after a change that moved `rollup_due`); safe to repeat.
    `doc`: the ticket as the change left it, when the caller has it (else it is read)."""
    if doc is None:
        doc = await Ticket.get_pymongo_collection().find_one({"_id": ticket_id}, TICKET_FIELDS)
    if doc is not None and doc.get("rollup_due"):
        await _roll_tickets([doc])


async def sync_rating(rating_id: str) -> None:
    """Count a new rating; safe to repeat."""
    doc = await CsatRating.get_pymongo_collection().find_one({"_id": rating_id}, RATING_FIELDS)
    if doc is not None and doc.get("rollup_due"):
        await _roll_ratings([doc])


async def _roll_all(query: dict[str, Any], token: str | None = None) -> tuple[int, int]:
    """Roll up the tickets and ratings `query` finds, in batches; (tickets, ratings) this call counted."""
    counted = []
    for collection, projection, roll in (
        (Ticket.get_pymongo_collection(), TICKET_FIELDS, _roll_tickets),
        (CsatRating.get_pymongo_collection(), RATING_FIELDS, _roll_ratings),
    ):
        rolled, batch = 0, []
        async for doc in collection.find(query, projection).sort([("_id", 1)]):
            batch.append(doc)
            if len(batch) >= BATCH:
                rolled, batch = rolled + await roll(batch, token), []
        counted.append(rolled + (await roll(batch, token) if batch else 0))
    return counted[0], counted[1]


async def sync_due() -> tuple[int, int]:
    """Roll up every ticket and rating with uncounted changes (the bridge's sweep); (tickets, ratings) counted."""
    return await _roll_all({"rollup_due": {"$gt": 0}})


async def backfill() -> tuple[int, int]:
    """Count tickets and ratings stored before the counters existed (giving them `created_ms`), then anything due;
    idempotent, and safe while mqchat runs (the older ones are not due, so the bridge's sweep leaves them to this)."""
    older = await _roll_all({"rollup_due": {"$exists": False}}, token=secrets.token_hex(8))
    due = await sync_due()
    return older[0] + due[0], older[1] + due[1]


async def rebuild() -> tuple[int, int]:
    """Drop the counters and count every ticket and rating again (with the desk stopped: changes meanwhile may be lost)."""
    await counters().delete_many({})
    await Ticket.get_pymongo_collection().update_many({}, {"$set": {"rollup": "", "rollup_due": 1}})
    await CsatRating.get_pymongo_collection().update_many({}, {"$set": {"rollup_due": 1}})
    return await sync_due()
