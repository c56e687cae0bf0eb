"""Healing lost callbacks: poll status/get for non-final jobs that are due, within a budget.

A pass claims a bounded batch of due jobs with a lease (`FOR UPDATE SKIP LOCKED` on Postgres;
SQLite's BEGIN IMMEDIATE serialises claims), commits, then polls each job in its own transaction
through the same transition as callbacks. Only jobs due when the pass started are claimed, so a
job is polled at most once per pass, and a leased job is never claimed by another replica.
Every status/get waits for a slot of the shared `printess.status` budget; a 429 pauses that
budget for every replica and ends the pass.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select

from app import leases, ratelimit
from app.background import PassSummary, PeriodicTask
from app.context import AppContext
from app.db import utcnow
from app.feed.service import append_event
from app.ops.metrics import RECONCILER_POLLS
from app.printess import service
from app.printess.client import PrintessClient, PrintessError, PrintessThrottled
from app.printess.models import PrintessJob
from app.printess.schemas import PayloadError, job_event_data, parse_status

log = logging.getLogger("printhook.printess.reconciler")

STATUS_BUDGET = "printess.status"
BATCH_SIZE = 50
_warned_unconfigured = False


def next_poll_delay(attempts: int, first_poll_after: timedelta) -> timedelta:
    """Per-job backoff: PRINTHOOK_PRINTESS_FIRST_POLL_AFTER doubling per attempt up to an
    hour, with ±20% jitter so jobs created together spread out. status/get is for lost
    callbacks and restarts, not for following a render."""
    base = first_poll_after.total_seconds()
    delay = min(service.POLL_BACKOFF_CAP.total_seconds(), base * 2 ** min(attempts, 20))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [
        PrintessJob.status == "pending",
        PrintessJob.reconcile_abandoned_at.is_(None),
        PrintessJob.vanished_at.is_(None),
        PrintessJob.next_poll_at.is_not(None),
        PrintessJob.next_poll_at <= now,
        leases.lease_is_free(PrintessJob, now),
    ]


async def _abandon_old(ctx: AppContext, summary: PassSummary) -> None:
    """Flag jobs past RECONCILE_MAX_AGE and stop polling them (one event each)."""
    now = utcnow()
    cutoff = now - ctx.settings.reconcile_max_age
    async with ctx.session_factory() as session:
        jobs = (
            await session.scalars(
                select(PrintessJob)
                .where(*_due(now), PrintessJob.created_at < cutoff)
                .order_by(PrintessJob.created_at)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for job in jobs:
            job.reconcile_abandoned_at = now
            job.next_poll_at = None
            job.updated_at = now
            await session.flush()
            await append_event(
                session,
                subject_type=service.SUBJECT,
                subject_id=job.job_id,
                type="printess.job.abandoned",
                data=job_event_data(job),
            )
            RECONCILER_POLLS.labels("printess", "abandoned").inc()
            log.warning("printess.job.abandoned", extra={"job_id": job.job_id})
        await session.commit()
    summary.abandoned += len(jobs)


async def _claim(ctx: AppContext, pass_started: datetime) -> list[str]:
    """Lease a batch of jobs that were due when the pass started."""
    return await leases.claim(
        ctx,
        PrintessJob.job_id,
        where=[*_due(utcnow()), PrintessJob.next_poll_at <= pass_started],
        order_by=[PrintessJob.next_poll_at, PrintessJob.job_id],
        limit=BATCH_SIZE,
        lease=timedelta(seconds=BATCH_SIZE / ctx.settings.printess_status_rate)
        + ctx.settings.lease_grace,
    )


async def release_leases(ctx: AppContext, job_ids: list[str] | None = None) -> None:
    """Give back leases this process holds (all of them when `job_ids` is None)."""
    await leases.release(ctx, PrintessJob.job_id, job_ids)


async def _poll(ctx: AppContext, client: PrintessClient, job_id: str, summary: PassSummary) -> None:
    """Poll one leased job and apply the answer in its own transaction."""
    async with ctx.session_factory() as session:
        current = await session.scalar(
            select(PrintessJob.status).where(PrintessJob.job_id == job_id)
        )
        await session.commit()
    if current != "pending":
        # A callback finished it since the claim: no need to spend a status/get.
        await release_leases(ctx, [job_id])
        return
    await ratelimit.take_slot(ctx.session_factory, STATUS_BUDGET, ctx.settings.printess_status_rate)
    error: str | None = None
    status = None
    try:
        status = parse_status(await client.get_status(job_id))
    except PrintessThrottled:
        raise
    except (PrintessError, PayloadError) as exc:
        error = type(exc).__name__
    summary.polled += 1
    async with ctx.session_factory() as session:
        job = await service.lock_job(session, job_id)
        if job is None:
            return
        now = utcnow()
        # Bookkeeping first, so the event of a transition shows the job as it ends up.
        job.last_polled_at = now
        job.poll_attempts += 1
        job.lease_owner = None
        job.leased_until = None
        changed = False
        if status is not None and status.job_id == job_id:
            changed = await service.apply_status(session, job, status, finalized_by="reconcile")
            if status.is_unknown_job:
                changed = await service.record_unknown_answer(
                    session, job, vanished_after=ctx.settings.printess_vanished_after
                )
            elif not changed:
                job.unknown_answers = 0
        if not job.is_final and job.vanished_at is None:
            job.next_poll_at = now + next_poll_delay(
                job.poll_attempts, ctx.settings.printess_first_poll_after
            )
        await session.commit()
    outcome = "error" if error else ("changed" if changed else "unchanged")
    RECONCILER_POLLS.labels("printess", outcome).inc()
    if error:
        summary.errors += 1
        log.warning("reconciler.poll.failed", extra={"job_id": job_id, "error_class": error})
    elif changed:
        summary.changed += 1
    else:
        summary.unchanged += 1


async def run_once(ctx: AppContext) -> PassSummary:
    """One full pass: every job due now is polled once, unless Printess throttles us."""
    global _warned_unconfigured
    summary = PassSummary()
    client = PrintessClient(ctx.http, ctx.settings)
    if not client.is_configured:
        if not _warned_unconfigured:
            log.info("reconciler.printess.disabled", extra={"reason": "no service token"})
            _warned_unconfigured = True
        summary.skipped = "no Printess service token"
        return summary
    if await ratelimit.paused_until(ctx.session_factory, STATUS_BUDGET) is not None:
        summary.skipped = "throttled by Printess"
        return summary
    pass_started = utcnow()
    await _abandon_old(ctx, summary)
    try:
        while batch := await _claim(ctx, pass_started):
            for job_id in batch:
                await _poll(ctx, client, job_id, summary)
    except PrintessThrottled as exc:
        summary.throttled = True
        RECONCILER_POLLS.labels("printess", "throttled").inc()
        await ratelimit.pause(ctx.session_factory, STATUS_BUDGET, exc.retry_after)
        log.info("reconciler.poll.throttled", extra={"retry_after": exc.retry_after})
    finally:
        # Also on cancellation (shutdown): unpolled jobs stay due, and whoever runs next
        # (this or another replica) takes them at once instead of waiting for the lease.
        await release_leases(ctx)
    if summary.polled or summary.abandoned:
        log.info("reconciler.pass.done", extra=summary.as_dict())
    return summary


def reconciler_task(ctx: AppContext) -> PeriodicTask:
    return PeriodicTask("printess-reconciler", ctx.settings.reconcile_interval, run_once)
