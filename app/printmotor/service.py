"""Printmotor order rules: parsing vendor payloads and applying them through one transition.

Every path that learns something about an order — a webhook, a stale-order read-back, the
answer to a placement, a replay of a stored webhook — ends in `apply_observation`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, utcnow
from app.feed.service import append_event
from app.printmotor.models import PrintmotorOrder, PrintmotorPlacement
from app.printmotor.transition import Decision, Observation, decide, feed_data, status_of

log = logging.getLogger("printhook.printmotor")

SOURCE = "printmotor"
SUBJECT_TYPE = "printmotor_order"
ORDERS = cast(Table, PrintmotorOrder.__table__)
PLACEMENTS = cast(Table, PrintmotorPlacement.__table__)


class InvalidPayload(ValueError):
    """A signed body that is not a usable Printmotor event (kept as rejected)."""


def _text(value: object, limit: int) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] if value else None


def parse_timestamp(value: object) -> datetime | None:
    """Printmotor timestamps carry no zone and vary in precision; they are UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def order_number_of(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value.strip()) <= 128:
        return value.strip()
    return None


def parse_user_order(
    user_order: dict[str, Any], *, event_type: str | None, implied_status: str | None = None
) -> Observation:
    """An `Observation` from Printmotor's `userOrder` shape (webhooks, GET and POST /order)."""
    order_number = order_number_of(user_order.get("orderNumber"))
    if order_number is None:
        raise InvalidPayload("userOrder.orderNumber is missing or not a number or string")
    meta = user_order.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    links_in = meta.get("externalTrackingLinks")
    links = tuple(
        url
        for link in (links_in if isinstance(links_in, list) else [])
        if isinstance(link, dict) and (url := _text(link.get("absoluteUrl"), 2048))
    )
    processing_status = _text(user_order.get("processingStatus"), 64)
    status = status_of(event_type, processing_status) or implied_status
    return Observation(
        order_number=order_number,
        status=status,
        event_type=event_type,
        processing_status=processing_status,
        description=_text(user_order.get("processingStatusDescription"), 10_000),
        reference=_text(meta.get("reference"), 255),
        postal_class=_text(user_order.get("postalClass"), 64),
        delivery_time=parse_timestamp(user_order.get("deliveryTime")),
        estimated_delivery_time=parse_timestamp(user_order.get("estimatedDeliveryTime")),
        tracking_code=_text(meta.get("trackingCode"), 255),
        tracking_links=links,
    )


def parse_webhook(body: bytes) -> Observation:
    """Parse a verified webhook body leniently; raise `InvalidPayload` if it is unusable."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidPayload("body is not a JSON object")
    user_order = payload.get("userOrder")
    if not isinstance(user_order, dict):
        raise InvalidPayload("userOrder is missing or not an object")
    event_type = _text(payload.get("eventType"), 64)
    return parse_user_order(user_order, event_type=event_type)


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
) -> str:
    """Apply one observation to its order (created if unknown); return applied/unchanged.

    Locks the order row, so concurrent observations of one order are applied one at a time.
    """
    for _ in range(3):
        now = utcnow()
        current = await _locked_order(session, obs.order_number)
        decision = decide(current, obs, now=now, stale_after=stale_after)
        if await _write(session, decision, obs.order_number):
            await _finish(session, current, decision, obs, inbound_event_id)
            return decision.outcome
    raise RuntimeError("printmotor order creation kept conflicting")
