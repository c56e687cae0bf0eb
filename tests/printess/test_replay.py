"""Replaying stored Printess callbacks goes through the same transition, idempotently."""

from __future__ import annotations

from sqlalchemy import select

from app.context import AppContext
from app.inbound.models import InboundEvent
from app.inbound.replay import replay_event
from tests.printess.conftest import CALLBACK_SECRET, Printess, printess_settings
from tests.printess.helpers import events_of, inbound_outcomes, job_row
from tests.support.helpers import db_session, running_app


async def stored_event_ids(database_url: str) -> list[int]:
    async with db_session(database_url) as session:
        return list(await session.scalars(select(InboundEvent.id).order_by(InboundEvent.id)))


async def test_replaying_a_deferred_callback_finalises_the_job_once(
    database_url: str, printess: Printess
) -> None:
    sim_job = printess.sim.create_job(delay=0)
    body = printess.sim.callback_body(sim_job.job_id)
    # Printess unreachable while the callback arrives: it is stored as deferred.
    down = printess_settings(database_url, "http://127.0.0.1:9")
    async with running_app(down) as (_, client):
        answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=body)
    assert answer.status_code == 200
    [event_id] = await stored_event_ids(database_url)

    ctx = AppContext.create(printess_settings(database_url, printess.url))
    try:
        first = await replay_event(ctx, event_id)
        second = await replay_event(ctx, event_id)
    finally:
        await ctx.aclose()
    assert (first.outcome, second.outcome) == ("applied", "unchanged")
    job = await job_row(database_url, sim_job.job_id)
    assert job is not None
    assert job.status == "succeeded"
    assert job.finalized_by == "replay"
    assert await events_of(database_url, sim_job.job_id) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]
    assert await inbound_outcomes(database_url) == ["applied"]


async def test_replaying_an_applied_or_rejected_callback_changes_nothing(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with running_app(settings) as (_, client):
        await client.post(url, json={"jobId": "r-1", "isFailure": True, "failureDetails": "x"})
        await client.post(url, content=b"{broken")
    applied_id, rejected_id = await stored_event_ids(database_url)
    ctx = AppContext.create(settings)
    try:
        applied = await replay_event(ctx, applied_id)
        rejected = await replay_event(ctx, rejected_id)
    finally:
        await ctx.aclose()
    assert (applied.outcome, rejected.outcome) == ("unchanged", "rejected")
    job = await job_row(database_url, "r-1")
    assert job is not None
    assert job.status == "failed"
    assert job.finalized_by == "callback"
    assert await inbound_outcomes(database_url) == ["applied", "rejected"]
    assert await events_of(database_url, "r-1") == ["printess.job.tracked", "printess.job.failed"]
