"""POST /callbacks/printess/{token}: authentication, dedupe, verification, the transition."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import httpx
import pytest

from app import ratelimit
from app.main import create_app
from app.printess.schemas import parse_status
from tests.printess.conftest import CALLBACK_SECRET, Printess, printess_settings
from tests.printess.helpers import event_data, events_of, inbound_outcomes, job_row
from tests.support.helpers import AUTH, running_app, serve_in_thread, wait_for


def success_body(job_id: str, url: str = "https://cdn.example/doc.pdf") -> dict[str, object]:
    return {
        "jobId": job_id,
        "orderId": "o-1",
        "templateName": "card",
        "meta": "m-1",
        "result": {"r": {"document": url}, "p": [{"d": "document", "u": url + ".png", "i": 0}]},
        "isFailure": False,
        "failureDetails": None,
    }


def failure_body(job_id: str) -> dict[str, object]:
    return {"jobId": job_id, "isFailure": True, "failureDetails": "font missing", "result": None}


@pytest.mark.parametrize(
    ("shape", "verify"), [("callback", True), ("status", False)], ids=["verified", "status-shape"]
)
async def test_submitted_job_is_finalised_by_its_callback_over_real_http(
    database_url: str, printess: Printess, shape: Literal["callback", "status"], verify: bool
) -> None:
    printess.sim.config.callback_shape = shape
    # The real background applier; the reconciler waits, so the callback finishes the job.
    settings = printess_settings(
        database_url,
        printess.url,
        printess_verify_callbacks=verify,
        run_workers=True,
        reconcile_interval=3600,
    )
    with serve_in_thread(create_app(settings)) as printhook_url:
        printess.sim.config.callback_base_url = printhook_url
        async with httpx.AsyncClient(base_url=printhook_url) as client:
            answer = await client.post(
                "/v1/printess/jobs",
                json={"templateName": "card", "origin": "shop", "meta": "order-7"},
                headers=AUTH,
            )
            assert answer.status_code == 201
            job_id = answer.json()["jobId"]

            async def final() -> bool:
                got = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
                return bool(got["isFinal"])

            await wait_for(final)
            job = (await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)).json()
    assert job["status"] == "succeeded"
    assert job["finalizedBy"] == "callback"
    assert job["documents"] == {"document": f"{printess.url}/files/{job_id}/document.pdf"}
    assert job["pictures"][0]["index"] == 0
    assert job["meta"] == "order-7"
    assert printess.sim.callbacks[-1].status == 200
    # The change feed carries the job exactly as the API shows it.
    assert await event_data(database_url, job_id, "printess.job.succeeded") == job
    assert await events_of(database_url, job_id) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]


@pytest.mark.parametrize("verify", [False, True], ids=["body-applied", "verified"])
async def test_ten_concurrent_identical_callbacks_make_one_transition(
    database_url: str, printess: Printess, verify: bool
) -> None:
    sim_job = printess.sim.create_job(delay=0)
    body = json.dumps(printess.sim.callback_body(sim_job.job_id)).encode()
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=verify)
    async with running_app(settings) as (_, client):
        assert (
            await client.put(f"/v1/printess/jobs/{sim_job.job_id}", headers=AUTH)
        ).status_code == 201
        answers = await asyncio.gather(
            *(
                client.post(f"/callbacks/printess/{CALLBACK_SECRET}", content=body)
                for _ in range(10)
            )
        )
    assert [a.status_code for a in answers] == [200] * 10
    # Every copy gets the first copy's id.
    assert all(a.json() == answers[0].json() == {"ok": True, "eventId": 1} for a in answers)
    assert await events_of(database_url, sim_job.job_id) == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]
    assert await inbound_outcomes(database_url) == ["applied"]
    job = await job_row(database_url, sim_job.job_id)
    assert job is not None
    assert job.status == "succeeded"
    assert job.finalized_by == "callback"


async def test_wrong_token_is_rejected_and_changes_nothing(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    async with running_app(settings) as (_, client):
        await client.put("/v1/printess/jobs/done-1", headers=AUTH)
        await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=success_body("done-1"))
        await client.put("/v1/printess/jobs/open-1", headers=AUTH)
        for token in ("wrong-token", CALLBACK_SECRET + "x", "a" * 600):
            for job_id in ("open-1", "done-1"):
                answer = await client.post(
                    f"/callbacks/printess/{token}", json=failure_body(job_id)
                )
                assert answer.status_code == 404
                assert answer.headers["content-type"] == "application/problem+json"
                assert token not in answer.text
    open_job = await job_row(database_url, "open-1")
    done_job = await job_row(database_url, "done-1")
    assert open_job is not None
    assert open_job.status == "pending"
    assert done_job is not None
    assert done_job.status == "succeeded"
    assert done_job.documents == {"document": "https://cdn.example/doc.pdf"}
    assert await inbound_outcomes(database_url) == ["applied"]
    assert await events_of(database_url, "open-1") == ["printess.job.tracked"]


async def test_forged_callback_with_verification_takes_state_from_status_get(
    database_url: str, printess: Printess
) -> None:
    failed = printess.sim.create_job(delay=0, fails=True)
    rendering = printess.sim.create_job("simulate:slow")
    settings = printess_settings(database_url, printess.url)
    assert settings.verify_printess_callbacks
    async with running_app(settings) as (_, client):
        for job in (failed, rendering):
            await client.put(f"/v1/printess/jobs/{job.job_id}", headers=AUTH)
            forged = success_body(job.job_id, "https://evil.example/forged.pdf")
            answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=forged)
            assert answer.status_code == 200
        got_failed = (await client.get(f"/v1/printess/jobs/{failed.job_id}", headers=AUTH)).json()
        got_open = (await client.get(f"/v1/printess/jobs/{rendering.job_id}", headers=AUTH)).json()
    assert got_failed["status"] == "failed"
    assert got_failed["error"] == "Simulated render failure"
    assert got_failed["documents"] == {}
    assert got_open["status"] == "pending"
    assert got_open["documents"] == {}
    assert "evil.example" not in json.dumps([got_failed, got_open])
    assert await inbound_outcomes(database_url) == ["applied", "unchanged"]
    assert len(printess.sim.calls_to("status")) == 2


async def test_late_failure_or_non_final_callback_after_success_changes_nothing(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    secret_url = f"/callbacks/printess/{CALLBACK_SECRET}"
    non_final = {"jobId": "j-1", "isFinalStatus": False, "isSuccess": False, "result": None}
    async with running_app(settings) as (_, client):
        await client.put("/v1/printess/jobs/j-1", headers=AUTH)
        assert (await client.post(secret_url, json=success_body("j-1"))).status_code == 200
        before = (await client.get("/v1/printess/jobs/j-1", headers=AUTH)).json()
        assert (await client.post(secret_url, json=failure_body("j-1"))).status_code == 200
        assert (await client.post(secret_url, json=non_final)).status_code == 200
        after = (await client.get("/v1/printess/jobs/j-1", headers=AUTH)).json()
    assert before["status"] == "succeeded"
    assert after == before
    assert await events_of(database_url, "j-1") == [
        "printess.job.tracked",
        "printess.job.succeeded",
    ]
    assert await inbound_outcomes(database_url) == ["applied", "unchanged", "unchanged"]


async def test_callback_for_unknown_job_creates_it(database_url: str, printess: Printess) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    async with running_app(settings) as (_, client):
        body = {**failure_body("new-1"), "externalOrderId": "shop-order-9"}
        answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=body)
        job = (await client.get("/v1/printess/jobs/new-1", headers=AUTH)).json()
    assert answer.status_code == 200
    assert job["status"] == "failed"
    assert job["error"] == "font missing"
    assert job["reference"] == "shop-order-9"
    assert await events_of(database_url, "new-1") == ["printess.job.tracked", "printess.job.failed"]


@pytest.mark.parametrize(
    "body", [b"not json", b"[1,2]", b'{"isFailure": false}', b'{"jobId": 5}'], ids=repr
)
async def test_unparseable_callback_with_valid_token_is_stored_as_rejected(
    database_url: str, printess: Printess, body: bytes
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    secret_url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with running_app(settings) as (_, client):
        await client.post(secret_url, json=success_body("good-1"))
        answer = await client.post(secret_url, content=body)
        good = (await client.get("/v1/printess/jobs/good-1", headers=AUTH)).json()
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert await inbound_outcomes(database_url) == ["applied", "rejected"]
    assert good["status"] == "succeeded"


async def test_per_job_token_cannot_finish_another_job(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    async with running_app(settings) as (_, client):
        first = await client.post(
            "/v1/printess/jobs", json={"templateName": "simulate:slow", "origin": "t"}, headers=AUTH
        )
        await client.put("/v1/printess/jobs/other-1", headers=AUTH)
    job_id = first.json()["jobId"]
    callback_url = printess.sim.jobs[job_id].callback_url
    assert callback_url is not None
    token = callback_url.rsplit("/", 1)[1]
    async with running_app(settings) as (_, client):
        wrong = await client.post(f"/callbacks/printess/{token}", json=success_body("other-1"))
        right = await client.post(f"/callbacks/printess/{token}", json=success_body(job_id))
    assert wrong.status_code == 400
    assert right.status_code == 200
    other = await job_row(database_url, "other-1")
    mine = await job_row(database_url, job_id)
    assert other is not None
    assert other.status == "pending"
    assert mine is not None
    assert mine.status == "succeeded"


async def test_callback_is_deferred_to_the_reconciler_when_printess_cannot_be_asked(
    database_url: str, printess: Printess
) -> None:
    sim_job = printess.sim.create_job(delay=0)
    down = printess_settings(database_url, "http://127.0.0.1:9")
    body = printess.sim.callback_body(sim_job.job_id)
    async with running_app(down) as (_, client):
        answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=body)
        pending = (await client.get(f"/v1/printess/jobs/{sim_job.job_id}", headers=AUTH)).json()
    assert answer.status_code == 200
    assert pending["status"] == "pending"
    # The job is tracked; verifying it is left to the reconciler.
    assert await inbound_outcomes(database_url) == ["applied"]

    up = printess_settings(database_url, printess.url, run_workers=True)
    async with running_app(up):

        async def finished() -> bool:
            job = await job_row(database_url, sim_job.job_id)
            return job is not None and job.status == "succeeded"

        await wait_for(finished)
    job = await job_row(database_url, sim_job.job_id)
    assert job is not None
    assert job.finalized_by == "reconcile"


def test_both_callback_shapes_are_understood() -> None:
    callback = parse_status(
        {
            "jobId": "a",
            "isFailure": False,
            "result": {"r": {"doc": "u1"}, "d": {"x": "u2"}, "p": [{"d": "doc", "u": "p", "i": 2}]},
            "meta": "top",
            "unknownField": {"nested": True},
        }
    )
    status = parse_status(
        {
            "jobId": "b",
            "isFinalStatus": True,
            "isSuccess": False,
            "errorDetails": "boom",
            "result": {"meta": "inner"},
            "failedOn": "2026-11-23T10:00:00",
        }
    )
    running = parse_status({"jobId": "c", "isFinalStatus": False, "isSuccess": False})
    assert callback.is_final
    assert callback.is_success
    # `d` maps names to output file names, never URLs (issue 8): documents come from `r` only.
    assert callback.documents == {"doc": "u1"}
    assert callback.pictures == [{"document": "doc", "url": "p", "index": 2}]
    assert callback.meta == "top"
    assert status.is_final
    assert not status.is_success
    assert status.error_text == "boom"
    assert status.meta == "inner"
    assert status.finished_at is not None
    assert status.finished_at.tzinfo is not None
    assert not running.is_final


async def test_callback_while_printess_throttles_us_is_deferred_without_calling_it(
    database_url: str, printess: Printess
) -> None:
    sim_job = printess.sim.create_job(delay=0)
    settings = printess_settings(database_url, printess.url)
    async with running_app(settings) as (app, client):
        await ratelimit.pause(app.state.ctx.session_factory, "printess.status", 60)
        answer = await client.post(
            f"/callbacks/printess/{CALLBACK_SECRET}",
            json=printess.sim.callback_body(sim_job.job_id),
        )
        job = (await client.get(f"/v1/printess/jobs/{sim_job.job_id}", headers=AUTH)).json()
    assert answer.status_code == 200
    assert printess.sim.calls_to("status") == []
    assert job["status"] == "pending"
    assert await inbound_outcomes(database_url) == ["applied"]
