"""Printess as it really answers (issue 8, items 2-6): meta survives verification, documents
come from `result.r` only, a callback is final only when it says so, vanished jobs stop being
polled, and the first status/get waits for the callback's chance."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.context import AppContext
from app.db import utcnow
from app.main import create_app
from app.printess import reconciler, service
from app.printess.models import PrintessJob
from app.printess.schemas import parse_status, parse_status_bytes
from tests.printess.conftest import Printess, printess_settings
from tests.printess.helpers import event_data, events_of, job_row
from tests.support.helpers import (
    AUTH,
    db_session,
    make_settings,
    running_app,
    serve_in_thread,
    wait_for,
)


async def _run_until(ctx: AppContext, condition: Any) -> None:
    """Reconciler passes until `condition()` holds (each pass polls what is due)."""

    async def passed() -> bool:
        await reconciler.run_once(ctx)
        return bool(await condition())

    await wait_for(passed)


async def test_job_finalised_by_status_get_keeps_the_meta_stored_at_submit(
    database_url: str, printess: Printess
) -> None:
    printess.sim.lose_next_callback()
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (app, client):
        answer = await client.post(
            "/v1/printess/jobs",
            json={"templateName": "card", "origin": "shop", "meta": '{"line":7}'},
            headers=AUTH,
        )
        job_id = answer.json()["jobId"]
        assert answer.json()["meta"] == '{"line":7}'
        ctx: AppContext = app.state.ctx

        async def final() -> bool:
            row = await job_row(database_url, job_id)
            return row is not None and row.is_final

        await _run_until(ctx, final)
        job = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
    # Printess's status/get carries no meta; the job keeps the one the shop submitted.
    assert printess.sim.status_body(job_id)["result"]["meta"] is None
    assert job["finalizedBy"] == "reconcile"
    assert job["meta"] == '{"line":7}'
    assert (await event_data(database_url, job_id, "printess.job.succeeded"))["meta"] == (
        '{"line":7}'
    )


async def test_verified_status_without_meta_takes_the_authenticated_callbacks_meta(
    database_url: str, printess: Printess
) -> None:
    tracked = printess.sim.create_job(delay=0, meta="cb-meta").job_id
    submitted = printess.sim.create_job(delay=0, meta="cb-meta").job_id
    async with db_session(database_url) as session:
        await service.ensure_job(session, tracked, event_type="t", next_poll_at=None)
        await service.ensure_job(
            session, submitted, event_type="t", next_poll_at=None, meta="shop-meta"
        )
        for job_id in (tracked, submitted):
            verified = parse_status(printess.sim.status_body(job_id))
            assert verified.meta is None
            job = await service.lock_job(session, job_id)
            assert job is not None
            changed = await service.apply_status(
                session, job, verified, finalized_by="callback", callback_meta="cb-meta"
            )
            assert changed
        await session.commit()
    tracked_row = await job_row(database_url, tracked)
    submitted_row = await job_row(database_url, submitted)
    assert tracked_row is not None
    assert tracked_row.meta == "cb-meta"
    assert submitted_row is not None
    assert submitted_row.meta == "shop-meta"


async def test_documents_come_only_from_result_r_and_the_raw_result_is_exposed(
    database_url: str, printess: Printess
) -> None:
    # Served with its background applier; the reconciler waits for the callback.
    settings = printess_settings(
        database_url, printess.url, run_workers=True, reconcile_interval=3600
    )
    with serve_in_thread(create_app(settings)) as printhook_url:
        printess.sim.config.callback_base_url = printhook_url
        async with httpx.AsyncClient(base_url=printhook_url) as client:
            answer = await client.post(
                "/v1/printess/jobs", json={"templateName": "card", "origin": "shop"}, headers=AUTH
            )
            job_id = answer.json()["jobId"]
            assert answer.json()["result"] is None

            async def final() -> dict[str, Any] | None:
                got = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
                return got if got["isFinal"] else None

            job = await wait_for(final)
    files = f"{printess.url}/files/{job_id}"
    assert job["status"] == "succeeded"
    assert job["documents"] == {"document": f"{files}/document.pdf"}
    result = job["result"]
    assert result["d"] == {"document": f"{job_id}_1.pdf"}
    assert f"{job_id}_1.pdf" not in json.dumps(job["documents"])
    assert result["zip"] == f"{files}/output.zip"
    assert result["ff"] == f"{files}/formfields.json"
    assert job["pictures"] == [
        {"document": "document", "url": f"{files}/preview-0.png", "index": 0}
    ]
    async with httpx.AsyncClient() as http:
        form_fields = (await http.get(result["ff"])).json()
    assert form_fields["environment"] == "simulator"
    # The change feed carries the same job, result included.
    assert await event_data(database_url, job_id, "printess.job.succeeded") == job
    # A name only `d` knows is a file name without a URL: never a document.
    extra = parse_status(
        {
            "jobId": "x-1",
            "isFailure": False,
            "result": {
                "r": {"document": "https://f/x-1.pdf"},
                "d": {"document": "x-1_1.pdf", "proof": "x-1_2.pdf"},
            },
        }
    )
    assert extra.documents == {"document": "https://f/x-1.pdf"}
    assert extra.result is not None
    assert extra.result["d"]["proof"] == "x-1_2.pdf"


PROGRESS = [
    {"isFailure": False, "result": None},
    {"isFailure": False, "result": {"r": {}, "d": {"document": "x_1.pdf"}, "p": []}},
    {"failureDetails": "still rendering"},
    {"errorDetails": {"step": "layout"}, "result": {"meta": "m"}},
    {"isFinalStatus": False, "isSuccess": False, "enqueuedOn": "2026-11-23T10:00:00Z"},
    {},
]


@pytest.mark.parametrize("body", PROGRESS, ids=range(len(PROGRESS)))
async def test_a_callback_that_does_not_say_it_is_final_changes_nothing(
    database_url: str, body: dict[str, Any]
) -> None:
    raw = json.dumps({"jobId": "progress-1", **body}).encode()
    status = parse_status_bytes(raw)
    assert not status.is_final
    async with db_session(database_url) as session:
        job, _ = await service.ensure_job(
            session, "progress-1", event_type="printess.job.tracked", next_poll_at=None
        )
        assert not await service.apply_status(session, job, status, finalized_by="callback")
        await session.commit()
    row = await job_row(database_url, "progress-1")
    assert row is not None
    assert (row.status, row.error_text, row.documents, row.result) == ("pending", None, {}, None)
    assert await events_of(database_url, "progress-1") == ["printess.job.tracked"]
    # What does finalise: a failure, or outputs.
    failed = parse_status({"jobId": "progress-1", "isFailure": True, "failureDetails": "x"})
    done = parse_status({"jobId": "progress-1", "result": {"p": [{"u": "https://p/0.png"}]}})
    assert (failed.is_final, failed.is_success) == (True, False)
    assert (done.is_final, done.is_success) == (True, True)


async def test_job_printess_no_longer_knows_is_flagged_vanished_and_no_longer_polled(
    database_url: str, printess: Printess
) -> None:
    gone = printess.sim.create_job("simulate:slow").job_id
    kept = printess.sim.create_job("simulate:slow").job_id
    settings = printess_settings(
        database_url, printess.url, printess_vanished_after=2, printess_status_rate=100
    )
    async with running_app(settings) as (app, client):
        for job_id in (gone, kept):
            await client.put(f"/v1/printess/jobs/{job_id}", headers=AUTH)
        printess.sim.forget(gone)
        ctx: AppContext = app.state.ctx

        async def vanished() -> bool:
            row = await job_row(database_url, gone)
            return row is not None and row.vanished_at is not None

        await _run_until(ctx, vanished)
        polls = [c for c in printess.sim.calls_to("status") if c.job_id == gone]
        job = (await client.get(f"/v1/printess/jobs/{gone}", headers=AUTH)).json()
        other = (await client.get(f"/v1/printess/jobs/{kept}", headers=AUTH)).json()
        # Even when its poll time is forced due, a vanished job is not asked about again.
        await _make_due(database_url)
        later = await reconciler.run_once(ctx)
    assert later.polled == 1
    # Printess answers 200 with the unknown-job shape, not 404.
    assert [c.status for c in polls] == [200, 200]
    assert [c for c in printess.sim.calls_to("status") if c.job_id == gone] == polls
    assert job["vanished"] is True
    assert job["vanishedAt"] is not None
    assert job["status"] == "pending"
    assert job["poll"]["nextPollAt"] is None
    assert other["vanished"] is False
    assert other["poll"]["nextPollAt"] is not None
    assert await events_of(database_url, gone) == ["printess.job.tracked", "printess.job.vanished"]
    assert await event_data(database_url, gone, "printess.job.vanished") == job


async def _make_due(database_url: str) -> None:
    """Every job's next poll is now, flagged ones included."""
    async with db_session(database_url) as session:
        await session.execute(update(PrintessJob).values(next_poll_at=utcnow()))
        await session.commit()


