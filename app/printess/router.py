"""HTTP for Printess: the shop's job API (the vendor callback is in `callbacks.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Response

from app.deps import ContextDep, SessionDep, ShopKey
from app.errors import BadRequest, NotFound
from app.printess import service, submit
from app.printess.schemas import JobOut, JobPage, TrackJobRequest, decode_cursor, encode_cursor

router = APIRouter()

JobId = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/v1/printess/jobs", status_code=201, response_model=JobOut, tags=["printess"])
async def submit_job(
    _: ShopKey,
    ctx: ContextDep,
    session: SessionDep,
    response: Response,
    body: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JobOut:
    """Produce a render job through Printess; printhook sets `callbackUrl` itself."""
    job, repeated = await submit.submit_job(ctx, session, body, idempotency_key)
    if repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return JobOut.of(job)


@router.put("/v1/printess/jobs/{job_id}", response_model=JobOut, tags=["printess"])
async def track_job(
    _: ShopKey,
    job_id: JobId,
    ctx: ContextDep,
    session: SessionDep,
    response: Response,
    body: Annotated[TrackJobRequest | None, Body()] = None,
) -> JobOut:
    """Track a job the shop submitted itself: 201 when new, 200 when already tracked."""
    reference = body.reference if body is not None else None
    job, created = await service.track_job(
        session, job_id, reference, first_poll_after=ctx.settings.printess_first_poll_after
    )
    await session.commit()
    response.status_code = 201 if created else 200
    return JobOut.of(job)


@router.get("/v1/printess/jobs/{job_id}", response_model=JobOut, tags=["printess"])
async def get_job(_: ShopKey, job_id: JobId, session: SessionDep) -> JobOut:
    job = await service.get_job(session, job_id)
    if job is None:
        raise NotFound("no such job")
    return JobOut.of(job)


@router.get("/v1/printess/jobs", response_model=JobPage, tags=["printess"])
async def list_jobs(
    _: ShopKey,
    session: SessionDep,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    reference: Annotated[str | None, Query(max_length=255)] = None,
    updated_after: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobPage:
    """Jobs ordered by (updatedAt, jobId); follow `nextCursor` until it is null."""
    if updated_after is not None and updated_after.tzinfo is None:
        raise BadRequest("updated_after needs a time zone (e.g. 2026-11-23T18:00:00Z)")
    try:
        after = decode_cursor(cursor) if cursor else None
    except ValueError:
        raise BadRequest("cursor is not valid; use a nextCursor from this API") from None
    jobs = await service.list_jobs(
        session,
        status=status,
        reference=reference,
        updated_after=updated_after,
        after=after,
        limit=limit,
    )
    next_cursor = (
        encode_cursor(jobs[-1].updated_at, jobs[-1].job_id) if len(jobs) == limit else None
    )
    return JobPage(items=[JobOut.of(job) for job in jobs], next_cursor=next_cursor)
