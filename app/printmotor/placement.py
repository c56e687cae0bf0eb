"""Placing Printmotor orders exactly once.

Every accepted order is printed, shipped and billed, so a placement is claimed first: a row
with a unique `reference` (and unique `Idempotency-Key`) is inserted with
`INSERT ... ON CONFLICT DO NOTHING` and committed before Printmotor is called. Whoever does not
get the row never calls Printmotor; it answers the state of the existing placement.

When the call ends without a clear answer (timeout after sending, 5xx), the order may or may
not exist. Printmotor offers no lookup by reference, so printhook never resends: the placement
stays `unknown` until a webhook or read-back carrying the same `meta.reference` links it to its
order (see `service._link_placement`), or an operator resolves it with
`printhook printmotor resolve-placement`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import AppContext
from app.db import dialect_insert, utcnow
from app.errors import ProblemError, ServiceUnavailable
from app.printmotor import client as pm
from app.printmotor.models import PrintmotorOrder, PrintmotorPlacement
from app.printmotor.parsing import order_number_of
from app.printmotor.service import InvalidPayload, apply_observation, parse_user_order, zone
from app.printmotor.transition import Observation

log = logging.getLogger("printhook.printmotor.placement")

PLACEMENTS = cast(Table, PrintmotorPlacement.__table__)
ORDERS = cast(Table, PrintmotorOrder.__table__)
# A claim still pending after this long belongs to a process that died mid-call.
STUCK_AFTER = timedelta(seconds=120)


class PlacementInProgress(ProblemError):
    status, slug, title = 409, "placement-in-progress", "The order is being placed right now"


class PlacementOutcomeUnknown(ProblemError):
    status, slug, title = 409, "placement-outcome-unknown", "Printmotor's answer was lost"


class IdempotencyKeyReused(ProblemError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key used for another order"


class ReferenceInUse(ProblemError):
    status, slug, title = 409, "reference-in-use", "meta.reference is used by another order"


class PrintmotorRejected(ProblemError):
    status, slug, title = 422, "printmotor-rejected", "Printmotor refused the order"


class PrintmotorAuthFailed(ProblemError):
    status, slug, title = 502, "printmotor-auth", "Printmotor refused printhook's credentials"


class PrintmotorUnavailable(ServiceUnavailable):
    slug, title = "printmotor-unavailable", "Printmotor cannot take orders right now"


class PrintmotorNotConfigured(ServiceUnavailable):
    slug, title = "printmotor-not-configured", "Printmotor order credentials are not configured"


@dataclass(frozen=True)
class Placement:
    state: str
    reference: str
    order_number: str | None


def request_hash(order: dict[str, Any]) -> str:
    canonical = json.dumps(order, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    session: AsyncSession, *, key: str | None, reference: str, digest: str, order: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """Claim the placement. (True, None): ours to place. (False, row): someone else's."""
    now = utcnow()
    inserted = await session.execute(
        dialect_insert(session, PLACEMENTS)
        .values(
            idempotency_key=key,
            reference=reference,
            request_hash=digest,
            request=order,
            state="pending",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(PLACEMENTS.c.id)
    )
    if inserted.scalar_one_or_none() is not None:
        return True, None
    match = PLACEMENTS.c.reference == reference
    if key is not None:
        match = or_(match, PLACEMENTS.c.idempotency_key == key)
    rows = [dict(r) for r in (await session.execute(select(PLACEMENTS).where(match))).mappings()]
    rows.sort(key=lambda r: r["idempotency_key"] != key or key is None)
    return False, rows[0] if rows else None


async def mark(
    session: AsyncSession,
    reference: str,
    state: str,
    *,
    order_number: str | None = None,
    error: str | None = None,
    only_if_pending: bool = False,
) -> None:
    """Move a placement to `state` (placed / unknown)."""
    stmt = update(PLACEMENTS).where(PLACEMENTS.c.reference == reference)
    if only_if_pending:
        stmt = stmt.where(PLACEMENTS.c.state == "pending")
    values: dict[str, Any] = {"state": state, "updated_at": utcnow(), "error": error}
    if order_number is not None:
        values["order_number"] = order_number
    await session.execute(stmt.values(**values))


async def release(session: AsyncSession, reference: str) -> None:
    """Forget a claim whose call certainly created nothing, so the shop may try again."""
    await session.execute(
        delete(PLACEMENTS).where(
            PLACEMENTS.c.reference == reference, PLACEMENTS.c.state.in_(("pending", "unknown"))
        )
    )


async def get_placement(session: AsyncSession, reference: str) -> Placement | None:
    row = (
        (await session.execute(select(PLACEMENTS).where(PLACEMENTS.c.reference == reference)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Placement(row["state"], row["reference"], row["order_number"])


def _existing_answer(
    row: dict[str, Any], key: str | None, reference: str, digest: str
) -> Placement:
    if key is not None and row["idempotency_key"] == key and row["request_hash"] != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was first used with a different order body"
        )
    if row["reference"] == reference and row["request_hash"] != digest:
        raise _reference_in_use(reference, row["order_number"], row["state"])
    state = row["state"]
    if state == "pending" and utcnow() - row["created_at"] > STUCK_AFTER:
        state = "unknown"
    return Placement(state, row["reference"], row["order_number"])


def _reference_in_use(reference: str, order_number: str | None, state: str) -> ReferenceInUse:
    if order_number is not None:
        which = f"Printmotor order {order_number}"
    elif state == "pending":
        which = "a placement in progress"
    else:
        which = "a placement whose outcome is not known yet"
    return ReferenceInUse(
        f"meta.reference {reference!r} already belongs to {which}, placed with a different "
        "order body. Nothing was sent to Printmotor: use a new reference for a new order, "
        "or send the earlier body to get the earlier order.",
        reference=reference,
        orderNumber=order_number,
        state=state,
    )


def raise_for(placement: Placement) -> None:
    """Tell the caller why there is no order to show (yet)."""
    if placement.state == "pending":
        raise PlacementInProgress(
            "another request is placing this order; ask again in a moment",
            headers={"Retry-After": "2"},
            reference=placement.reference,
            state="pending",
        )
    if placement.state == "unknown":
        raise PlacementOutcomeUnknown(
            "the call to Printmotor ended without a clear answer, so the order may exist. "
            "printhook will not send it again: it resolves the placement when a Printmotor "
            "webhook with this meta.reference arrives, or when an operator runs "
            "`printhook printmotor resolve-placement`. Ask again later.",
            reference=placement.reference,
            state="unknown",
        )


async def _unknown(ctx: AppContext, reference: str, reason: str) -> None:
    async with ctx.session_factory() as session:
        await mark(session, reference, "unknown", error=reason, only_if_pending=True)
        await session.commit()
    log.warning("printmotor.placement.unknown", extra={"reference": reference, "reason": reason})


async def _place(ctx: AppContext, order: dict[str, Any], reference: str) -> Placement:
    async with ctx.session_factory() as session:
        known = await session.scalar(
            select(ORDERS.c.order_number).where(ORDERS.c.reference == reference).limit(1)
        )
        if known is not None:
            # Printmotor already told us about an order with this reference that printhook did
            # not place (made by hand in Printmotor's UI): it must not be sent again, and its
            # body is unknown, so it cannot be this request's order either.
            await release(session, reference)
            await session.commit()
            log.info(
                "printmotor.placement.reference_in_use",
                extra={"reference": reference, "order_number": known},
            )
            raise ReferenceInUse(
                f"meta.reference {reference!r} already belongs to Printmotor order {known}, "
                "which was not placed through printhook. Nothing was sent to Printmotor: use "
                "a new reference for a new order.",
                reference=reference,
                orderNumber=known,
                state="placed",
            )
    try:
        answer = await pm.PrintmotorClient(ctx.http, ctx.settings).create_order(order)
    except (pm.Rejected, pm.Throttled, pm.NotSent, pm.NotConfigured) as exc:
        async with ctx.session_factory() as session:
            await release(session, reference)
            await session.commit()
        log.info(
            "printmotor.placement.refused",
            extra={"reference": reference, "error_class": type(exc).__name__},
        )
        raise _problem_for(exc) from None
    except pm.OutcomeUnknown as exc:
        await _unknown(ctx, reference, str(exc))
        return Placement("unknown", reference, None)
    except asyncio.CancelledError:
        await asyncio.shield(_unknown(ctx, reference, "cancelled while calling Printmotor"))
        raise
    try:
        obs = parse_user_order(
            answer,
            event_type=None,
            implied_status="received",
            tz=zone(ctx.settings.printmotor_timezone),
        )
    except ValueError:
        await _unknown(ctx, reference, "Printmotor's answer has no orderNumber")
        return Placement("unknown", reference, None)
    async with ctx.session_factory() as session:
        await apply_observation(session, obs, stale_after=ctx.settings.printmotor_stale_after)
        await mark(session, reference, "placed", order_number=obs.order_number)
        await session.commit()
    log.info(
        "printmotor.placement.placed",
        extra={"reference": reference, "order_number": obs.order_number},
    )
    return Placement("placed", reference, obs.order_number)


def _problem_for(exc: pm.PrintmotorError) -> ProblemError:
    if isinstance(exc, pm.Rejected):
        if exc.status in (401, 403):
            return PrintmotorAuthFailed(vendor_status=exc.status)
        return PrintmotorRejected(exc.message, vendor_status=exc.status)
    if isinstance(exc, pm.Throttled):
        return PrintmotorUnavailable(
            "Printmotor asks to slow down; nothing was placed, try again",
            headers={"Retry-After": str(int(exc.retry_after))},
        )
    if isinstance(exc, pm.NotConfigured):
        return PrintmotorNotConfigured(f"{exc}, then restart printhook; nothing was placed")
    return PrintmotorUnavailable("Printmotor could not be reached; nothing was placed")


async def place_order(ctx: AppContext, order: dict[str, Any], key: str | None) -> Placement:
    """Place `order` at Printmotor at most once per reference and Idempotency-Key.

    Returns the placement (state `placed` with its order number, or `unknown`/`pending` for
    the caller to report). Raises a ProblemError when Printmotor refused it (nothing placed).
    """
    reference = str(order["meta"]["reference"])
    digest = request_hash(order)
    for _ in range(5):
        async with ctx.session_factory() as session:
            mine, row = await claim(
                session, key=key, reference=reference, digest=digest, order=order
            )
            await session.commit()
        if mine:
            return await _place(ctx, order, reference)
        if row is not None:
            return _existing_answer(row, key, reference, digest)
        # The other claim was released between our insert and our read: try again.
    raise PlacementInProgress("the placement is changing hands; ask again in a moment")


async def resolve_placement(ctx: AppContext, reference: str, order_number: str | None) -> str:
    """Settle a placement by hand: it became order `order_number`, or (None) nothing was
    placed and the shop may place it again. Returns `placed` or `released`."""
    if order_number is not None:
        try:
            order_number = order_number_of(order_number)
        except InvalidPayload as exc:
            raise LookupError(f"--order-number: {exc}") from None
    async with ctx.session_factory() as session:
        placement = await get_placement(session, reference)
    if placement is None:
        raise LookupError(f"no placement with reference {reference!r}")
    if order_number is None:
        if placement.state == "placed":
            raise LookupError(f"placement {reference!r} is placed as {placement.order_number}")
        async with ctx.session_factory() as session:
            await release(session, reference)
            await session.commit()
        log.warning("printmotor.placement.released", extra={"reference": reference})
        return "released"
    obs = Observation(order_number=order_number, status="received", reference=reference)
    try:
        answer = await pm.PrintmotorClient(ctx.http, ctx.settings).get_order(order_number)
        obs = parse_user_order(
            answer,
            event_type=None,
            implied_status="received",
            tz=zone(ctx.settings.printmotor_timezone),
            read_back=True,
        )
    except (pm.PrintmotorError, InvalidPayload) as exc:
        # The operator saw the order in Printmotor's UI; the read-back will fill in details.
        log.warning(
            "printmotor.placement.resolve_read_failed",
            extra={"reference": reference, "error_class": type(exc).__name__},
        )
    async with ctx.session_factory() as session:
        await apply_observation(session, obs, stale_after=ctx.settings.printmotor_stale_after)
        await mark(session, reference, "placed", order_number=order_number)
        await session.commit()
    log.warning(
        "printmotor.placement.resolved",
        extra={"reference": reference, "order_number": order_number},
    )
    return "placed"
