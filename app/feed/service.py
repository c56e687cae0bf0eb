"""Appending to the change feed. Services call this inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.feed.models import Event


async def append_event(
    session: AsyncSession,
    *,
    subject_type: str,
    subject_id: str,
    type: str,
    data: dict[str, Any],
    inbound_event_id: int | None = None,
) -> None:
    """Record one real change. Never call it for a no-op: one row per change is the contract."""
    await session.execute(
        insert(Event).values(
            created_at=utcnow(),
            subject_type=subject_type,
            subject_id=subject_id,
            type=type,
            data=data,
            inbound_event_id=inbound_event_id,
        )
    )
