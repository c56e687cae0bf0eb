"""`POST /callbacks/printess/{token}`: the ack path and Printess's part of the applier.

The request authenticates the token (a short lookup, committed before the body is read, so no
transaction is held while a slow body trickles in), reads the body within the limit and the
deadline, checks it is a JSON object naming its job, stores the raw bytes as `pending` and
answers `200 {"ok":true,"eventId":<id>}`.

The applier then parses the callback and applies it through `service.apply_status`, the one
transition. With verification on (a service token is configured) the callback is only a
trigger: the job is re-read through status/get, waiting for a slot of the shared budget, and
identity fields (reference, orderId, templateName) come from printhook's own submission or
from status/get, never from the unsigned body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app import ratelimit
from app.context import AppContext
from app.db import utcnow
from app.errors import NotFound
from app.inbound.ack import (
    DatabaseUnavailable,
    RequestTimeout,
    Unusable,
    ack_response,
    json_object,
    read_body,
    subject_text,
)
from app.inbound.applier import Effect, PendingEvent, Reject
from app.inbound.ingest import Arrival, StoreUnavailable
from app.inbound.models import REJECTED
from app.ops.metrics import INBOUND_EVENTS, VENDOR_ACK_SECONDS
from app.printess import service
from app.printess.client import PrintessClient, PrintessError, PrintessThrottled
from app.printess.models import PrintessJob, PrintessSubmission
from app.printess.schemas import JobStatus, PayloadError, parse_status, parse_status_bytes

log = logging.getLogger("printhook.printess.callback")

SOURCE = "printess"
STATUS_BUDGET = "printess.status"
# Tokens longer than this are not ours: refused without a lookup.
MAX_TOKEN_LENGTH = 512
# A status/get batch should finish well within the applier's lease.
MAX_BATCH_SECONDS = 10.0


@dataclass(frozen=True)
class CallbackAuth:
    """Who the token says the callback is about; stored with the event as `auth_context`."""

    # "job:<jobId>" (a per-job token of a known job), "submission:<id>" (a per-job token whose
    # produce answer may not be stored yet) or "secret" (the shared callback secret).
    context: str
    job_id: str | None = None


async def authenticate(ctx: AppContext, token: str) -> CallbackAuth | None:
    """Look the token up by its sha256 (an index lookup on a hash reveals nothing about the
    token), or compare it with the shared secret in constant time. The lookup's transaction
    is over before the caller reads the body."""
    secret = ctx.settings.printess_callback_secret
    if secret is not None and hmac.compare_digest(
        token.encode(), secret.get_secret_value().encode()
    ):
        return CallbackAuth("secret")
    if not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    digest = service.hash_token(token)
    async with ctx.session_factory() as session:
        job_id = await session.scalar(
            select(PrintessJob.job_id).where(PrintessJob.callback_token_hash == digest)
        )
        submission = None
        if job_id is None:
            submission = (
                await session.execute(
                    select(PrintessSubmission.id, PrintessSubmission.job_id).where(
                        PrintessSubmission.callback_token_hash == digest
                    )
                )
            ).first()
        await session.commit()
    if job_id is not None:
        return CallbackAuth(f"job:{job_id}", job_id)
    if submission is not None:
        return CallbackAuth(f"submission:{submission.id}", submission.job_id)
    return None


def dedupe_key(body: bytes) -> str:
    """The same bytes are the same callback, whichever valid token carried them."""
    return "callback:" + hashlib.sha256(body).hexdigest()


def arrival_for(auth: CallbackAuth, body: bytes) -> Arrival:
    """What to store for an authenticated body: pending with its jobId, or rejected."""
    payload = json_object(body)
    try:
        if isinstance(payload, str):
            raise Unusable(payload)
        job_id = subject_text(payload.get("jobId"), "jobId", numbers=False)
        if auth.job_id is not None and job_id != auth.job_id:
            raise Unusable("the callback token belongs to another job")
    except Unusable as exc:
        return Arrival(
            SOURCE, dedupe_key(body), body, None, "callback", auth.context, REJECTED, exc.detail
        )
    return Arrival(SOURCE, dedupe_key(body), body, job_id, "callback", auth.context)


async def printess_callback(scope: Scope, receive: Receive) -> Response:
    """Authenticate and store one callback; `200 {"ok":true,"eventId":<id>}` once durable."""
    started = time.perf_counter()
    ctx: AppContext = scope["app"].state.ctx
    token: str = scope["path_params"]["token"]
    # The token is checked before the body is even read.
    auth = await authenticate(ctx, token)
    if auth is None:
        INBOUND_EVENTS.labels(SOURCE, "unauthorized").inc()
        log.warning("printess.callback.unauthorized")
        raise NotFound("no such callback")
    try:
        body = await read_body(receive, ctx.settings.body_timeout.total_seconds())
    except RequestTimeout:
        INBOUND_EVENTS.labels(SOURCE, "timeout").inc()
        raise
    arrival = arrival_for(auth, body)
    try:
        stored = await ctx.inbound.store(arrival)
    except StoreUnavailable as exc:
        INBOUND_EVENTS.labels(SOURCE, "unavailable").inc()
        log.warning("printess.callback.db_unavailable", extra={"error_class": str(exc)})
        raise DatabaseUnavailable("retry later", headers={"Retry-After": "5"}) from None
    if stored.state == REJECTED:
        INBOUND_EVENTS.labels(SOURCE, "rejected").inc()
        log.warning(
            "printess.callback.rejected",
            extra={"inbound_event_id": stored.event_id, "reason": arrival.error},
        )
        raise Unusable(arrival.error or "the callback is unusable", eventId=stored.event_id)
    if stored.is_duplicate:
        INBOUND_EVENTS.labels(SOURCE, "duplicate").inc()
    else:
        INBOUND_EVENTS.labels(SOURCE, "accepted").inc()
        ctx.notify_arrival()
    VENDOR_ACK_SECONDS.labels(SOURCE).observe(time.perf_counter() - started)
    return ack_response(stored)


class _CallbackEndpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await printess_callback(scope, receive)
        await response(scope, receive, send)


callback_route = Route("/callbacks/printess/{token}", _CallbackEndpoint(), methods=["POST"])


# --- the applier's part ------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    callback: JobStatus
    # The verified status/get answer (verification on and the job not final yet).
    verified: JobStatus | None
    # Verification could not happen now: the job is tracked and the reconciler polls it then.
    deferred: Deferred | None = None


@dataclass(frozen=True)
class Deferred:
    reason: str
    poll_at: datetime


class PrintessApplier:
    """Printess's part of the applier: parse a stored callback, verify it, apply it."""

    source = SOURCE

    def batch_limit(self, ctx: AppContext) -> int:
        if not ctx.settings.verify_printess_callbacks:
            return ctx.settings.apply_batch_size
        # Each event may wait for a status/get slot: keep a batch well inside its lease.
        per_batch = int(ctx.settings.printess_status_rate * MAX_BATCH_SECONDS)
        return max(1, min(ctx.settings.apply_batch_size, per_batch))

    async def prepare(self, ctx: AppContext, event: PendingEvent) -> Prepared:
        assert event.body is not None
        try:
            callback = parse_status_bytes(event.body)
        except PayloadError as exc:
            raise Reject(str(exc)) from None
        if not ctx.settings.verify_printess_callbacks:
            return Prepared(callback, None)
        async with ctx.session_factory() as session:
            status = await session.scalar(
                select(PrintessJob.status).where(PrintessJob.job_id == callback.job_id)
            )
            await session.commit()
        if status is not None and status != "pending":
            return Prepared(callback, None)  # final already: nothing to verify
        answer = await _read_status(ctx, callback.job_id)
        if isinstance(answer, Deferred):
            return Prepared(callback, None, answer)
        return Prepared(callback, answer)

    async def apply(
        self, ctx: AppContext, session: AsyncSession, event: PendingEvent, prepared: Any
    ) -> Effect:
        assert isinstance(prepared, Prepared)
        return await apply_callback(ctx, session, event, prepared)


