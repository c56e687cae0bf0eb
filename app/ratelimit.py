"""A call budget shared by every replica through the database.

Each budget is one row holding the earliest moment the next call may start. Taking a slot
moves that moment forward by `1 / rate` (plus a margin) under a row lock, so calls from any
number of processes are spaced at least `1 / rate` seconds apart. The margin keeps any one
second under `rate` calls even when a caller wakes from its wait a little late and the next
one does not (a late call closes up on the one after it). A vendor's `Retry-After` pushes the
moment further, pausing every replica at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, dialect_insert, utcnow

# Slots are 10 % further apart than `1 / rate`: room for callers that wake late.
SPACING_MARGIN = 1.1


class RateBudget(Base):
    __tablename__ = "rate_budgets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_slot_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


async def _locked_budget(session: AsyncSession, name: str) -> RateBudget:
    await session.execute(
        dialect_insert(session, RateBudget)
        .values(name=name, next_slot_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    budget = await session.scalar(
        select(RateBudget)
        .where(RateBudget.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert budget is not None
    return budget


async def reserve_slot(
    session_factory: async_sessionmaker[AsyncSession], name: str, rate: float
) -> float:
    """Reserve the next call slot of budget `name`; return how many seconds to wait for it."""
    async with session_factory() as session, session.begin():
        budget = await _locked_budget(session, name)
        now = utcnow()
        slot = max(now, budget.next_slot_at, budget.paused_until or now)
        budget.next_slot_at = slot + timedelta(seconds=SPACING_MARGIN / rate)
    return max(0.0, (slot - now).total_seconds())


async def take_slot(
    session_factory: async_sessionmaker[AsyncSession], name: str, rate: float
) -> None:
    """Wait until this process may make one call within budget `name`."""
    delay = await reserve_slot(session_factory, name, rate)
    if delay:
        await asyncio.sleep(delay)


async def pause(
    session_factory: async_sessionmaker[AsyncSession], name: str, seconds: float
) -> datetime:
    """Stop every caller of budget `name` for `seconds` (a vendor's Retry-After)."""
    async with session_factory() as session, session.begin():
        budget = await _locked_budget(session, name)
        until = utcnow() + timedelta(seconds=seconds)
        budget.paused_until = max(until, budget.paused_until or until)
        budget.next_slot_at = max(budget.next_slot_at, budget.paused_until)
        return budget.paused_until


async def paused_until(
    session_factory: async_sessionmaker[AsyncSession], name: str
) -> datetime | None:
    """When a pause of budget `name` ends, or None if it is not paused now."""
    async with session_factory() as session:
        until = await session.scalar(select(RateBudget.paused_until).where(RateBudget.name == name))
    return until if until is not None and until > utcnow() else None