async def test_first_poll_waits_for_the_callbacks_chance_but_a_due_job_is_polled_at_start(
    database_url: str, printess: Printess
) -> None:
    fresh = printess.sim.create_job("simulate:slow").job_id
    overdue = printess.sim.create_job(delay=0).job_id
    # Defaults: the first status/get comes PRINTHOOK_PRINTESS_FIRST_POLL_AFTER (10 min) later.
    settings = printess_settings(
        database_url, printess.url, printess_first_poll_after=timedelta(minutes=10)
    )
    assert make_settings(database_url).printess_first_poll_after == timedelta(minutes=10)
    async with running_app(settings) as (_, client):
        submitted = await client.post(
            "/v1/printess/jobs", json={"templateName": "simulate:slow", "origin": "s"}, headers=AUTH
        )
        for job_id in (fresh, overdue):
            await client.put(f"/v1/printess/jobs/{job_id}", headers=AUTH)
    async with db_session(database_url) as session:
        for job_id in (fresh, submitted.json()["jobId"]):
            row = await session.get(PrintessJob, job_id)
            assert row is not None
            assert row.next_poll_at is not None
            wait = row.next_poll_at - utcnow()
            assert timedelta(minutes=9) < wait <= timedelta(minutes=10)
        # A job that was due before a restart (its callback lost while printhook was down).
        row = await session.get(PrintessJob, overdue)
        assert row is not None
        row.next_poll_at = utcnow() - timedelta(minutes=1)
        await session.commit()
    # The start-up pass (run_workers) polls every due job at once, and only those.
    started = printess_settings(
        database_url,
        printess.url,
        run_workers=True,
        reconcile_interval=3600,
        printess_first_poll_after=timedelta(minutes=10),
    )
    async with running_app(started):

        async def overdue_final() -> bool:
            row = await job_row(database_url, overdue)
            return row is not None and row.is_final

        await wait_for(overdue_final)
    assert [c.job_id for c in printess.sim.calls_to("status")] == [overdue]


async def test_first_poll_delay_is_configurable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRINTHOOK_PRINTESS_FIRST_POLL_AFTER", "90s")
    settings = make_settings(database_url)
    assert settings.printess_first_poll_after == timedelta(seconds=90)
    async with running_app(settings) as (_, client):
        job = (await client.put("/v1/printess/jobs/own-1", headers=AUTH)).json()
    next_poll = job["poll"]["nextPollAt"]
    row = await job_row(database_url, "own-1")
    assert row is not None
    assert row.next_poll_at is not None
    assert next_poll is not None
    assert timedelta(seconds=80) < row.next_poll_at - row.created_at <= timedelta(seconds=90)
