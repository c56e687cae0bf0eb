"""Submitting a render job through printhook, at most once per `Idempotency-Key`.

The submission row (with the key and the callback token's hash) is committed BEFORE produce is
called: a concurrent or later repeat finds the claim and never calls produce again, and a callback
that beats the produce answer is recognised by its token. Produce runs outside any transaction.

Produce is billed and not idempotent, so it is sent once. When its outcome is unknown (timeout,
5xx, connection lost after sending) the submission stays open with `outcome_unknown_at` set and
the shop gets 202 `submission-outcome-unknown`. If Printess did enqueue the job, its callback
(carrying this submission's token) records the job and settles the submission; a repeat with
the same Idempotency-Key then returns the job. printhook never resends produce for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import AppContext
from app.db import dialect_insert, utcnow
from app.errors import (
    Conflict,
    IdempotencyKeyReused,
    ProblemError,
    ServiceUnavailable,
    Unprocessable,
    UpstreamError,
)
from app.printess import service
from app.printess.client import (
    PrintessClient,
    PrintessError,
    PrintessOutcomeUnknown,
    PrintessRejected,
    PrintessThrottled,
)
from app.printess.models import PrintessJob, PrintessSubmission
from app.printess.schemas import (
    REFERENCE_MAX,
    TEMPLATE_NAME_MAX,
    PayloadError,
    check_storable,
    has_bad_characters,
)

log = logging.getLogger("printhook.printess.submit")

# A repeat that arrives while the first request is still calling Printess waits this long for
# its answer before being told to retry.
IN_FLIGHT_WAIT = 5.0
# No produce call (timeouts and retries included) lasts this long: a claim still in flight
# after it was cut off by a crash or restart, and what Printess did with it is unknown.
IN_FLIGHT_ABANDONED_AFTER = timedelta(minutes=5)


class PrintessPaymentRequired(ProblemError):
    status, slug, title = 402, "printess-payment-required", "Printess: insufficient funds"


class SubmissionOutcomeUnknown(ProblemError):
    """Printess may have enqueued the job; its callback will tell. Not an error the shop should
    retry with a new key: 202, and a repeat with the same key returns the job once known."""

    status, slug, title = 202, "submission-outcome-unknown", "The submission's outcome is unknown"


class PrintessNotAccepted(ProblemError):
    status, slug, title = 422, "printess-not-accepted", "Printess did not accept the job"


def _request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _validate(body: dict[str, Any], idempotency_key: str | None) -> str | None:
    """Refuse (422) what printhook could not store or track, before anything is sent to
    Printess. Returns the job's reference (the shop's own, else externalOrderId)."""
    if idempotency_key is not None and (
        len(idempotency_key) > 255 or has_bad_characters(idempotency_key)
    ):
        raise Unprocessable("Idempotency-Key must be at most 255 characters, without NUL")
    try:
        check_storable(body)
    except PayloadError as exc:
        raise Unprocessable(f"request body cannot be stored: {exc}") from None
    for name in ("templateName", "origin"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Unprocessable(f"{name} is required (a non-empty string)")
    for name, limit in (
        ("templateName", TEMPLATE_NAME_MAX),
        ("reference", REFERENCE_MAX),
        ("externalOrderId", REFERENCE_MAX),
    ):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise Unprocessable(f"{name} must be a string of at most {limit} characters")
    if body.get("meta") is not None and not isinstance(body.get("meta"), str):
        raise Unprocessable("meta must be a string (Printess echoes it in the callback)")
    reference = body.get("reference") or body.get("externalOrderId")
    return reference if isinstance(reference, str) and reference else None


def _outcome_unknown(submission: PrintessSubmission) -> SubmissionOutcomeUnknown:
    if submission.idempotency_key is not None:
        how = (
            "repeat this request with the same Idempotency-Key to get the job once Printess's "
            "callback has recorded it"
        )
    else:
        how = "the job will appear in GET /v1/printess/jobs and the change feed"
    return SubmissionOutcomeUnknown(
        "Printess's answer to produce was lost, so printhook does not know whether the job "
        "was enqueued, and will not call produce again for this submission (it is billed). "
        f"If Printess enqueued it, its callback records the job: {how}. If no job appears "
        "(Printess retries its callback for about a day), it was not enqueued: submit again "
        "with a new Idempotency-Key",
        headers={"Retry-After": "60"},
        submitted_at=submission.created_at.isoformat(),
        reference=submission.reference,
    )


def _problem(exc: PrintessError) -> ProblemError:
    if isinstance(exc, PrintessRejected):
        extra: dict[str, Any] = {"printess_status": exc.status, "printess_code": exc.code}
        if exc.status == 402:
            return PrintessPaymentRequired(exc.message, **extra)
        if exc.status == 406:
            return PrintessNotAccepted(exc.message, **extra)
        return UpstreamError(f"Printess refused the request with status {exc.status}", **extra)
    if isinstance(exc, PrintessThrottled):
        retry = str(max(1, round(exc.retry_after)))
        return ServiceUnavailable(
            "Printess is throttling; retry later", headers={"Retry-After": retry}
        )
    return UpstreamError(str(exc))


async def _claimed(session: AsyncSession, key: str) -> PrintessSubmission | None:
    submission: PrintessSubmission | None = await session.scalar(
        select(PrintessSubmission)
        .where(PrintessSubmission.idempotency_key == key)
        .execution_options(populate_existing=True)
    )
    return submission


async def _repeat(session: AsyncSession, key: str, request_hash: str) -> PrintessJob | None:
    """The job of an earlier request with this key, waiting briefly if it is in flight.
    None when the earlier attempt failed and freed the key meanwhile."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT
    while True:
        submission = await _claimed(session, key)
        await session.commit()
        if submission is None:
            return None
        if submission.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request body"
            )
        if submission.state == "done" and submission.job_id is not None:
            job = await service.get_job(session, submission.job_id)
            await session.commit()
            if job is not None:
                return job
        if submission.state == "in_flight" and (
            submission.outcome_unknown_at is not None
            or submission.created_at < utcnow() - IN_FLIGHT_ABANDONED_AFTER
        ):
            # Its answer was lost, or a crash cut it off. Resending could render the job
            # twice; the callback (its token is kept) settles this key if Printess has it.
            raise _outcome_unknown(submission)
        if time.monotonic() > deadline:
            raise Conflict(
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "2"},
            )
        await asyncio.sleep(0.1)