async def _read_status(ctx: AppContext, job_id: str) -> JobStatus | Deferred:
    """status/get within the shared budget: waits for a slot, then uses it.

    When Printess cannot be asked now (the budget is paused after a 429, or the call fails)
    the answer is Deferred: the job is tracked and the reconciler verifies it later, so a
    Printess outage never parks callbacks.
    """
    factory = ctx.session_factory
    paused = await ratelimit.paused_until(factory, STATUS_BUDGET)
    if paused is not None:
        return Deferred("Printess status/get is throttled", paused)
    await ratelimit.take_slot(factory, STATUS_BUDGET, ctx.settings.printess_status_rate)
    try:
        answer = parse_status(await PrintessClient(ctx.http, ctx.settings).get_status(job_id))
    except PrintessThrottled as exc:
        until = await ratelimit.pause(factory, STATUS_BUDGET, exc.retry_after)
        log.info("printess.callback.throttled", extra={"job_id": job_id})
        return Deferred("Printess status/get is throttled", until)
    except (PrintessError, PayloadError) as exc:
        log.info(
            "printess.callback.deferred",
            extra={"job_id": job_id, "reason": type(exc).__name__},
        )
        return Deferred(f"Printess status/get failed ({type(exc).__name__})", utcnow())
    if answer.job_id != job_id:
        return Deferred("Printess status/get answered for another job", utcnow())
    return answer


