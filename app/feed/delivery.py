"""Outbound delivery bookkeeping: which events go to the shop, claimed by whom, with what result.

Deliveries are created after commit by reading the feed (the same gapless read the shop gets),
so a delivery row exists only for an event that is committed and settled. One row per event;
a redelivery resets it. Functions taking a session never commit; the ones taking the context
own their transactions (one per background step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.config import Settings
from app.context import AppContext
from app.db import dialect_insert, utcnow
from app.feed.models import Delivery, Event, NotifyState
from app.feed.service import START, Position, read_events
from app.leases import lease_is_free
from app.ops.metrics import DELIVERIES_DISABLED, OLDEST_PENDING_DELIVERY_AGE, PENDING_DELIVERIES

log = logging.getLogger("printhook.notify")

STATE_ID = 1
STATES = ("pending", "delivered", "failed")
ENQUEUE_BATCH = 500


def delivery_configured(settings: Settings) -> bool:
    """Delivery happens only with a URL and at least one signing secret."""
    return bool(settings.notify_url) and bool(settings.notify_secrets)


async def _ensure_state(session: AsyncSession, since: datetime) -> None:
    now = utcnow()
    await session.execute(
        dialect_insert(session, NotifyState)
        .values(
            id=STATE_ID,
            since=since,
            cursor_tx_id=START.tx_id,
            cursor_event_id=START.event_id,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def enqueue(ctx: AppContext, since: datetime) -> int:
    """Create pending deliveries for settled events past the stored feed position.

    The first run stores `since`: events created before it are skipped (they stay in the feed).
    One replica at a time advances the position (the state row is locked; others skip).
    """
    created = 0
    for _ in range(20):
        async with ctx.session_factory() as session:
            await _ensure_state(session, since)
            state = await session.scalar(
                select(NotifyState)
                .where(NotifyState.id == STATE_ID)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
            if state is None:
                await session.commit()
                return created
            position = Position(state.cursor_tx_id, state.cursor_event_id)
            events, last = await read_events(session, after=position, limit=ENQUEUE_BATCH)
            rows = [_new_delivery(event) for event in events if event.created_at >= state.since]
            if rows:
                await session.execute(
                    dialect_insert(session, Delivery)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["event_id"])
                )
            state.cursor_tx_id, state.cursor_event_id = last.tx_id, last.event_id
            state.updated_at = utcnow()
            await session.commit()
        created += len(rows)
        if len(events) < ENQUEUE_BATCH:
            break
    return created


def _new_delivery(event: Event) -> dict[str, Any]:
    now = utcnow()
    return {
        "event_id": event.id,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


@dataclass(frozen=True)
class Claimed:
    """A leased delivery: its id, the attempts made before this one, and its event."""

    delivery_id: int
    attempts: int
    event: Event


async def claim_due(ctx: AppContext, *, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to `limit` due deliveries, each the oldest pending one of its subject, so a
    subject's next event waits until this one is delivered or given up."""
    now = utcnow()
    earlier = aliased(Delivery)
    blocked = exists().where(
        earlier.subject_type == Delivery.subject_type,
        earlier.subject_id == Delivery.subject_id,
        earlier.state == "pending",
        earlier.event_id < Delivery.event_id,
    )
    async with ctx.session_factory() as session:
        ids = list(
            (
                await session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.state == "pending",
                        Delivery.next_attempt_at <= now,
                        lease_is_free(Delivery, now),
                        ~blocked,
                    )
                    .order_by(Delivery.event_id)
                    .limit(limit)
                    .with_for_update(skip_locked=True, of=Delivery)
                )
            ).all()
        )
        if not ids:
            await session.commit()
            return []
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(lease_owner=ctx.instance_id, leased_until=now + lease)
        )
        rows = (
            await session.execute(
                select(Delivery.id, Delivery.attempts, Event)
                .join(Event, Event.id == Delivery.event_id)
                .where(Delivery.id.in_(ids))
                .order_by(Delivery.event_id)
            )
        ).all()
        await session.commit()
    return [Claimed(row[0], row[1], row[2]) for row in rows]


@dataclass(frozen=True)
class AttemptResult:
    """What one POST to the shop gave. `outcome` is also the metric label."""

    outcome: str  # delivered | gone | throttled | redirect | http_error | timeout | network_error
    status: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None


async def record_attempt(
    ctx: AppContext,
    delivery_id: int,
    result: AttemptResult,
    *,
    next_attempt_at: datetime | None,
) -> str | None:
    """Store an attempt's result and release the lease. `next_attempt_at` None after a failure
    means the schedule is used up: the delivery is `failed`. Returns the new state, or None when
    this process no longer held the lease (another replica took over)."""
    now = utcnow()
    values: dict[str, Any] = {
        "attempts": Delivery.attempts + 1,
        "last_attempt_at": now,
        "last_status": result.status,
        "last_error": result.error,
        "lease_owner": None,
        "leased_until": None,
    }
    if result.outcome == "delivered":
        values.update(state="delivered", delivered_at=now, next_attempt_at=None)
    elif next_attempt_at is None:
        values.update(state="failed", next_attempt_at=None)
    else:
        values.update(state="pending", next_attempt_at=next_attempt_at)
    async with ctx.session_factory() as session:
        result_rows = await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.lease_owner == ctx.instance_id)
            .values(**values)
            .returning(Delivery.state)
        )
        state = result_rows.scalar_one_or_none()
        if result.outcome == "gone":
            await set_disabled(session, "the receiver answered 410 Gone")
        await session.commit()
    return state


