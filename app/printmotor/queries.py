"""Reading Printmotor orders for the shop API: one order with its history, and pages."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.feed.models import Event
from app.pagination import MAX_LIMIT, encode_cursor
from app.printmotor.models import PrintmotorOrder
from app.printmotor.schemas import HistoryEntry, OrderOut, OrderPage
from app.printmotor.service import SUBJECT_TYPE

ORDERS = cast(Table, PrintmotorOrder.__table__)


async def get_order(session: AsyncSession, order_number: str) -> OrderOut:
    """One order with its change history (oldest first); NotFound if printhook has none."""
    row = (
        (await session.execute(select(ORDERS).where(ORDERS.c.order_number == order_number)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no Printmotor order {order_number!r} is known to printhook")
    events = await session.execute(
        select(Event.id, Event.type, Event.created_at, Event.data)
        .where(Event.subject_type == SUBJECT_TYPE, Event.subject_id == order_number)
        .order_by(Event.id)
    )
    history = [
        HistoryEntry(id=e.id, type=e.type, created_at=e.created_at, data=e.data) for e in events
    ]
    return OrderOut.of(row, history)


async def list_orders(
    session: AsyncSession,
    *,
    status: str | None,
    reference: str | None,
    updated_after: datetime | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> OrderPage:
    """Orders by (updated_at, order_number) ascending; `nextCursor` continues after the last.

    The cursor holds the last (updated_at, order_number) seen, so pages stay stable while
    orders change: a changed order moves to the end and is seen again, never skipped.
    Arguments arrive checked (`app.pagination`): known status, aware times.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    query = select(ORDERS)
    if status is not None:
        query = query.where(ORDERS.c.status == status)
    if reference is not None:
        query = query.where(ORDERS.c.reference == reference)
    if updated_after is not None:
        query = query.where(ORDERS.c.updated_at > updated_after)
    if after is not None:
        after_at, after_number = after
        query = query.where(
            or_(
                ORDERS.c.updated_at > after_at,
                and_(ORDERS.c.updated_at == after_at, ORDERS.c.order_number > after_number),
            )
        )
    query = query.order_by(ORDERS.c.updated_at, ORDERS.c.order_number).limit(limit + 1)
    rows = list((await session.execute(query)).mappings())
    items = [OrderOut.of(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.updated_at, last.order_number)
    return OrderPage(items=items, next_cursor=next_cursor)