async def apply_callback(
    ctx: AppContext, session: AsyncSession, event: PendingEvent, prepared: Prepared
) -> Effect:
    """Create or find the job, settle its submission, apply the (verified) status."""
    callback = prepared.callback
    verify = ctx.settings.verify_printess_callbacks
    submission = await _submission(session, event.auth_context)
    if verify:
        # Identity comes from our own submission or from status/get, never from the body.
        reference = submission.reference if submission is not None else None
        template_name = submission.template_name if submission is not None else None
        order_id = None
    else:
        reference = submission.reference if submission is not None else callback.external_order_id
        template_name = (
            submission.template_name if submission is not None else callback.template_name
        )
        order_id = callback.order_id
    job, created = await service.ensure_job(
        session,
        callback.job_id,
        event_type="printess.job.tracked",
        reference=reference,
        template_name=template_name,
        printess_order_id=order_id,
        next_poll_at=utcnow(),
        inbound_event_id=event.id,
    )
    if submission is not None and submission.state == "in_flight":
        # The produce answer may never be stored (crash, database outage): the callback tells
        # us the jobId, so repeats of the submission find the job.
        await session.execute(
            update(PrintessSubmission)
            .where(PrintessSubmission.id == submission.id, PrintessSubmission.state == "in_flight")
            .values(state="done", job_id=callback.job_id, updated_at=utcnow())
        )
    deferred = prepared.deferred
    if deferred is not None:
        if not job.is_final and (job.next_poll_at is None or job.next_poll_at > deferred.poll_at):
            job.next_poll_at = deferred.poll_at
        return Effect(created, f"verification deferred to the reconciler: {deferred.reason}")
    status = callback if not verify else prepared.verified
    if status is None:
        # Verification on and the job was final when we looked: nothing to learn.
        return Effect(created)
    changed = await service.apply_status(
        session,
        job,
        status,
        finalized_by="replay" if event.is_replay else "callback",
        inbound_event_id=event.id,
        # Printess returns meta only in the callback: keep it when status/get has none.
        callback_meta=callback.meta,
    )
    return Effect(changed or created)


async def _submission(session: AsyncSession, auth_context: str | None) -> PrintessSubmission | None:
    if not auth_context or not auth_context.startswith("submission:"):
        return None
    try:
        submission_id = int(auth_context.removeprefix("submission:"))
    except ValueError:
        return None
    return await session.get(PrintessSubmission, submission_id)
