"""The change feed: appending events (inside the caller's transaction) and reading them gaplessly.

Why reading is not simply `id > cursor`: on PostgreSQL ids come from a sequence when a row is
inserted, not when its transaction commits, so a row with a smaller id can become visible after
a consumer has already read past it. The feed therefore orders by `(tx_id, id)`, where `tx_id`
is at least the writing transaction's id, and serves only rows whose `tx_id` lies below the
current snapshot's xmin: every transaction older than xmin has finished, and every transaction
still running (or yet to start) writes rows with a larger `tx_id`, so nothing can ever appear
behind a position already served.

Per-subject order: a subject's events are written under its entity's row lock, so their ids
follow commit order; but a transaction may hold an older id than the one that committed before
it. `tx_id` is therefore raised to the subject's previous event's `tx_id`, which keeps every
subject's events in id order within the feed. (Raising it never breaks the rule above: it only
ever moves a row later.) On SQLite there is one writer at a time; `tx_id` is 0 and id order is
commit order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, cast, func, insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_name, utcnow
from app.feed.models import Event
from app.feed.wake import mark_appended

SUBJECT_TYPES = ("printess_job", "printmotor_order")
_DIGITS = re.compile(r"[0-9]{1,19}")


async def append_event(
    session: AsyncSession,
    *,
    subject_type: str,
    subject_id: str,
    type: str,
    data: dict[str, Any],
    inbound_event_id: int | None = None,
) -> None:
    """Record one real change. Never call it for a no-op: one row per change is the contract.

    Call it while holding the subject's row lock (every transition does), so that the subject's
    events are written one transaction at a time.
    """
    await session.execute(
        insert(Event).values(
            tx_id=_tx_id(session, subject_type, subject_id),
            created_at=utcnow(),
            subject_type=subject_type,
            subject_id=subject_id,
            type=type,
            data=data,
            inbound_event_id=inbound_event_id,
        )
    )
    mark_appended(session)


def _tx_id(session: AsyncSession, subject_type: str, subject_id: str) -> ColumnElement[int] | int:
    if dialect_name(session) != "postgresql":
        return 0
    previous = (
        select(Event.tx_id)
        .where(Event.subject_type == subject_type, Event.subject_id == subject_id)
        .order_by(Event.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    own = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    return func.greatest(own, func.coalesce(previous, 0))


# --- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Position:
    """A place in the feed: just after the event with this (tx_id, id)."""

    tx_id: int
    event_id: int

    def encode(self) -> str:
        return f"{self.tx_id}.{self.event_id}"

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """Raise ValueError for anything that is not shaped like a cursor (CURSOR_PATTERN).

        Any well-formed cursor is just a position in the feed, so a hand-made one can only
        return a page, never an error from the database."""
        match = CURSOR.fullmatch(cursor)
        if match is None:
            raise ValueError("malformed cursor")
        return cls(int(match[1]), int(match[2]))


# Both parts stay below 2**63 (bigint) with at most 18 digits.
CURSOR_PATTERN = r"^([0-9]{1,18})\.([0-9]{1,18})$"
CURSOR = re.compile(CURSOR_PATTERN)


START = Position(0, 0)


async def settled_horizon(session: AsyncSession) -> int | None:
    """Rows with a tx_id below this can no longer be overtaken (None: no limit, SQLite)."""
    if dialect_name(session) != "postgresql":
        return None
    horizon = await session.scalar(
        select(cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger))
    )
    return int(horizon) if horizon is not None else None


async def read_events(
    session: AsyncSession,
    *,
    after: Position,
    limit: int,
    types: list[str] | None = None,
    subject: tuple[str, str] | None = None,
) -> tuple[list[Event], Position]:
    """Up to `limit` settled events after `after` in feed order, and the position to continue
    from (the last event returned, or `after` itself when there is none)."""
    # The horizon is read first, in an earlier snapshot than the rows: every transaction below
    # it had finished before the rows' snapshot was taken, so all its rows are visible there.
    horizon = await settled_horizon(session)
    query = select(Event).where(
        tuple_(Event.tx_id, Event.id) > tuple_(literal(after.tx_id), literal(after.event_id))
    )
    if horizon is not None:
        query = query.where(Event.tx_id < horizon)
    if types:
        query = query.where(Event.type.in_(types))
    if subject is not None:
        query = query.where(Event.subject_type == subject[0], Event.subject_id == subject[1])
    query = query.order_by(Event.tx_id, Event.id).limit(limit)
    events = list((await session.scalars(query)).all())
    last = Position(events[-1].tx_id, events[-1].id) if events else after
    return events, last


def event_json(event: Event) -> dict[str, Any]:
    """An event as the feed and the outbound webhooks carry it."""
    return {
        "id": event.id,
        "type": event.type,
        "createdAt": event.created_at.isoformat().replace("+00:00", "Z"),
        "subject": {"type": event.subject_type, "id": event.subject_id},
        "data": event.data,
    }
