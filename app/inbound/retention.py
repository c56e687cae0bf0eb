"""Retention: raw inbound bodies older than `PRINTHOOK_RETENTION_DAYS` are dropped.

The metadata row stays (source, dedupe key, subject, state, size, `body_purged_at`) as
the audit trail and so a late redelivery of a purged event is still recognised as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.background import PeriodicTask
from app.config import Settings
from app.context import AppContext
from app.db import utcnow
from app.inbound.models import FAILED, PENDING, InboundEvent

log = logging.getLogger("printhook.inbound.retention")

# Rows per transaction: keeps each write short so webhooks never wait long behind it.
PURGE_BATCH_SIZE = 500
RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class PurgeCount:
    events: int = 0
    bytes: int = 0

    def __add__(self, other: PurgeCount) -> PurgeCount:
        return PurgeCount(self.events + other.events, self.bytes + other.bytes)


def retention_cutoff(retention_days: int) -> datetime:
    """Bodies received before this instant are due for purging."""
    return utcnow() - timedelta(days=retention_days)


def _expired(cutoff: datetime) -> list[ColumnElement[bool]]:
    # Pending events still need their bytes, and parked (failed) ones are kept for replay.
    return [
        InboundEvent.received_at < cutoff,
        InboundEvent.body_purged_at.is_(None),
        InboundEvent.state.not_in((PENDING, FAILED)),
    ]


async def count_purgeable(session: AsyncSession, cutoff: datetime) -> PurgeCount:
    """How many stored bodies, and how many bytes, a purge at `cutoff` would drop."""
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(InboundEvent.body_size), 0)).where(
                *_expired(cutoff)
            )
        )
    ).one()
    return PurgeCount(int(row[0]), int(row[1]))


async def purge_batch(session: AsyncSession, cutoff: datetime, limit: int) -> PurgeCount:
    """Drop the bodies of up to `limit` expired events; the caller commits.

    Rows another replica is purging right now are skipped (SKIP LOCKED on PostgreSQL;
    SQLite serialises writers anyway).
    """
    rows = (
        await session.execute(
            select(InboundEvent.id, InboundEvent.body_size)
            .where(*_expired(cutoff))
            .order_by(InboundEvent.received_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return PurgeCount()
    await session.execute(
        update(InboundEvent)
        .where(InboundEvent.id.in_([row.id for row in rows]))
        .values(body=None, body_purged_at=utcnow())
    )
    return PurgeCount(len(rows), sum(row.body_size for row in rows))


async def purge_expired_bodies(
    ctx: AppContext, *, batch_size: int = PURGE_BATCH_SIZE
) -> PurgeCount:
    """Purge every expired body, one committed batch at a time."""
    cutoff = retention_cutoff(ctx.settings.retention_days)
    total = PurgeCount()
    while True:
        async with ctx.session_factory() as session:
            done = await purge_batch(session, cutoff, batch_size)
            await session.commit()
        total += done
        if done.events < batch_size:
            break
    if total.events:
        log.info(
            "inbound.retention.purged",
            extra={"events": total.events, "bytes": total.bytes, "cutoff": cutoff.isoformat()},
        )
    return total


def retention_task() -> PeriodicTask:
    return PeriodicTask("inbound.retention", RETENTION_INTERVAL_SECONDS, purge_expired_bodies)


async def _purge_command(settings: Settings, *, dry_run: bool) -> tuple[PurgeCount, datetime]:
    ctx = AppContext.create(settings)
    try:
        cutoff = retention_cutoff(settings.retention_days)
        if dry_run:
            async with ctx.session_factory() as session:
                return await count_purgeable(session, cutoff), cutoff
        return await purge_expired_bodies(ctx), cutoff
    finally:
        await ctx.aclose()


def run_purge(settings: Settings, *, dry_run: bool) -> int:
    """`printhook purge [--dry-run]`: purge now (or count) and say how much."""
    count, cutoff = asyncio.run(_purge_command(settings, dry_run=dry_run))
    verb = "would purge" if dry_run else "purged"
    print(
        f"{verb} {count.events} inbound event bodies ({count.bytes} bytes) received before "
        f"{cutoff.isoformat(timespec='seconds')} (PRINTHOOK_RETENTION_DAYS="
        f"{settings.retention_days}); the event rows are kept"
    )
    return 0
