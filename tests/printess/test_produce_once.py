"""Produce is billed and not idempotent: it is sent once, and an unknown outcome is settled by
the job's callback, never by sending produce again (issue 8, item 1)."""

from __future__ import annotations

import httpx
import pytest

import app.context
from app.main import create_app
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from tests.printess.conftest import SERVICE_TOKEN, printess_settings
from tests.printess.helpers import count_jobs, events_of
from tests.support.helpers import AUTH, serve_in_thread, wait_for

CARD = {"templateName": "card", "origin": "shop", "externalOrderId": "order-1", "meta": "m-1"}
UNKNOWN = "urn:printhook:problem:submission-outcome-unknown"


async def _submit_and_settle(
    database_url: str, sim: PrintessSimulator, key: str
) -> tuple[httpx.Response, httpx.Response]:
    """Submit through printhook over real HTTP; return the first answer and the first repeat
    (same Idempotency-Key) that returns a job, waiting for Printess's callback."""
    headers = {**AUTH, "Idempotency-Key": key}
    with serve_in_thread(sim.create_app()) as printess_url:
        # Served with its background applier, which applies the callback.
        settings = printess_settings(
            database_url, printess_url, run_workers=True, reconcile_interval=3600
        )
        with serve_in_thread(create_app(settings)) as printhook_url:
            sim.config.callback_base_url = printhook_url
            async with httpx.AsyncClient(base_url=printhook_url, timeout=10) as client:
                first = await client.post("/v1/printess/jobs", json=CARD, headers=headers)

                async def repeat_with_job() -> httpx.Response | None:
                    answer = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
                    if answer.status_code == 202:
                        assert answer.json()["type"] == UNKNOWN
                        return None
                    return answer

                repeat = await wait_for(repeat_with_job)
    return first, repeat


def _assert_outcome_unknown(answer: httpx.Response) -> None:
    assert answer.status_code == 202
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == UNKNOWN
    assert "will not call produce again" in problem["detail"]
    assert "same Idempotency-Key" in problem["detail"]
    assert answer.headers["retry-after"]


async def test_produce_answered_502_is_sent_once_and_settled_by_the_callback(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A gateway answers 502 after Printess took (and will bill) the job.
    sim = PrintessSimulator(
        SimulatorConfig(token=SERVICE_TOKEN, delay=0.3, produce_answer_status=502)
    )
    first, repeat = await _submit_and_settle(database_url, sim, "render-502")
    _assert_outcome_unknown(first)
    assert len(sim.calls_to("produce")) == 1
    [sim_job_id] = sim.jobs
    assert repeat.status_code == 201
    assert repeat.headers["Idempotent-Replayed"] == "true"
    job = repeat.json()
    assert job["jobId"] == sim_job_id
    assert job["reference"] == "order-1"
    assert job["templateName"] == "card"
    assert await count_jobs(database_url) == 1
    assert (await events_of(database_url, sim_job_id))[0] == "printess.job.tracked"
    # Neither the answer nor the logs reveal the callback token.
    callback_url = sim.jobs[sim_job_id].callback_url
    assert callback_url is not None
    token = callback_url.rsplit("/", 1)[1]
    assert token not in first.text
    assert "printess.produce.outcome_unknown" in caplog.messages
    assert all(token not in str(record.__dict__) for record in caplog.records)


async def test_produce_stalling_past_the_read_timeout_is_sent_once_and_settled_by_the_callback(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        app.context, "VENDOR_TIMEOUT", httpx.Timeout(connect=2.0, read=0.5, write=2.0, pool=2.0)
    )
    # The job renders (and its callback comes) only after printhook gave up waiting.
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=1.0, produce_delay=1.5))
    first, repeat = await _submit_and_settle(database_url, sim, "render-stall")
    _assert_outcome_unknown(first)
    assert len(sim.jobs) == 1
    assert len(sim.calls_to("produce")) == 1
    assert repeat.status_code == 201
    assert repeat.json()["jobId"] == next(iter(sim.jobs))
    assert await count_jobs(database_url) == 1


async def test_unreachable_printess_frees_the_key_for_a_retry(database_url: str) -> None:
    headers = {**AUTH, "Idempotency-Key": "render-refused"}
    # Nothing listens on port 9: the connection is refused, the request never left.
    down = printess_settings(database_url, "http://127.0.0.1:9")
    with serve_in_thread(create_app(down)) as printhook_url:
        async with httpx.AsyncClient(base_url=printhook_url, timeout=30) as client:
            refused = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
    assert refused.status_code == 502
    assert refused.json()["type"] == "urn:printhook:problem:upstream"
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=60))
    with serve_in_thread(sim.create_app()) as printess_url:
        up = printess_settings(database_url, printess_url)
        with serve_in_thread(create_app(up)) as printhook_url:
            async with httpx.AsyncClient(base_url=printhook_url, timeout=10) as client:
                retried = await client.post("/v1/printess/jobs", json=CARD, headers=headers)
    assert retried.status_code == 201
    assert len(sim.calls_to("produce")) == 1
    assert retried.json()["jobId"] in sim.jobs
