"""With verification on, identity comes from printhook's submission or status/get, not the body."""

from __future__ import annotations

from tests.printess.conftest import CALLBACK_SECRET, Printess, printess_settings
from tests.printess.helpers import job_row
from tests.support.helpers import AUTH, running_app


async def test_a_verified_callback_cannot_set_reference_order_or_template(
    database_url: str, printess: Printess
) -> None:
    sim_job = printess.sim.create_job("real-template", delay=0)
    forged = {
        **printess.sim.callback_body(sim_job.job_id),
        "externalOrderId": "forged-reference",
        "orderId": "forged-order",
        "templateName": "forged-template",
    }
    async with running_app(printess_settings(database_url, printess.url)) as (_, client):
        answer = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=forged)
        shown = (await client.get(f"/v1/printess/jobs/{sim_job.job_id}", headers=AUTH)).json()
    assert answer.status_code == 200
    assert shown["status"] == "succeeded"  # verified through status/get
    assert shown["reference"] is None
    assert shown["templateName"] == "real-template"
    row = await job_row(database_url, sim_job.job_id)
    assert row is not None
    assert row.printess_order_id != "forged-order"


async def test_with_verification_off_the_body_is_applied_as_sent(
    database_url: str, printess: Printess
) -> None:
    settings = printess_settings(database_url, printess.url, printess_verify_callbacks=False)
    body = {
        "jobId": "plain-1",
        "externalOrderId": "shop-ref-1",
        "templateName": "card",
        "isFailure": True,
        "failureDetails": "font missing",
    }
    async with running_app(settings) as (_, client):
        await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", json=body)
        shown = (await client.get("/v1/printess/jobs/plain-1", headers=AUTH)).json()
    assert (shown["reference"], shown["templateName"], shown["status"]) == (
        "shop-ref-1",
        "card",
        "failed",
    )