async def submit_job(
    ctx: AppContext, session: AsyncSession, body: dict[str, Any], idempotency_key: str | None
) -> tuple[PrintessJob, bool]:
    """Produce a job through Printess with printhook's callback URL; return (job, is_repeat).

    Commits its own transactions (claim, then result). Printess 402/406 become problems carrying
    Printess's message; the key is then freed so the shop may retry after fixing the cause.
    """
    client = PrintessClient(ctx.http, ctx.settings)
    if not client.is_configured:
        raise ServiceUnavailable(
            "printhook has no Printess service token (set PRINTHOOK_PRINTESS_SERVICE_TOKEN)"
        )
    reference = _validate(body, idempotency_key)
    request_hash = _request_hash(body)

    meta: str | None = body.get("meta") or None
    token = secrets.token_urlsafe(32)
    token_hash = service.hash_token(token)
    template_name = str(body["templateName"])
    while True:
        now = utcnow()
        submission_id = (
            await session.execute(
                dialect_insert(session, PrintessSubmission)
                .values(
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    callback_token_hash=token_hash,
                    reference=reference,
                    template_name=template_name,
                    state="in_flight",
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(PrintessSubmission.id)
            )
        ).scalar_one_or_none()
        await session.commit()
        if submission_id is not None:
            break
        assert idempotency_key is not None
        earlier = await _repeat(session, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, True
        # The earlier attempt failed and freed the key: claim it again.

    request = {k: v for k, v in body.items() if k != "reference"}
    request["callbackUrl"] = f"{ctx.settings.public_base_url}/callbacks/printess/{token}"
    try:
        result = await client.produce(request)
    except PrintessError as exc:
        log.warning(
            "printess.produce.failed",
            extra={"submission_id": submission_id, "error_class": type(exc).__name__},
        )
        submission = await session.get(PrintessSubmission, submission_id, populate_existing=True)
        assert submission is not None
        if submission.state == "done" and submission.job_id is not None:
            # Printess did enqueue it (its callback told us) even though the answer failed.
            job = await service.get_job(session, submission.job_id)
            await session.commit()
            if job is not None:
                return job, False
        if isinstance(exc, PrintessOutcomeUnknown):
            # Keep the key and the token: the callback settles it, a repeat waits for that.
            submission.outcome_unknown_at = utcnow()
            submission.error = str(exc)[:1000]
            submission.updated_at = utcnow()
            await session.commit()
            log.warning("printess.produce.outcome_unknown", extra={"submission_id": submission_id})
            raise _outcome_unknown(submission) from None
        # Printess refused, throttled or was never reached, so it has no job: free the key
        # for a retry (the token hash stays, should a callback come after all).
        submission.idempotency_key = None
        submission.state = "failed"
        submission.error = str(exc)[:1000]
        submission.updated_at = utcnow()
        await session.commit()
        raise _problem(exc) from None

    job, created = await service.ensure_job(
        session,
        result.job_id,
        event_type="printess.job.tracked",
        reference=reference,
        template_name=template_name,
        printess_order_id=result.order_id,
        callback_token_hash=token_hash,
        next_poll_at=utcnow() + ctx.settings.printess_first_poll_after,
        meta=meta,
    )
    if not created:
        # The callback beat the produce answer and created the job already.
        job.callback_token_hash = job.callback_token_hash or token_hash
        job.printess_order_id = job.printess_order_id or result.order_id
        job.meta = job.meta or meta
    submission = await session.get(PrintessSubmission, submission_id)
    assert submission is not None
    submission.state = "done"
    submission.job_id = result.job_id
    submission.updated_at = utcnow()
    await session.commit()
    log.info("printess.job.submitted", extra={"job_id": result.job_id})
    return job, False
