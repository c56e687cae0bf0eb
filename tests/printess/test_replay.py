"""Replaying stored Printess callbacks goes through the same transition, idempotently."""

from __future__ import annotations

from sqlalchemy import select

from app.inbound.models import InboundEvent
from tests.printess.conftest import CALLBACK_SECRET, Printess, printess_settings
from tests.printess.helpers import events_of, inbound_outcomes, job_row
from tests.support.helpers import running_app


async def stored_event_ids(database_url: str) -> list[int]:
    from tests.support.helpers import db_session

    async with db_session(database_url) as session:
        return list(await session.scalars(select(InboundEvent.id).order_by(InboundEvent.id)))


async def test_replaying_a_deferred_callback_finalises_the_job_once(
    database_url: str, printess: Printess
) -> None:
    sim_job = printess.sim.create_job(delay=0)
    body = printess.sim.callback_body(sim_job.job_id)
    # Printess unreachable while the callback is applied: the job is tracked, not verified.
    down = printess_settings(database_url, "http://127.0.0.1:9")
    async with running_app(down) as (_, client):
        answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=body)
    assert answer.status_code == 200
    [event_id] = await stored_event_ids(database_url)
    pending = await job_row(database_url, sim_job.job_id)
    assert pending is not None
    assert pending.status == "pending"

    async with running_app(printess_settings(database_url, printess.url)) as (app, _):
        first = await app.state.applier.replay(event_id)
        calls = len(printess.sim.calls_to("status"))
        second = await app.state.applier.replay(event_id)
    assert (first.state, second.state) == ("applied", "applied")
    assert first.error is None
    # The second replay found the job final and did not ask Printess again.
    assert len(printess.sim.calls_to("status")) == calls
    job = await job_row(database_url, sim_job.job_id)
    assert job is not None
    assert job.status == "succeeded"
    assert job.finalized_by == "replay"
    assert await events_of(database_url, sim_job.job_id) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]


async def test_replaying_an_applied_or_rejected_callback_changes_nothing(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with running_app(settings) as (app, client):
        await client.post(url, json={"jobId": "r-1", "isFailure": True, "failureDetails": "x"})
        await client.post(url, content=b"{broken")
        applied_id, rejected_id = await stored_event_ids(database_url)
        applied = await app.state.applier.replay(applied_id)
        rejected = await app.state.applier.replay(rejected_id)
    assert (applied.state, rejected.state) == ("applied", "rejected")
    job = await job_row(database_url, "r-1")
    assert job is not None
    assert job.status == "failed"
    assert job.finalized_by == "callback"
    assert await inbound_outcomes(database_url) == ["applied", "rejected"]
    assert await events_of(database_url, "r-1") == ["printess.job.tracked", "printess.job.failed"]
