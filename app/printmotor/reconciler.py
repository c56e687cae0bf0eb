"""Healing missed webhooks: read back orders Printmotor has gone quiet about.

An order that is not done (received / in production) and has had no news for
PRINTHOOK_PRINTMOTOR_STALE_AFTER is due (`next_poll_at`, pushed forward by every webhook).
A pass leases a bounded batch (`FOR UPDATE SKIP LOCKED` on Postgres; SQLite's BEGIN IMMEDIATE
serialises claims), then reads each order with `GET /order/{orderNumber}` inside the shared
`printmotor.read` budget and applies the answer through the same transition as webhooks, one
transaction per order. Only RECEIVED and IN_PRODUCTION mean Printmotor still works on an
order: any other processingStatus flags it done (see transition.py), and it is not read back
again. A 429 pauses the budget for every replica and ends the pass. Failed
reads back off per order. Leases not yet used are given back when the pass ends or is cancelled.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update

from app import leases, ratelimit
from app.background import PassSummary, PeriodicTask
from app.context import AppContext
from app.db import utcnow
from app.ops.metrics import RECONCILER_POLLS
from app.printmotor import client as pm
from app.printmotor.models import PrintmotorOrder
from app.printmotor.service import InvalidPayload, apply_observation, parse_user_order, zone
from app.printmotor.transition import OPEN_STATUSES

log = logging.getLogger("printhook.printmotor.reconciler")

READ_BUDGET = "printmotor.read"
BATCH_SIZE = 50
VENDOR = "printmotor"
_warned_unconfigured = False


def backoff(attempts: int, settings_interval: float, cap: timedelta) -> timedelta:
    """After a failed read: the reconcile interval doubling per attempt, capped at the stale
    period, with ±20% jitter so orders that failed together spread out."""
    delay = min(cap.total_seconds(), settings_interval * 2 ** min(attempts, 20))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        PrintmotorOrder.status.in_(OPEN_STATUSES),
        PrintmotorOrder.done_at.is_(None),
        PrintmotorOrder.next_poll_at.is_not(None),
        PrintmotorOrder.next_poll_at <= now,
        leases.lease_is_free(PrintmotorOrder, now),
    ]


async def _abandon_old(ctx: AppContext, summary: PassSummary) -> None:
    """Stop reading back orders older than RECONCILE_MAX_AGE (logged and counted)."""
    now = utcnow()
    async with ctx.session_factory() as session:
        numbers = list(
            (
                await session.scalars(
                    select(PrintmotorOrder.order_number)
                    .where(
                        *_due(now),
                        PrintmotorOrder.created_at < now - ctx.settings.reconcile_max_age,
                    )
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if numbers:
            await session.execute(
                update(PrintmotorOrder)
                .where(PrintmotorOrder.order_number.in_(numbers))
                .values(next_poll_at=None)
            )
        await session.commit()
    for number in numbers:
        RECONCILER_POLLS.labels(VENDOR, "abandoned").inc()
        log.warning("printmotor.order.abandoned", extra={"order_number": number})
    summary.abandoned += len(numbers)


async def _claim(ctx: AppContext, pass_started: datetime) -> list[str]:
    """Lease a batch of orders that were due when the pass started."""
    return await leases.claim(
        ctx,
        PrintmotorOrder.order_number,
        where=[*_due(utcnow()), PrintmotorOrder.next_poll_at <= pass_started],
        order_by=[PrintmotorOrder.next_poll_at, PrintmotorOrder.order_number],
        limit=BATCH_SIZE,
        lease=timedelta(seconds=BATCH_SIZE / ctx.settings.printmotor_read_rate)
        + ctx.settings.lease_grace,
    )


async def release_leases(ctx: AppContext, numbers: list[str]) -> None:
    """Give back leases this process holds on `numbers`."""
    await leases.release(ctx, PrintmotorOrder.order_number, numbers)


async def _read_back(
    ctx: AppContext, client: pm.PrintmotorClient, number: str, summary: PassSummary
) -> None:
    """Read one leased order and apply the answer in its own transaction."""
    settings = ctx.settings
    await ratelimit.take_slot(ctx.session_factory, READ_BUDGET, settings.printmotor_read_rate)
    error: str | None = None
    obs = None
    try:
        obs = parse_user_order(
            await client.get_order(number),
            event_type=None,
            tz=zone(settings.printmotor_timezone),
            read_back=True,
        )
        if obs.order_number != number:
            error = "answer is about another order"
    except pm.Throttled:
        raise
    except (pm.PrintmotorError, InvalidPayload) as exc:
        error = type(exc).__name__
    summary.polled += 1
    now = utcnow()
    async with ctx.session_factory() as session:
        outcome = "error"
        if error is None and obs is not None:
            outcome = await apply_observation(
                session, obs, stale_after=settings.printmotor_stale_after
            )
            values: dict[str, object] = {}
        else:
            attempts = (
                await session.scalar(
                    select(PrintmotorOrder.poll_attempts)
                    .where(PrintmotorOrder.order_number == number)
                    .with_for_update()
                )
                or 0
            ) + 1
            values = {
                "poll_attempts": attempts,
                "next_poll_at": now
                + backoff(attempts, settings.reconcile_interval, settings.printmotor_stale_after),
            }
        await session.execute(
            update(PrintmotorOrder)
            .where(PrintmotorOrder.order_number == number)
            .values(last_polled_at=now, lease_owner=None, leased_until=None, **values)
        )
        await session.commit()
    label = {"applied": "changed", "unchanged": "unchanged"}.get(outcome, "error")
    RECONCILER_POLLS.labels(VENDOR, label).inc()
    if error:
        summary.errors += 1
        log.warning("reconciler.poll.failed", extra={"order_number": number, "error": error})
    elif outcome == "applied":
        summary.changed += 1
        log.info("printmotor.order.healed", extra={"order_number": number})
    else:
        summary.unchanged += 1


async def run_once(ctx: AppContext) -> PassSummary:
    """One pass: every order due when it starts is read back once, unless throttled."""
    global _warned_unconfigured
    summary = PassSummary()
    settings = ctx.settings
    if not (settings.printmotor_username and settings.printmotor_password):
        if not _warned_unconfigured:
            _warned_unconfigured = True
            log.info("reconciler.printmotor.disabled", extra={"reason": "no credentials"})
        summary.skipped = "no Printmotor credentials"
        return summary
    if await ratelimit.paused_until(ctx.session_factory, READ_BUDGET) is not None:
        summary.skipped = "throttled by Printmotor"
        return summary
    client = pm.PrintmotorClient(ctx.http, settings)
    pass_started = utcnow()
    await _abandon_old(ctx, summary)
    held: list[str] = []
    try:
        while held := await _claim(ctx, pass_started):
            while held:
                await _read_back(ctx, client, held[0], summary)
                held.pop(0)
    except pm.Throttled as exc:
        summary.throttled = True
        RECONCILER_POLLS.labels(VENDOR, "throttled").inc()
        await ratelimit.pause(ctx.session_factory, READ_BUDGET, exc.retry_after)
        log.info("reconciler.poll.throttled", extra={"retry_after": exc.retry_after})
    finally:
        # Also on cancellation (shutdown): unread orders stay due for whoever runs next.
        await release_leases(ctx, held)
    if summary.polled or summary.abandoned:
        log.info("printmotor.reconciler.pass", extra=summary.as_dict())
    return summary


def reconciler_task(ctx: AppContext) -> PeriodicTask:
    return PeriodicTask("printmotor-reconciler", ctx.settings.reconcile_interval, run_once)
