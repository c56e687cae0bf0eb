"""Receiving a Printess callback: authenticate, store the raw bytes, then apply.

This use case owns its transactions (like the reconciler): with verification on, the callback
is stored and committed first, Printess is asked outside any transaction, and the answer is
applied in a second one. The caller answers 200 only after `handle_callback` returns, i.e. after
everything it did is committed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import ratelimit
from app.config import Settings
from app.context import AppContext
from app.db import utcnow
from app.inbound.service import record_inbound, set_outcome
from app.printess import service
from app.printess.client import PrintessClient, PrintessError, PrintessThrottled
from app.printess.models import PrintessJob, PrintessSubmission
from app.printess.schemas import JobStatus, PayloadError, parse_status, parse_status_bytes

log = logging.getLogger("printhook.printess.callback")

STATUS_BUDGET = "printess.status"
# A callback waits at most this long for a status/get slot; beyond it the reconciler finishes.
MAX_SLOT_WAIT = 1.0


class CallbackUnauthorized(Exception):
    """The token in the URL is neither a per-job token nor the shared callback secret."""


class CallbackRejected(Exception):
    """An authenticated callback that cannot be applied (stored as rejected)."""


@dataclass(frozen=True)
class CallbackAuth:
    # The job a per-job token belongs to, when it is known already.
    job_id: str | None
    reference: str | None = None
    template_name: str | None = None
    # A submission whose produce answer has not been stored (yet): the callback came first.
    open_submission_id: int | None = None


async def authenticate(session: AsyncSession, settings: Settings, token: str) -> CallbackAuth:
    """Look the token up by its sha256 (an index lookup on a hash reveals nothing about the
    token), or compare it with the shared secret in constant time."""
    if 0 < len(token) <= 512:
        digest = service.hash_token(token)
        job_id = await session.scalar(
            select(PrintessJob.job_id).where(PrintessJob.callback_token_hash == digest)
        )
        if job_id is not None:
            return CallbackAuth(job_id=job_id)
        submission = await session.scalar(
            select(PrintessSubmission).where(PrintessSubmission.callback_token_hash == digest)
        )
        if submission is not None:
            return CallbackAuth(
                job_id=submission.job_id,
                reference=submission.reference,
                template_name=submission.template_name,
                open_submission_id=submission.id if submission.state == "in_flight" else None,
            )
    secret = settings.printess_callback_secret
    if secret is not None and hmac.compare_digest(
        token.encode(), secret.get_secret_value().encode()
    ):
        return CallbackAuth(job_id=None)
    raise CallbackUnauthorized


def dedupe_key(body: bytes) -> str:
    """The same bytes are the same callback, whichever valid token carried them."""
    return "callback:" + hashlib.sha256(body).hexdigest()


async def handle_callback(
    ctx: AppContext, session: AsyncSession, auth: CallbackAuth, body: bytes
) -> str:
    """Process one authenticated callback; return its outcome (applied, unchanged, duplicate,
    deferred). Raises CallbackRejected (stored as rejected). Database errors propagate, so the
    vendor gets 503 and retries.
    """
    status: JobStatus | None = None
    error: str | None = None
    try:
        status = parse_status_bytes(body)
    except PayloadError as exc:
        error = str(exc)
    if status is not None and auth.job_id is not None and status.job_id != auth.job_id:
        error, status = "the callback token belongs to another job", None
    inbound_id = await record_inbound(
        session,
        source="printess",
        dedupe_key=dedupe_key(body),
        body=body,
        outcome="received" if status is not None else "rejected",
        subject_id=status.job_id if status is not None else None,
        event_type="callback",
        error=error,
    )
    if inbound_id is None:
        await session.commit()
        return "duplicate"
    if status is None:
        await session.commit()
        raise CallbackRejected(error)
    job, _ = await service.ensure_job(
        session,
        status.job_id,
        event_type="printess.job.tracked",
        reference=auth.reference or status.external_order_id,
        template_name=auth.template_name or status.template_name,
        printess_order_id=status.order_id,
        next_poll_at=utcnow(),
        inbound_event_id=inbound_id,
    )
    if auth.open_submission_id is not None:
        # The produce answer may never be stored (crash, database outage): the callback tells
        # us the jobId, so repeats of the submission find the job.
        await session.execute(
            update(PrintessSubmission)
            .where(
                PrintessSubmission.id == auth.open_submission_id,
                PrintessSubmission.state == "in_flight",
            )
            .values(state="done", job_id=status.job_id, updated_at=utcnow())
        )
    if not ctx.settings.verify_printess_callbacks or job.is_final:
        # Verification off: the body is applied as sent. A final job changes for no one.
        changed = await service.apply_status(
            session, job, status, finalized_by="callback", inbound_event_id=inbound_id
        )
        outcome = "applied" if changed else "unchanged"
        await set_outcome(session, inbound_id, outcome)
        await session.commit()
        return outcome

    # Verification on: the body is a trigger. Commit it as deferred first, so that if asking
    # Printess fails (or we crash), the event is durable and the reconciler finishes the job.
    await set_outcome(session, inbound_id, "deferred")
    await session.commit()
    answer = await _read_status(ctx, status.job_id)
    locked = await service.lock_job(session, status.job_id)
    assert locked is not None
    if answer is None or answer.job_id != status.job_id:
        if not locked.is_final:
            locked.next_poll_at = utcnow()
        await session.commit()
        return "deferred"
    changed = await service.apply_status(
        session, locked, answer, finalized_by="callback", inbound_event_id=inbound_id
    )
    outcome = "applied" if changed else "unchanged"
    await set_outcome(session, inbound_id, outcome)
    await session.commit()
    return outcome


async def _read_status(ctx: AppContext, job_id: str) -> JobStatus | None:
    """Ask status/get within the shared budget; None when that is not possible right now."""
    factory = ctx.session_factory
    if await ratelimit.paused_until(factory, STATUS_BUDGET) is not None:
        return None
    wait = await ratelimit.reserve_slot(factory, STATUS_BUDGET, ctx.settings.printess_status_rate)
    if wait > MAX_SLOT_WAIT:
        return None
    if wait:
        await asyncio.sleep(wait)
    try:
        return parse_status(await PrintessClient(ctx.http, ctx.settings).get_status(job_id))
    except PrintessThrottled as exc:
        await ratelimit.pause(factory, STATUS_BUDGET, exc.retry_after)
        log.info("printess.callback.deferred", extra={"job_id": job_id, "reason": "throttled"})
    except (PrintessError, PayloadError) as exc:
        log.info(
            "printess.callback.deferred",
            extra={"job_id": job_id, "reason": type(exc).__name__},
        )
    return None