async def release_leases(ctx: AppContext, delivery_ids: list[int]) -> None:
    """Give back leases of deliveries not attempted (shutdown, or delivery just disabled)."""
    if not delivery_ids:
        return
    async with ctx.session_factory() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.lease_owner == ctx.instance_id)
            .values(lease_owner=None, leased_until=None)
        )
        await session.commit()


# --- Enabling, disabling, redelivery (API and CLI) ------------------------------------------


async def get_state(session: AsyncSession) -> NotifyState | None:
    return await session.get(NotifyState, STATE_ID, populate_existing=True)


async def set_disabled(session: AsyncSession, reason: str) -> None:
    """Stop all delivery, on every replica, until `enable`."""
    now = utcnow()
    await _ensure_state(session, now)
    await session.execute(
        update(NotifyState)
        .where(NotifyState.id == STATE_ID, NotifyState.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason, updated_at=now)
    )


async def enable(session: AsyncSession) -> bool:
    """Resume delivery after a 410; True when it had been disabled. Deliveries held back by
    the 410 are due at once."""
    now = utcnow()
    changed = await session.execute(
        update(NotifyState)
        .where(NotifyState.id == STATE_ID, NotifyState.disabled_at.is_not(None))
        .values(disabled_at=None, disabled_reason=None, updated_at=now)
        .returning(NotifyState.id)
    )
    return changed.scalar_one_or_none() is not None


async def redeliver_event(session: AsyncSession, event: Event) -> Delivery:
    """Send `event` again from the first attempt (creating its delivery if it has none)."""
    await session.execute(
        dialect_insert(session, Delivery)
        .values(**_new_delivery(event))
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    await session.execute(_reset().where(Delivery.event_id == event.id))
    delivery = await session.scalar(
        select(Delivery)
        .where(Delivery.event_id == event.id)
        .execution_options(populate_existing=True)
    )
    assert delivery is not None
    return delivery


async def redeliver_since(session: AsyncSession, since: datetime) -> int:
    """Send every event created at or after `since` again; returns how many."""
    recent = select(Event.id).where(Event.created_at >= since)
    missing = (
        await session.scalars(
            select(Event)
            .where(Event.created_at >= since, ~exists().where(Delivery.event_id == Event.id))
            .order_by(Event.id)
        )
    ).all()
    if missing:
        await session.execute(
            dialect_insert(session, Delivery)
            .values([_new_delivery(event) for event in missing])
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
    result = await session.execute(
        _reset().where(Delivery.event_id.in_(recent)).returning(Delivery.id)
    )
    return len(result.all())


def _reset() -> Any:
    return update(Delivery).values(
        state="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        delivered_at=None,
        lease_owner=None,
        leased_until=None,
    )


async def list_deliveries(
    session: AsyncSession, *, state: str | None, after_id: int | None, limit: int
) -> list[tuple[Delivery, str]]:
    """Deliveries in id order with their event's type, strictly after `after_id`."""
    query = select(Delivery, Event.type).join(Event, Event.id == Delivery.event_id)
    if state is not None:
        query = query.where(Delivery.state == state)
    if after_id is not None:
        query = query.where(Delivery.id > after_id)
    rows = (await session.execute(query.order_by(Delivery.id).limit(limit))).all()
    return [(row[0], row[1]) for row in rows]


async def counts(session: AsyncSession) -> tuple[dict[str, int], datetime | None]:
    """Deliveries per state, and when the oldest pending one was created."""
    rows = (
        await session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
    ).all()
    by_state = dict.fromkeys(STATES, 0) | {row[0]: int(row[1]) for row in rows}
    oldest = await session.scalar(
        select(func.min(Delivery.created_at)).where(Delivery.state == "pending")
    )
    return by_state, oldest


async def refresh_gauges(session: AsyncSession) -> None:
    """Set the pending, oldest-pending-age and disabled gauges (served by the state index,
    however many delivered rows there are)."""
    pending, oldest = (
        await session.execute(
            select(func.count(), func.min(Delivery.created_at)).where(Delivery.state == "pending")
        )
    ).one()
    state = await get_state(session)
    PENDING_DELIVERIES.set(int(pending))
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    OLDEST_PENDING_DELIVERY_AGE.set(max(age, 0.0))
    DELIVERIES_DISABLED.set(1 if state is not None and state.disabled_at is not None else 0)
