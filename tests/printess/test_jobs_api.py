"""The shop API: submit (idempotent), track, read and list render jobs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from app.db import utcnow
from app.main import create_app
from app.printess import submit
from app.printess.models import PrintessSubmission
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from tests.printess.conftest import SERVICE_TOKEN, Printess, printess_settings
from tests.printess.helpers import count_jobs, events_of, job_row
from tests.support.helpers import AUTH, db_session, running_app, serve_in_thread, wait_for

CARD = {"templateName": "card", "origin": "shop", "externalOrderId": "order-1", "meta": "m"}


async def test_submit_sets_printhooks_callback_url_and_answers_the_job(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (_, client):
        answer = await client.post(
            "/v1/printess/jobs",
            json={**CARD, "reference": "shop-42", "callbackUrl": "https://elsewhere.example/"},
            headers=AUTH,
        )
    assert answer.status_code == 201
    job = answer.json()
    assert job["status"] == "pending"
    assert job["isFinal"] is False
    assert job["reference"] == "shop-42"
    assert job["templateName"] == "card"
    sim_job = printess.sim.jobs[job["jobId"]]
    assert sim_job.callback_url is not None
    assert sim_job.callback_url.startswith("http://printhook.test/callbacks/printess/")
    token = sim_job.callback_url.rsplit("/", 1)[1]
    assert len(token) >= 32
    assert token not in answer.text
    assert sim_job.meta == "m"
    assert len(printess.sim.calls_to("produce")) == 1
    assert await events_of(database_url, job["jobId"]) == ["printess.job.tracked"]


async def test_concurrent_repeats_with_one_idempotency_key_call_produce_once(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    headers = {**AUTH, "Idempotency-Key": "order-1-render"}
    async with running_app(settings) as (_, client):
        answers = await asyncio.gather(
            *(client.post("/v1/printess/jobs", json=CARD, headers=headers) for _ in range(6))
        )
        later = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.json()["jobId"] for a in [*answers, later]}) == 1
    assert later.status_code == 201
    assert later.headers["Idempotent-Replayed"] == "true"
    assert len(printess.sim.calls_to("produce")) == 1
    assert await count_jobs(database_url) == 1


async def test_idempotency_key_reused_with_another_body_is_refused(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    async with running_app(settings) as (_, client):
        first = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
        other = await client.post(
            "/v1/printess/jobs", json={**CARD, "templateName": "poster"}, headers=headers
        )
        kept = await client.get(f"/v1/printess/jobs/{first.json()['jobId']}", headers=AUTH)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert len(printess.sim.calls_to("produce")) == 1
    assert kept.json()["templateName"] == "card"


async def test_printess_402_and_406_become_problems_with_printess_message(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    headers = {**AUTH, "Idempotency-Key": "retry-me"}
    async with running_app(settings) as (_, client):
        good = await client.post("/v1/printess/jobs", json=CARD, headers=AUTH)
        funds = await client.post(
            "/v1/printess/jobs", json={**CARD, "templateName": "simulate:402"}, headers=headers
        )
        refused = await client.post(
            "/v1/printess/jobs", json={**CARD, "templateName": "simulate:406"}, headers=AUTH
        )
        # A refusal frees the key: the same request may be retried once the cause is fixed.
        again = await client.post(
            "/v1/printess/jobs", json={**CARD, "templateName": "simulate:402"}, headers=headers
        )
    assert funds.status_code == 402
    assert funds.headers["content-type"] == "application/problem+json"
    assert funds.json()["detail"] == "Insufficient funds: please top up your Printess account"
    assert funds.json()["printess_code"] == 402
    assert refused.status_code == 422
    assert "not published" in refused.json()["detail"]
    assert refused.json()["type"] == "urn:printhook:problem:printess-not-accepted"
    assert again.status_code == 402
    assert await count_jobs(database_url) == 1
    assert good.status_code == 201


async def test_submit_without_templatename_is_refused_before_calling_printess(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (_, client):
        answer = await client.post("/v1/printess/jobs", json={"origin": "x"}, headers=AUTH)
    assert answer.status_code == 422
    assert printess.sim.calls_to("produce") == []


async def test_submit_without_service_token_answers_503(database_url: str) -> None:
    settings = printess_settings(database_url, "http://127.0.0.1:9", printess_service_token=None)
    async with running_app(settings) as (_, client):
        answer = await client.post("/v1/printess/jobs", json=CARD, headers=AUTH)
    assert answer.status_code == 503
    assert "PRINTHOOK_PRINTESS_SERVICE_TOKEN" in answer.json()["detail"]


async def test_track_creates_then_finds_a_job_and_updates_its_reference(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (_, client):
        created = await client.put(
            "/v1/printess/jobs/shop-job-1", json={"reference": "a"}, headers=AUTH
        )
        same = await client.put("/v1/printess/jobs/shop-job-1", headers=AUTH)
        moved = await client.put(
            "/v1/printess/jobs/shop-job-1", json={"reference": "b"}, headers=AUTH
        )
        missing = await client.get("/v1/printess/jobs/nope", headers=AUTH)
    assert created.status_code == 201
    assert created.json()["reference"] == "a"
    assert created.json()["poll"]["nextPollAt"] is not None
    assert same.status_code == 200
    assert same.json()["reference"] == "a"
    assert moved.json()["reference"] == "b"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert await events_of(database_url, "shop-job-1") == [
        "printess.job.tracked",
        "printess.job.updated",
    ]


async def test_job_list_pages_are_stable_and_filterable(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    async with running_app(settings) as (_, client):
        for n in range(7):
            await client.put(
                f"/v1/printess/jobs/job-{n}", json={"reference": f"r{n % 2}"}, headers=AUTH
            )
        seen: list[str] = []
        cursors: list[str] = []
        url = "/v1/printess/jobs?limit=3"
        while True:
            page = (await client.get(url, headers=AUTH)).json()
            seen += [item["jobId"] for item in page["items"]]
            if page["nextCursor"] is None:
                break
            cursors.append(page["nextCursor"])
            url = f"/v1/printess/jobs?limit=3&cursor={page['nextCursor']}"
        first_again = (
            await client.get(f"/v1/printess/jobs?limit=3&cursor={cursors[0]}", headers=AUTH)
        ).json()
        # A job created after a page was read shows up later, never shifting earlier pages.
        await client.put("/v1/printess/jobs/job-late", headers=AUTH)
        first_after_insert = (
            await client.get(f"/v1/printess/jobs?limit=3&cursor={cursors[0]}", headers=AUTH)
        ).json()
        r1 = (await client.get("/v1/printess/jobs?reference=r1", headers=AUTH)).json()
        pending = (await client.get("/v1/printess/jobs?status=succeeded", headers=AUTH)).json()
        bad = await client.get("/v1/printess/jobs?cursor=garbage", headers=AUTH)
        naive = await client.get(
            "/v1/printess/jobs?updated_after=2026-01-01T00:00:00", headers=AUTH
        )
        recent = (
            await client.get(
                "/v1/printess/jobs?updated_after=2000-01-01T00:00:00Z&limit=200", headers=AUTH
            )
        ).json()
    assert sorted(seen) == [f"job-{n}" for n in range(7)]
    assert len(seen) == len(set(seen))
    assert [i["jobId"] for i in first_again["items"]] == seen[3:6]
    assert [i["jobId"] for i in first_after_insert["items"]] == seen[3:6]
    assert {i["jobId"] for i in r1["items"]} == {"job-1", "job-3", "job-5"}
    assert pending["items"] == []
    assert bad.status_code == 400
    assert naive.status_code == 400
    assert len(recent["items"]) == 8


async def test_shop_api_requires_a_key_and_keeps_data_intact(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (_, client):
        await client.put("/v1/printess/jobs/kept-1", json={"reference": "keep"}, headers=AUTH)
        wrong = {"Authorization": "Bearer not-a-key"}
        answers = [
            await client.post("/v1/printess/jobs", json=CARD),
            await client.post("/v1/printess/jobs", json=CARD, headers=wrong),
            await client.put("/v1/printess/jobs/kept-1", json={"reference": "evil"}, headers=wrong),
            await client.get("/v1/printess/jobs/kept-1"),
            await client.get("/v1/printess/jobs", headers=wrong),
        ]
        kept = (await client.get("/v1/printess/jobs/kept-1", headers=AUTH)).json()
    assert [a.status_code for a in answers] == [401] * 5
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert printess.sim.calls_to("produce") == []
    assert kept["reference"] == "keep"
    assert await count_jobs(database_url) == 1


async def test_repeat_while_the_first_submit_is_in_flight_is_told_to_retry(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submit, "IN_FLIGHT_WAIT", 0.2)
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, produce_delay=1.0, delay=60))
    headers = {**AUTH, "Idempotency-Key": "slow-1"}
    with serve_in_thread(sim.create_app()) as url:
        async with running_app(printess_settings(database_url, url)) as (_, client):

            async def repeat_once_claimed() -> httpx.Response:
                await wait_for(lambda: _claimed(database_url))
                return await client.post("/v1/printess/jobs", json=CARD, headers=headers)

            first, early = await asyncio.gather(
                client.post("/v1/printess/jobs", json=CARD, headers=headers),
                repeat_once_claimed(),
            )
            later = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
    assert first.status_code == 201
    assert early.status_code == 409
    assert early.headers["content-type"] == "application/problem+json"
    assert early.headers["retry-after"]
    assert later.status_code == 201
    assert later.json()["jobId"] == first.json()["jobId"]
    assert len(sim.calls_to("produce")) == 1


async def _claimed(database_url: str) -> bool:
    async with db_session(database_url) as session:
        return bool(await session.scalar(select(func.count()).select_from(PrintessSubmission)))


async def test_callback_that_beats_the_produce_answer_is_recognised(database_url: str) -> None:
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, produce_delay=1.0, delay=0))
    with serve_in_thread(sim.create_app()) as url:
        # The background applier applies the early callback while produce is still answering.
        settings = printess_settings(database_url, url, run_workers=True, reconcile_interval=3600)
        with serve_in_thread(create_app(settings)) as printhook_url:
            sim.config.callback_base_url = printhook_url
            async with httpx.AsyncClient(base_url=printhook_url) as client:
                answer = await client.post("/v1/printess/jobs", json=CARD, headers=AUTH)
    assert answer.status_code == 201
    job = answer.json()
    assert [a.status for a in sim.callbacks] == [200]
    assert job["status"] == "succeeded"
    assert job["finalizedBy"] == "callback"
    assert job["templateName"] == "card"
    row = await job_row(database_url, job["jobId"])
    assert row is not None
    assert row.callback_token_hash is not None
    assert await events_of(database_url, job["jobId"]) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]


async def test_repeat_of_a_submission_cut_off_by_a_crash_says_the_outcome_is_unknown(
    database_url: str, printess: Printess
) -> None:
    headers = {**AUTH, "Idempotency-Key": "crashed-1"}
    async with running_app(printess_settings(database_url, printess.url)) as (_, client):
        good = await client.post("/v1/printess/jobs", json=CARD, headers=AUTH)
        # What a crash between the claim and Printess's answer leaves behind.
        async with db_session(database_url) as session:
            await session.execute(
                insert(PrintessSubmission).values(
                    idempotency_key="crashed-1",
                    request_hash=submit._request_hash(CARD),
                    callback_token_hash="0" * 64,
                    template_name="card",
                    state="in_flight",
                    created_at=utcnow() - timedelta(minutes=10),
                    updated_at=utcnow() - timedelta(minutes=10),
                )
            )
            await session.commit()
        repeat = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
        fresh_key = await client.post(
            "/v1/printess/jobs", json=CARD, headers={**AUTH, "Idempotency-Key": "crashed-2"}
        )
    assert repeat.status_code == 202
    assert repeat.headers["content-type"] == "application/problem+json"
    assert repeat.json()["type"] == "urn:printhook:problem:submission-outcome-unknown"
    assert "new Idempotency-Key" in repeat.json()["detail"]
    assert fresh_key.status_code == 201
    # Produce was called for the good submit and the fresh key only, never for the repeat.
    assert len(printess.sim.calls_to("produce")) == 2
    assert good.status_code == 201
    assert await job_row(database_url, good.json()["jobId"]) is not None
