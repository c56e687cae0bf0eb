"""The ack path stores raw bytes and answers; bad input is a 2xx or a 4xx, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from app.inbound.models import InboundEvent
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import signed_headers, webhook_body
from tests.printmotor.conftest import SECRET, pm_settings
from tests.support.helpers import AUTH, db_session, running_app

CALLBACK_SECRET = "ack-test-callback-secret-0123456789"


def settings(database_url: str, **overrides: Any) -> Any:
    return pm_settings(
        database_url,
        printess_callback_secret=CALLBACK_SECRET,
        printess_verify_callbacks=False,
        **overrides,
    )


async def stored(database_url: str) -> list[InboundEvent]:
    async with db_session(database_url) as session:
        return list(await session.scalars(select(InboundEvent).order_by(InboundEvent.id)))


async def test_the_ack_stores_pending_bytes_and_the_applier_applies_them(
    database_url: str,
) -> None:
    body = webhook_body(501, "USER_ORDER_DELIVERED", tracking_code="JJ501")
    async with running_app(settings(database_url), apply=False) as (app, client):
        first = await client.post("/webhooks/printmotor", content=body, headers=sign(body))
        again = await client.post("/webhooks/printmotor", content=body, headers=sign(body))
        [event] = await stored(database_url)
        # Acknowledged and durable, but nothing applied inside the request.
        assert (event.state, event.body, event.subject_id) == ("pending", body, "501")
        async with db_session(database_url) as session:
            assert await session.get(PrintmotorOrder, "501") is None
        assert await app.state.applier.drain() == 1
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"ok": True, "eventId": event.id}
    assert len(first.content) < 1024
    [event] = await stored(database_url)
    assert event.state == "applied"
    assert event.processed_at is not None
    async with db_session(database_url) as session:
        order = await session.get(PrintmotorOrder, "501")
    assert order is not None
    assert (order.status, order.tracking_code) == ("delivered", "JJ501")


def sign(body: bytes) -> dict[str, str]:
    return signed_headers(body, SECRET)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Signed Printmotor bodies the database would refuse or that are absurd. Each is answered
# 200 (stored, then rejected or applied with the text cleaned) or 400 (stored as rejected).
BAD_WEBHOOKS = {
    "nul-in-reference": webhook_body(601, "USER_ORDER_CREATED", reference="R\u0000601"),
    "nul-in-description": webhook_body(602, "USER_ORDER_CREATED", description="a\u0000b"),
    "lone-surrogate": b'{"eventType":"USER_ORDER_CREATED","userOrder":{"orderNumber":603,'
    b'"meta":{"reference":"\\ud800"}}}',
    "200-digit-order-number": b'{"eventType":"USER_ORDER_CREATED","userOrder":{"orderNumber":'
    + b"9" * 200
    + b"}}",
    "year-9999-minus-14h": webhook_body(
        604, "USER_ORDER_DELIVERED", delivery_time="9999-12-31T23:59:59-14:00"
    ),
    "deep-json": b'{"eventType":"USER_ORDER_CREATED","userOrder":{"orderNumber":605,"x":'
    + nested(100_000)
    + b"}}",
    "nul-in-event-type": b'{"eventType":"A\\u0000B","userOrder":{"orderNumber":606}}',
    "long-event-type": json.dumps(
        {"eventType": "X" * 300, "userOrder": {"orderNumber": 607}}
    ).encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_WEBHOOKS))
async def test_hostile_webhooks_are_stored_never_5xx_and_the_next_good_one_applies(
    database_url: str, name: str
) -> None:
    bad = BAD_WEBHOOKS[name]
    good = webhook_body(700, "USER_ORDER_DELIVERED", tracking_code="GOOD")
    async with running_app(settings(database_url)) as (_, client):
        answer = await client.post("/webhooks/printmotor", content=bad, headers=sign(bad))
        after = await client.post("/webhooks/printmotor", content=good, headers=sign(good))
        ready = await client.get("/readyz")
        shown = await client.get("/v1/printmotor/orders/700", headers=AUTH)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.headers["content-type"] == "application/problem+json"
    events = await stored(database_url)
    assert [e.body for e in events] == [bad, good]
    assert events[0].state in ("rejected", "applied", "unchanged")
    if events[0].state == "rejected":
        assert events[0].error
    assert (after.status_code, ready.status_code) == (200, 200)
    assert events[1].state == "applied"
    assert (shown.json()["status"], shown.json()["trackingCode"]) == ("delivered", "GOOD")


BAD_CALLBACKS = {
    "nul-in-error": {"jobId": "cb-1", "isFailure": True, "failureDetails": "x\u0000y"},
    "nul-in-job-id": {"jobId": "cb\u00002", "isFailure": True},
    "300-char-external-order-id": {
        "jobId": "cb-3",
        "isFailure": False,
        "externalOrderId": "E" * 300,
        "result": {"r": {"document": "https://cdn.example/3.pdf"}},
    },
    "year-9999-minus-14h": {
        "jobId": "cb-4",
        "isFinalStatus": True,
        "isSuccess": False,
        "errorDetails": "boom",
        "failedOn": "9999-12-31T23:59:59-14:00",
    },
    "long-job-id": {"jobId": "J" * 300, "isFailure": True},
    "job-id-not-a-string": {"jobId": 12345, "isFailure": True},
}


@pytest.mark.parametrize("name", sorted(BAD_CALLBACKS))
async def test_hostile_callbacks_are_stored_never_5xx_and_the_next_good_one_applies(
    database_url: str, name: str
) -> None:
    bad = json.dumps(BAD_CALLBACKS[name]).encode()
    good = json.dumps(
        {"jobId": "good-job", "isFailure": False, "result": {"r": {"document": "https://f/g"}}}
    ).encode()
    url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with running_app(settings(database_url)) as (_, client):
        answer = await client.post(url, content=bad)
        after = await client.post(url, content=good)
        ready = await client.get("/readyz")
        shown = await client.get("/v1/printess/jobs/good-job", headers=AUTH)
    assert answer.status_code in (200, 400), answer.text
    events = await stored(database_url)
    assert [e.body for e in events] == [bad, good]
    assert events[0].state in ("rejected", "applied")
    assert (after.status_code, ready.status_code) == (200, 200)
    assert events[1].state == "applied"
    assert shown.json()["status"] == "succeeded"
    async with db_session(database_url) as session:
        jobs = list(await session.scalars(select(PrintessJob.job_id)))
    # Nothing half-applied from the bad one under a mangled id.
    assert set(jobs) <= {"good-job", "cb-1", "cb-3", "cb-4"}


async def test_a_body_that_names_no_subject_is_400_and_kept_as_rejected(database_url: str) -> None:
    url = f"/callbacks/printess/{CALLBACK_SECRET}"
    async with running_app(settings(database_url)) as (_, client):
        no_job = await client.post(url, content=b'{"isFailure": true}')
        not_object = await client.post(url, content=b"[]")
    assert (no_job.status_code, not_object.status_code) == (400, 400)
    assert no_job.json()["type"] == "urn:printhook:problem:unusable-event"
    events = await stored(database_url)
    assert [(e.state, e.error) for e in events] == [
        ("rejected", "jobId is missing or not a string"),
        ("rejected", "body is not a JSON object"),
    ]
    assert no_job.json()["eventId"] == events[0].id
