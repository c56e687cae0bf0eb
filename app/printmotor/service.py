"""Printmotor order rules: parsing vendor payloads and applying them through one transition.

Every path that learns something about an order — a webhook, a stale-order read-back, the
answer to a placement, a replay of a stored webhook — ends in `apply_observation`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, utcnow
from app.feed.service import append_event
from app.printmotor.models import PrintmotorOrder, PrintmotorPlacement
from app.printmotor.parsing import InvalidPayload, parse_user_order, parse_webhook, zone
from app.printmotor.transition import Decision, Observation, decide, feed_data

__all__ = [
    "InvalidPayload",
    "apply_observation",
    "parse_user_order",
    "parse_webhook",
    "zone",
]

log = logging.getLogger("printhook.printmotor")

SOURCE = "printmotor"
SUBJECT_TYPE = "printmotor_order"
ORDERS = cast(Table, PrintmotorOrder.__table__)
PLACEMENTS = cast(Table, PrintmotorPlacement.__table__)


async def _locked_order(session: AsyncSession, order_number: str) -> dict[str, Any] | None:
    result = await session.execute(
        select(ORDERS).where(ORDERS.c.order_number == order_number).with_for_update()
    )
    row = result.mappings().first()
    return dict(row) if row is not None else None


async def lock_orders(
    session: AsyncSession, order_numbers: Iterable[str]
) -> dict[str, dict[str, Any] | None]:
    """Lock many orders' rows with one `SELECT ... FOR UPDATE` (the applier's batches).

    Returns each order's row (None: not created yet), to hand to `apply_observation` as
    `locked`; the rows stay locked until the transaction ends, exactly as if each
    observation had locked its own.
    """
    numbers = sorted(set(order_numbers))
    locked: dict[str, dict[str, Any] | None] = dict.fromkeys(numbers)
    if numbers:
        result = await session.execute(
            select(ORDERS)
            .where(ORDERS.c.order_number.in_(numbers))
            .order_by(ORDERS.c.order_number)
            .with_for_update()
        )
        for row in result.mappings():
            locked[row["order_number"]] = dict(row)
    return locked


async def _write(session: AsyncSession, decision: Decision, order_number: str) -> bool:
    """Write the decision; False when a concurrent transaction created the order first."""
    if decision.is_new:
        result = await session.execute(
            dialect_insert(session, ORDERS)
            .values(**decision.values)
            .on_conflict_do_nothing(index_elements=["order_number"])
            .returning(ORDERS.c.order_number)
        )
        return result.scalar_one_or_none() is not None
    if decision.values:
        await session.execute(
            update(ORDERS).where(ORDERS.c.order_number == order_number).values(**decision.values)
        )
    return True


async def _link_placement(session: AsyncSession, order_number: str, reference: str) -> None:
    # A webhook or read-back naming the reference of a placement whose outcome is not known
    # yet proves Printmotor created the order: that resolves the placement.
    await session.execute(
        update(PLACEMENTS)
        .where(
            PLACEMENTS.c.reference == reference,
            PLACEMENTS.c.state.in_(("pending", "unknown")),
        )
        .values(state="placed", order_number=order_number, updated_at=utcnow())
    )


async def _finish(
    session: AsyncSession,
    current: dict[str, Any] | None,
    decision: Decision,
    obs: Observation,
    inbound_event_id: int | None,
) -> None:
    if decision.change:
        row = {**(current or {}), **decision.values}
        await append_event(
            session,
            subject_type=SUBJECT_TYPE,
            subject_id=obs.order_number,
            type=decision.change,
            data=feed_data(row, decision.previous_status, obs.event_type),
            inbound_event_id=inbound_event_id,
        )
        if "reference" in decision.changed and row["reference"]:
            await _link_placement(session, obs.order_number, row["reference"])


async def apply_observation(
    session: AsyncSession,
    obs: Observation,
    *,
    stale_after: timedelta,
    inbound_event_id: int | None = None,
    received_at: datetime | None = None,
    locked: dict[str, dict[str, Any] | None] | None = None,
) -> str:
    """Apply one observation to its order (created if unknown); return applied/unchanged.

    `received_at`: when the event was received (the inbound event's `received_at`; None:
    now, e.g. a read-back). With equal deliveryTimes the DELIVERED event received later
    holds the tracking, so a replay of an older event does not overwrite newer tracking.
    Locks the order row, so concurrent observations of one order are applied one at a time.
    `locked`: rows already locked in this transaction by `lock_orders`; an order's entry is
    used once (a later observation of the same order reads the row it wrote).
    """
    for _ in range(3):
        now = utcnow()
        if locked is not None and obs.order_number in locked:
            current = locked.pop(obs.order_number)
        else:
            current = await _locked_order(session, obs.order_number)
        decision = decide(current, obs, now=now, stale_after=stale_after, received_at=received_at)
        if await _write(session, decision, obs.order_number):
            await _finish(session, current, decision, obs, inbound_event_id)
            if decision.became_done:
                _log_done(obs)
            return decision.outcome
    raise RuntimeError("printmotor order creation kept conflicting")


def _log_done(obs: Observation) -> None:
    # A name printhook does not map is worth an operator's look: it may be a new status.
    level = logging.INFO if obs.status else logging.WARNING
    log.log(
        level,
        "printmotor.order.done",
        extra={
            "order_number": obs.order_number,
            "processing_status": obs.processing_status,
            "mapped_status": obs.status,
        },
    )
