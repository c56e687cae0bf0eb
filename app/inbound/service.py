"""Recording vendor requests in the inbound log, deduplicated atomically."""

from __future__ import annotations

import hashlib

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, utcnow
from app.inbound.models import InboundEvent


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def record_inbound(
    session: AsyncSession,
    *,
    source: str,
    dedupe_key: str,
    body: bytes,
    outcome: str,
    subject_id: str | None = None,
    event_type: str | None = None,
    error: str | None = None,
) -> int | None:
    """Insert the raw request; return its id, or None when the same event is already stored.

    `INSERT ... ON CONFLICT DO NOTHING` makes concurrent duplicates safe: exactly one
    transaction gets an id back, the others see None and must apply nothing.
    """
    stmt = (
        dialect_insert(session, InboundEvent)
        .values(
            source=source,
            dedupe_key=dedupe_key,
            received_at=utcnow(),
            subject_id=subject_id,
            event_type=event_type,
            outcome=outcome,
            error=error,
            body_size=len(body),
            body=body,
        )
        .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
        .returning(InboundEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_outcome(
    session: AsyncSession, inbound_id: int, outcome: str, error: str | None = None
) -> None:
    """Record what applying a stored event did (applied, unchanged, rejected, deferred)."""
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == inbound_id)
        .values(outcome=outcome, error=error)
    )
