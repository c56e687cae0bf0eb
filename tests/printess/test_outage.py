"""Database unavailable: callbacks get 503 and nothing acknowledged is ever lost."""

from __future__ import annotations

import json

import pytest

from tests.printess.conftest import CALLBACK_SECRET, Printess, printess_settings
from tests.printess.helpers import events_of, inbound_outcomes, job_row
from tests.printess.outage import database_outage
from tests.support.helpers import AUTH, running_app


def body(job_id: str) -> bytes:
    return json.dumps(
        {"jobId": job_id, "isFailure": False, "result": {"r": {"document": f"https://f/{job_id}"}}}
    ).encode()


async def test_callbacks_get_503_while_the_database_is_down_and_apply_after_recovery(
    database_url: str, printess: Printess, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with database_outage(database_url, monkeypatch) as outage:
        settings = printess_settings(outage.url, printess.url, printess_verify_callbacks=False)
        async with running_app(settings) as (_, client):
            for job_id in ("before", "during"):
                await client.put(f"/v1/printess/jobs/{job_id}", headers=AUTH)
            acknowledged = await client.post(url, content=body("before"))
            assert acknowledged.status_code == 200

            await outage.begin()
            try:
                refused = [await client.post(url, content=body("during")) for _ in range(2)]
                read = await client.get("/v1/printess/jobs/before", headers=AUTH)
            finally:
                await outage.end()

            # The vendor retries the same bytes once the database is back.
            retried = await client.post(url, content=body("during"))
            again = await client.post(url, content=body("during"))
    assert [r.status_code for r in refused] == [503, 503]
    assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
    assert refused[0].headers["retry-after"]
    assert read.status_code == 503
    assert retried.status_code == 200
    assert again.status_code == 200
    for job_id in ("before", "during"):
        job = await job_row(database_url, job_id)
        assert job is not None
        assert job.status == "succeeded"
        assert job.documents == {"document": f"https://f/{job_id}"}
        assert await events_of(database_url, job_id) == [
            "printess.job.tracked",
            "printess.job.succeeded",
        ]
    assert await inbound_outcomes(database_url) == ["applied", "applied"]
