"""HTTP for Printess: the shop's job API (the vendor callback is in `callbacks.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Response

from app.deps import ContextDep, SessionDep, ShopKey
from app.errors import NotFound
from app.hygiene import IDENTIFIER_PATTERN, path_segment
from app.openapi import problems
from app.pagination import PageQuery, check_status, encode_cursor, page_query, status_filter
from app.printess import service, submit
from app.printess.schemas import JOB_STATUSES, JobOut, JobPage, ProduceJobRequest, TrackJobRequest

router = APIRouter()

JobId = Annotated[str, Path(alias="jobId", **path_segment(128))]


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=IDENTIFIER_PATTERN,
        description="Repeats with the same key answer the first job; Printess is called once.",
    ),
]
JOB_LINK = {
    "GetJob": {
        "operationId": "getPrintessJob",
        "parameters": {"jobId": "$response.body#/jobId"},
        "description": "The job just submitted or tracked.",
    }
}


@router.post(
    "/v1/printess/jobs",
    status_code=201,
    response_model=JobOut,
    tags=["printess"],
    operation_id="submitPrintessJob",
    responses={
        201: {
            "links": JOB_LINK,
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when this answers an earlier request with the key.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        },
        **problems(402, 409, 502, 503),
    },
)
async def submit_job(
    _: ShopKey,
    ctx: ContextDep,
    session: SessionDep,
    response: Response,
    body: ProduceJobRequest,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Produce a render job through Printess; printhook sets `callbackUrl` itself."""
    job, repeated = await submit.submit_job(ctx, session, body.produce_body(), idempotency_key)
    if repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return JobOut.of(job)


@router.put(
    "/v1/printess/jobs/{jobId}",
    response_model=JobOut,
    tags=["printess"],
    operation_id="trackPrintessJob",
    responses={
        200: {"description": "Already tracked", "links": JOB_LINK},
        201: {"description": "Now tracked", "model": JobOut, "links": JOB_LINK},
        **problems(503),
    },
)
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


@router.get(
    "/v1/printess/jobs/{jobId}",
    response_model=JobOut,
    tags=["printess"],
    operation_id="getPrintessJob",
    responses=problems(404, 503),
)
async def get_job(_: ShopKey, job_id: JobId, session: SessionDep) -> JobOut:
    job = await service.get_job(session, job_id)
    if job is None:
        raise NotFound("no such job")
    return JobOut.of(job)


@router.get(
    "/v1/printess/jobs",
    response_model=JobPage,
    tags=["printess"],
    operation_id="listPrintessJobs",
    responses=problems(503),
)
async def list_jobs(
    _: ShopKey,
    session: SessionDep,
    page: Annotated[PageQuery, Depends(page_query)],
    status: Annotated[str | None, status_filter(JOB_STATUSES, "Only jobs in this state.")] = None,
    reference: Annotated[
        str | None, Query(min_length=1, max_length=255, pattern=IDENTIFIER_PATTERN)
    ] = None,
) -> JobPage:
    """Jobs ordered by (updatedAt, jobId); follow `nextCursor` until it is null."""
    jobs = await service.list_jobs(
        session,
        status=check_status(status, JOB_STATUSES),
        reference=reference,
        updated_after=page.updated_after,
        after=page.after,
        limit=page.limit,
    )
    next_cursor = (
        encode_cursor(jobs[-1].updated_at, jobs[-1].job_id) if len(jobs) == page.limit else None
    )
    return JobPage(items=[JobOut.of(job) for job in jobs], next_cursor=next_cursor)
