"""The reconciler: heals lost callbacks within Printess's rate budget, once per job per pass."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.context import AppContext
from app.db import utcnow
from app.printess import reconciler
from app.printess.models import PrintessJob
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from tests.printess.conftest import SERVICE_TOKEN, Printess, printess_settings
from tests.printess.helpers import events_of, job_row
from tests.support.helpers import AUTH, db_session, running_app, serve_in_thread, wait_for


async def all_final(database_url: str, job_ids: list[str]) -> bool:
    async with db_session(database_url) as session:
        statuses = await session.scalars(
            select(PrintessJob.status).where(PrintessJob.job_id.in_(job_ids))
        )
        return all(status != "pending" for status in statuses)


async def track(database_url: str, printess_url: str, job_ids: list[str]) -> None:
    async with running_app(printess_settings(database_url, printess_url)) as (_, client):
        for job_id in job_ids:
            assert (
                await client.put(f"/v1/printess/jobs/{job_id}", headers=AUTH)
            ).status_code == 201


async def test_job_whose_callback_was_lost_while_down_is_final_after_next_start(
    database_url: str, printess: Printess
) -> None:
    # Nothing listens on port 9: Printess's callback fails while printhook is "down".
    first = printess_settings(database_url, printess.url, public_base_url="http://127.0.0.1:9")
    async with running_app(first) as (_, client):
        answer = await client.post(
            "/v1/printess/jobs", json={"templateName": "card", "origin": "shop"}, headers=AUTH
        )
    job_id = answer.json()["jobId"]

    async def callback_lost() -> bool:
        return any(a.job_id == job_id and a.status is None for a in printess.sim.callbacks)

    await wait_for(callback_lost)
    restarted = printess_settings(database_url, printess.url, run_workers=True)
    async with running_app(restarted) as (_, client):

        async def final() -> bool:
            job = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
            return bool(job["isFinal"])

        await wait_for(final)
        job = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
    assert job["status"] == "succeeded"
    assert job["finalizedBy"] == "reconcile"
    assert job["documents"] == {"document": f"{printess.url}/files/{job_id}/document.pdf"}
    assert job["poll"]["lastPolledAt"] is not None
    assert await events_of(database_url, job_id) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]


async def test_throttling_printess_gets_every_job_finished_within_the_rate_budget(
    database_url: str,
) -> None:
    rate = 10.0
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, throttle_rate=5))
    job_ids = [sim.create_job(delay=0).job_id for _ in range(10)]
    with serve_in_thread(sim.create_app()) as url:
        await track(database_url, url, job_ids)
        settings = printess_settings(database_url, url, run_workers=True, printess_status_rate=rate)
        async with running_app(settings):
            await wait_for(lambda: all_final(database_url, job_ids))
    calls = sim.calls_to("status")
    stamps = [call.at for call in calls]
    busiest = max(sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps)
    assert busiest <= rate + 1
    throttled = [i for i, call in enumerate(calls) if call.status == 429]
    assert throttled, "the simulator never throttled: the test proves nothing"
    for i in throttled:
        if i + 1 < len(calls):
            # Retry-After was at least 1 s: nobody may call before it has passed.
            assert calls[i + 1].at - calls[i].at >= 0.95
    assert Counter(c.job_id for c in calls if c.status == 200) == Counter(job_ids)


@pytest.mark.postgres_only
async def test_two_instances_on_one_postgres_never_poll_a_job_twice(
    database_url: str, printess: Printess, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is a single-process database")
    # Small batches make the two reconcilers interleave their claims.
    monkeypatch.setattr(reconciler, "BATCH_SIZE", 3)
    job_ids = [printess.sim.create_job(delay=0).job_id for _ in range(24)]
    await track(database_url, printess.url, job_ids)
    settings = printess_settings(
        database_url, printess.url, run_workers=True, printess_status_rate=100
    )
    async with running_app(settings), running_app(settings):
        await wait_for(lambda: all_final(database_url, job_ids))
    polls = Counter(call.job_id for call in printess.sim.calls_to("status"))
    assert polls == Counter(job_ids)


async def test_jobs_past_max_age_are_abandoned_and_no_longer_polled(
    database_url: str, printess: Printess
) -> None:
    old = printess.sim.create_job("simulate:slow").job_id
    await track(database_url, printess.url, [old])
    settings = printess_settings(
        database_url, printess.url, reconcile_max_age=timedelta(seconds=0.3)
    )
    ctx = AppContext.create(settings)
    try:

        async def abandoned() -> int:
            return (await reconciler.run_once(ctx)).abandoned

        await wait_for(abandoned)
        polls_before = len(printess.sim.calls_to("status"))
        later = await reconciler.run_once(ctx)
    finally:
        await ctx.aclose()
    assert later.polled == 0
    assert len(printess.sim.calls_to("status")) == polls_before
    async with running_app(settings) as (_, client):
        job = (await client.get(f"/v1/printess/jobs/{old}", headers=AUTH)).json()
    assert job["status"] == "pending"
    assert job["poll"]["abandoned"] is True
    assert job["poll"]["nextPollAt"] is None
    assert (await events_of(database_url, old))[-1] == "printess.job.abandoned"


async def test_non_final_job_is_polled_again_only_after_its_backoff(
    database_url: str, printess: Printess
) -> None:
    slow = printess.sim.create_job("simulate:slow").job_id
    await track(database_url, printess.url, [slow])
    settings = printess_settings(
        database_url, printess.url, printess_first_poll_after=timedelta(seconds=60)
    )
    async with db_session(database_url) as session:
        job = await session.get(PrintessJob, slow)
        assert job is not None
        job.next_poll_at = utcnow()
        await session.commit()
    ctx = AppContext.create(settings)
    try:
        first = await reconciler.run_once(ctx)
        second = await reconciler.run_once(ctx)
    finally:
        await ctx.aclose()
    assert (first.polled, second.polled) == (1, 0)
    row = await job_row(database_url, slow)
    assert row is not None
    assert row.poll_attempts == 1
    assert row.next_poll_at is not None
    assert row.next_poll_at - utcnow() > timedelta(seconds=20)
    assert row.lease_owner is None


async def test_a_cancelled_pass_releases_its_leases(database_url: str, printess: Printess) -> None:
    job_ids = [printess.sim.create_job(delay=0).job_id for _ in range(10)]
    await track(database_url, printess.url, job_ids)
    settings = printess_settings(database_url, printess.url, printess_status_rate=5)
    ctx = AppContext.create(settings)
    try:

        async def due() -> bool:
            async with db_session(database_url) as session:
                stamps = await session.scalars(select(PrintessJob.next_poll_at))
                return all(s is not None and s <= utcnow() for s in stamps)

        await wait_for(due)
        task = asyncio.create_task(reconciler.run_once(ctx))
        await wait_for(lambda: _count(printess, 2))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await ctx.aclose()
    async with db_session(database_url) as session:
        rows = (await session.scalars(select(PrintessJob))).all()
    assert all(row.lease_owner is None and row.leased_until is None for row in rows)
    assert any(row.status == "pending" for row in rows)


async def _count(printess: Printess, n: int) -> bool:
    return len(printess.sim.calls_to("status")) >= n


async def test_reconcile_once_command_polls_every_due_job(
    database_url: str, printess: Printess
) -> None:
    job_ids = [printess.sim.create_job(delay=0, fails=(n == 0)).job_id for n in range(3)]
    await track(database_url, printess.url, job_ids)
    env = {
        **os.environ,
        "PRINTHOOK_DATABASE_URL": database_url,
        "PRINTHOOK_PRINTESS_API_URL": printess.url,
        "PRINTHOOK_PRINTESS_SERVICE_TOKEN": SERVICE_TOKEN,
        "PRINTHOOK_RECONCILE_INTERVAL": "0.1",
        "PRINTHOOK_LOG_LEVEL": "WARNING",
    }
    await wait_for(lambda: _all_due(database_url))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "reconcile",
        "--once",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    both = json.loads(out)
    # One pass covers both vendors; Printmotor has no credentials here, and says so.
    assert both["printmotor"]["skipped"] == "no Printmotor credentials"
    summary = both["printess"]
    assert summary["polled"] == 3
    assert summary["changed"] == 3
    assert await all_final(database_url, job_ids)
    failed = await job_row(database_url, job_ids[0])
    assert failed is not None
    assert failed.status == "failed"


async def _all_due(database_url: str) -> bool:
    async with db_session(database_url) as session:
        stamps = await session.scalars(select(PrintessJob.next_poll_at))
        return all(s is not None and s <= utcnow() for s in stamps)


async def test_reconciler_does_nothing_without_a_service_token(
    database_url: str, printess: Printess
) -> None:
    job_id = printess.sim.create_job(delay=0).job_id
    await track(database_url, printess.url, [job_id])
    settings = printess_settings(database_url, printess.url, printess_service_token=None)
    ctx = AppContext.create(settings)
    try:
        await wait_for(lambda: _all_due(database_url))
        summary = await reconciler.run_once(ctx)
    finally:
        await ctx.aclose()
    assert summary.skipped == "no Printess service token"
    assert printess.sim.calls_to("status") == []
