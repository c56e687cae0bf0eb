"""Printmotor order rules: parsing vendor payloads and applying them through one transition.

Every path that learns something about an order — a webhook, a stale-order read-back, the
answer to a placement, a replay of a stored webhook — ends in `apply_observation`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import AppContext
from app.db import dialect_insert, utcnow
from app.feed.service import append_event
from app.inbound.models import InboundEvent
from app.inbound.service import body_digest, record_inbound, set_outcome
from app.printmotor.models import PrintmotorOrder, PrintmotorPlacement
from app.printmotor.parsing import InvalidPayload, parse_user_order, parse_webhook, zone
from app.printmotor.transition import Decision, Observation, decide, feed_data

__all__ = [
    "InvalidPayload",
    "apply_observation",
    "handle_webhook",
    "parse_user_order",
    "parse_webhook",
    "replay_inbound_event",
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
) -> str:
    """Apply one observation to its order (created if unknown); return applied/unchanged.

    `received_at`: when the event was received (the inbound event's `received_at`; None:
    now, e.g. a read-back). With equal deliveryTimes the DELIVERED event received later
    holds the tracking, so a replay of an older event does not overwrite newer tracking.
    Locks the order row, so concurrent observations of one order are applied one at a time.
    """
    for _ in range(3):
        now = utcnow()
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


async def handle_webhook(
    session: AsyncSession, body: bytes, *, stale_after: timedelta, tz: tzinfo = UTC
) -> tuple[str, str | None]:
    """Record and apply one verified webhook body; return (outcome, error).

    outcome: applied | unchanged | duplicate (the same bytes were stored before: nothing is
    written) | rejected (stored with the reason; the caller answers 400). The caller commits.
    """
    dedupe_key = body_digest(body)
    try:
        obs = parse_webhook(body, tz=tz)
    except InvalidPayload as exc:
        stored = await record_inbound(
            session,
            source=SOURCE,
            dedupe_key=dedupe_key,
            body=body,
            outcome="rejected",
            error=str(exc),
        )
        del stored  # a re-sent bad body is answered the same way: 400
        return "rejected", str(exc)

    for _ in range(3):
        now = utcnow()
        current = await _locked_order(session, obs.order_number)
        decision = decide(current, obs, now=now, stale_after=stale_after)
        # Dedupe after the lock and before any write: a duplicate writes nothing at all.
        inbound_id = await record_inbound(
            session,
            source=SOURCE,
            dedupe_key=dedupe_key,
            body=body,
            outcome=decision.outcome,
            subject_id=obs.order_number,
            event_type=obs.event_type,
        )
        if inbound_id is None:
            return "duplicate", None
        if await _write(session, decision, obs.order_number):
            await _finish(session, current, decision, obs, inbound_id)
            return decision.outcome, None
        # Lost a race creating the order: undo the log row and decide again on the real row.
        await session.execute(delete(InboundEvent).where(InboundEvent.id == inbound_id))
    raise RuntimeError("printmotor order creation kept conflicting")


async def replay_inbound_event(ctx: AppContext, session: AsyncSession, event: InboundEvent) -> str:
    """Re-apply a stored Printmotor webhook through the same transition.

    Returns applied | unchanged | rejected. Replaying an event already applied changes nothing
    (the transition is idempotent). An event that now applies gets outcome `applied`.
    The caller commits.
    """
    if event.body is None:
        log.warning("printmotor.replay.body_purged", extra={"inbound_event_id": event.id})
        return "rejected"
    try:
        obs = parse_webhook(event.body, tz=ctx.settings.printmotor_timezone)
    except InvalidPayload:
        return "rejected"
    outcome = await apply_observation(
        session,
        obs,
        stale_after=ctx.settings.printmotor_stale_after,
        inbound_event_id=event.id,
        received_at=event.received_at,
    )
    if outcome == "applied" and event.outcome != "applied":
        await set_outcome(session, event.id, "applied")
    return outcome
