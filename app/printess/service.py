"""Printess job rules: creating and tracking jobs, the one state transition, queries, replay.

Functions here take the session first and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, utcnow
from app.feed.service import append_event
from app.printess.models import PrintessJob
from app.printess.schemas import (
    JobStatus,
    job_event_data,
)

log = logging.getLogger("printhook.printess")

SUBJECT = "printess_job"
POLL_BACKOFF_CAP = timedelta(hours=1)


def hash_token(token: str) -> str:
    """Callback tokens are stored only as their sha256; the token itself lives in the URL."""
    return hashlib.sha256(token.encode()).hexdigest()


async def get_job(session: AsyncSession, job_id: str) -> PrintessJob | None:
    return await session.get(PrintessJob, job_id, populate_existing=True)


async def lock_job(session: AsyncSession, job_id: str) -> PrintessJob | None:
    """Load a job and lock its row until commit (SQLite's BEGIN IMMEDIATE already does)."""
    job: PrintessJob | None = await session.scalar(
        select(PrintessJob)
        .where(PrintessJob.job_id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return job


async def ensure_job(
    session: AsyncSession,
    job_id: str,
    *,
    event_type: str,
    next_poll_at: datetime | None,
    reference: str | None = None,
    template_name: str | None = None,
    printess_order_id: str | None = None,
    callback_token_hash: str | None = None,
    inbound_event_id: int | None = None,
    meta: str | None = None,
) -> tuple[PrintessJob, bool]:
    """Return the job, locked, creating it as `pending` if it is new (True when created).

    Concurrent creators are safe: `INSERT ... ON CONFLICT DO NOTHING` lets exactly one win,
    and only the winner records the creation event.
    """
    now = utcnow()
    created_id = (
        await session.execute(
            dialect_insert(session, PrintessJob)
            .values(
                job_id=job_id,
                reference=reference,
                printess_order_id=printess_order_id,
                template_name=template_name,
                status="pending",
                documents={},
                pictures=[],
                meta=meta,
                created_at=now,
                updated_at=now,
                callback_token_hash=callback_token_hash,
                next_poll_at=next_poll_at,
                poll_attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["job_id"])
            .returning(PrintessJob.job_id)
        )
    ).scalar_one_or_none()
    job = await lock_job(session, job_id)
    assert job is not None
    if created_id is not None:
        await append_event(
            session,
            subject_type=SUBJECT,
            subject_id=job_id,
            type=event_type,
            data=job_event_data(job),
            inbound_event_id=inbound_event_id,
        )
    return job, created_id is not None


async def apply_status(
    session: AsyncSession,
    job: PrintessJob,
    status: JobStatus,
    *,
    finalized_by: str,
    inbound_event_id: int | None = None,
    callback_meta: str | None = None,
) -> bool:
    """The one transition for callbacks, reconciler polls and replays.

    `pending` → `succeeded` | `failed`. A final job never changes again, and a non-final status
    changes nothing, so late, duplicate or out-of-order reports are harmless. Returns True
    when the job changed (and then exactly one event was appended).

    `meta`: status/get answers `result.meta: null`, so when the verified status has none the
    job keeps the meta it has (stored at submit), else takes `callback_meta`, the meta of the
    authenticated callback that triggered the verification. The raw `result` of the status
    that finalises the job is stored as it came.
    """
    if job.is_final or not status.is_final:
        return False
    now = utcnow()
    job.status = "succeeded" if status.is_success else "failed"
    if status.is_success:
        job.documents = dict(status.documents)
        job.pictures = list(status.pictures)
        job.error_text = None
    else:
        job.error_text = status.error_text or "Printess reported a failure without details"
    job.meta = status.meta or job.meta or callback_meta
    job.result = status.result
    job.unknown_answers = 0
    job.vanished_at = None
    job.printess_order_id = job.printess_order_id or status.order_id
    job.template_name = job.template_name or status.template_name
    job.finished_at = status.finished_at or now
    job.finalized_by = finalized_by
    job.updated_at = now
    job.next_poll_at = None
    await session.flush()
    await append_event(
        session,
        subject_type=SUBJECT,
        subject_id=job.job_id,
        type=f"printess.job.{job.status}",
        data=job_event_data(job),
        inbound_event_id=inbound_event_id,
    )
    log.info(
        "printess.job.finalized",
        extra={"job_id": job.job_id, "status": job.status, "finalized_by": finalized_by},
    )
    return True


async def record_unknown_answer(
    session: AsyncSession, job: PrintessJob, *, vanished_after: int
) -> bool:
    """status/get answered that Printess does not know the job. After `vanished_after` such
    answers in a row the job is flagged vanished, no longer polled, and one
    `printess.job.vanished` event is appended (returns True then)."""
    if job.is_final or job.vanished_at is not None:
        return False
    job.unknown_answers += 1
    if job.unknown_answers < vanished_after:
        return False
    now = utcnow()
    job.vanished_at = now
    job.next_poll_at = None
    job.updated_at = now
    await session.flush()
    await append_event(
        session,
        subject_type=SUBJECT,
        subject_id=job.job_id,
        type="printess.job.vanished",
        data=job_event_data(job),
    )
    log.warning(
        "printess.job.vanished", extra={"job_id": job.job_id, "answers": job.unknown_answers}
    )
    return True


async def track_job(
    session: AsyncSession, job_id: str, reference: str | None, *, first_poll_after: timedelta
) -> tuple[PrintessJob, bool]:
    """Start tracking a job the shop submitted itself (True when it was new). A given
    reference replaces the stored one. The first poll waits `first_poll_after`, giving
    Printess's callback its chance."""
    now = utcnow()
    job, created = await ensure_job(
        session,
        job_id,
        event_type="printess.job.tracked",
        reference=reference,
        next_poll_at=now + first_poll_after,
    )
    if not created and reference is not None and reference != job.reference:
        job.reference = reference
        job.updated_at = now
        await session.flush()
        await append_event(
            session,
            subject_type=SUBJECT,
            subject_id=job_id,
            type="printess.job.updated",
            data=job_event_data(job),
        )
    return job, created


async def list_jobs(
    session: AsyncSession,
    *,
    status: str | None,
    reference: str | None,
    updated_after: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[PrintessJob]:
    """Jobs in (updated_at, job_id) order, strictly after the cursor position `after`."""
    query = select(PrintessJob)
    if status is not None:
        query = query.where(PrintessJob.status == status)
    if reference is not None:
        query = query.where(PrintessJob.reference == reference)
    if updated_after is not None:
        query = query.where(PrintessJob.updated_at > updated_after)
    if after is not None:
        stamp, job_id = after
        query = query.where(
            or_(
                PrintessJob.updated_at > stamp,
                and_(PrintessJob.updated_at == stamp, PrintessJob.job_id > job_id),
            )
        )
    query = query.order_by(PrintessJob.updated_at, PrintessJob.job_id).limit(limit)
    return list((await session.scalars(query)).all())
