"""Backlog gauges, computed when scraped: non-final jobs and orders, pending and parked
inbound events, pending outbound deliveries (each with the age of the oldest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db import utcnow
from app.feed.delivery import refresh_gauges as refresh_delivery_gauges
from app.inbound.models import FAILED, PENDING, InboundEvent
from app.ops.metrics import (
    INBOUND_OLDEST_PENDING_AGE,
    INBOUND_PARKED,
    INBOUND_PENDING,
    NON_FINAL,
    OLDEST_NON_FINAL_AGE,
)
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.printmotor.transition import DONE_STATUSES


async def refresh_backlog_gauges(session: AsyncSession) -> None:
    """Set every backlog gauge: `printhook_non_final` and
    `printhook_oldest_non_final_age_seconds` per kind, the inbound and the delivery gauges.

    A few aggregate queries, each served by an index on the state or status; cheap enough
    for every scrape.
    """
    now = utcnow()
    jobs = PrintessJob.status == "pending"
    # Handed to the carrier or cancelled: nothing more is awaited (the Printmotor domain's rule).
    orders = PrintmotorOrder.status.not_in(sorted(DONE_STATUSES))
    for kind, created_at, where in (
        ("printess_job", PrintessJob.created_at, jobs),
        ("printmotor_order", PrintmotorOrder.created_at, orders),
    ):
        count, oldest = await _count_and_oldest(session, created_at, where)
        NON_FINAL.labels(kind).set(count)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        OLDEST_NON_FINAL_AGE.labels(kind).set(max(age, 0.0))
    await refresh_inbound_gauges(session)
    # The notifier also sets these after each pass; refreshing them here means a web process
    # without background work (PRINTHOOK_RUN_WORKERS=false) exports current values too.
    await refresh_delivery_gauges(session)


SOURCES = ("printess", "printmotor")


async def refresh_inbound_gauges(session: AsyncSession) -> None:
    """Pending and parked inbound events per source, and the oldest pending one's age."""
    now = utcnow()
    rows = (
        await session.execute(
            select(
                InboundEvent.source,
                InboundEvent.state,
                func.count(),
                func.min(InboundEvent.received_at),
            )
            .where(InboundEvent.state.in_((PENDING, FAILED)))
            .group_by(InboundEvent.source, InboundEvent.state)
        )
    ).all()
    seen = {(row[0], row[1]): (int(row[2]), row[3]) for row in rows}
    for source in SOURCES:
        pending, oldest = seen.get((source, PENDING), (0, None))
        INBOUND_PENDING.labels(source).set(pending)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        INBOUND_OLDEST_PENDING_AGE.labels(source).set(max(age, 0.0))
        INBOUND_PARKED.labels(source).set(seen.get((source, FAILED), (0, None))[0])


async def _count_and_oldest(
    session: AsyncSession, created_at: InstrumentedAttribute[datetime], where: ColumnElement[bool]
) -> tuple[int, datetime | None]:
    row = (await session.execute(select(func.count(), func.min(created_at)).where(where))).one()
    return int(row[0]), row[1]
