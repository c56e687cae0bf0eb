"""Row leases for background work, so replicas never handle the same row in one pass.

A leased table has `lease_owner` and `leased_until` columns. Claiming selects due rows with
`FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) and
stamps them with this process's id, so other replicas skip them until the lease is released
or runs out (a crashed holder).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from app.context import AppContext
from app.db import utcnow


def lease_is_free(model: Any, now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds, or whose holder's lease ran out."""
    return or_(model.leased_until.is_(None), model.leased_until < now)


async def claim(
    ctx: AppContext,
    key: InstrumentedAttribute[str],
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
    lease: timedelta,
) -> list[str]:
    """Lease up to `limit` rows matching `where` (which should include `lease_is_free`);
    return their keys."""
    model = key.class_
    now = utcnow()
    async with ctx.session_factory() as session:
        keys = list(
            (
                await session.scalars(
                    select(key)
                    .where(*where)
                    .order_by(*order_by)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if keys:
            await session.execute(
                update(model)
                .where(key.in_(keys))
                .values(lease_owner=ctx.instance_id, leased_until=now + lease)
            )
        await session.commit()
    return keys


async def release(
    ctx: AppContext, key: InstrumentedAttribute[str], keys: Sequence[str] | None = None
) -> None:
    """Give back leases this process holds on `keys` (all of them when `keys` is None)."""
    if keys is not None and not keys:
        return
    model = key.class_
    query = update(model).where(model.lease_owner == ctx.instance_id)
    if keys is not None:
        query = query.where(key.in_(keys))
    async with ctx.session_factory() as session:
        await session.execute(query.values(lease_owner=None, leased_until=None))
        await session.commit()
