"""`printhook replay <id>`: stored events go through their domain's transition again."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from app.db import utcnow
from app.feed.models import Event
from app.inbound.models import InboundEvent
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import signed_headers, webhook_body
from tests.inbound.conftest import CommandRunner, inbound_event
from tests.support.helpers import AUTH, db_session, make_settings, running_app

WEBHOOK_SECRET = "replay-test-webhook-key-0001"
CALLBACK_SECRET = "replay-test-callback-secret-0001"


async def only_inbound_id(database_url: str, source: str) -> int:
    async with db_session(database_url) as session:
        (event_id,) = (
            await session.scalars(select(InboundEvent.id).where(InboundEvent.source == source))
        ).all()
    return event_id


async def feed_size(database_url: str) -> int:
    async with db_session(database_url) as session:
        return int(await session.scalar(select(func.count()).select_from(Event)) or 0)


async def deliver_order(database_url: str) -> int:
    """A real signed DELIVERED webhook through the app; returns its inbound event id."""
    body = webhook_body(1001, "USER_ORDER_DELIVERED", tracking_code="JJFI123")
    settings = make_settings(database_url, printmotor_webhook_secrets=WEBHOOK_SECRET)
    async with running_app(settings) as (_, client):
        answer = await client.post(
            "/webhooks/printmotor", content=body, headers=signed_headers(body, WEBHOOK_SECRET)
        )
    assert answer.status_code == 200
    return await only_inbound_id(database_url, "printmotor")


async def order_state(database_url: str) -> tuple[str, str | None, object]:
    async with db_session(database_url) as session:
        order = await session.get(PrintmotorOrder, "1001")
    assert order is not None
    return order.status, order.tracking_code, order.updated_at


async def test_replaying_an_applied_printmotor_webhook_changes_nothing(
    database_url: str, printhook: CommandRunner
) -> None:
    event_id = await deliver_order(database_url)
    before, events_before = await order_state(database_url), await feed_size(database_url)
    code, out, err = printhook("replay", str(event_id), "--json")
    assert (code, err) == (0, "")
    replayed = json.loads(out)
    assert (replayed["id"], replayed["source"], replayed["subject"]) == (
        event_id,
        "printmotor",
        "1001",
    )
    assert replayed["state"] == "applied"  # what it did the first time stays on record
    assert await order_state(database_url) == before
    assert await feed_size(database_url) == events_before


async def test_replay_reapplies_a_printmotor_webhook_whose_effect_was_lost(
    database_url: str, printhook: CommandRunner
) -> None:
    event_id = await deliver_order(database_url)
    async with db_session(database_url) as session:
        # As if a bug had dropped the effect: the order never left production.
        await session.execute(
            update(PrintmotorOrder)
            .where(PrintmotorOrder.order_number == "1001")
            .values(status="in_production", status_rank=20, tracking_code=None)
        )
        await session.commit()
    events_before = await feed_size(database_url)
    code, out, _ = printhook("replay", str(event_id), "--json")
    assert code == 0
    assert json.loads(out)["state"] == "applied"
    status, tracking, _ = await order_state(database_url)
    assert (status, tracking) == ("delivered", "JJFI123")
    assert await feed_size(database_url) == events_before + 1
    code, out, _ = printhook("replay", str(event_id), "--json")
    assert code == 0
    assert await feed_size(database_url) == events_before + 1


def printess_callback(job_id: str) -> bytes:
    return json.dumps(
        {
            "jobId": job_id,
            "isFinalStatus": True,
            "isFailure": False,
            "result": {"r": {"document": "https://cdn.example/doc.pdf"}},
        }
    ).encode()


async def test_replaying_a_printess_callback_is_idempotent_and_heals_a_lost_effect(
    database_url: str, printhook: CommandRunner
) -> None:
    settings = make_settings(database_url, printess_callback_secret=CALLBACK_SECRET)
    async with running_app(settings) as (_, client):
        assert (await client.put("/v1/printess/jobs/job-9", headers=AUTH)).status_code == 201
        answer = await client.post(
            f"/callbacks/printess/{CALLBACK_SECRET}", content=printess_callback("job-9")
        )
    assert answer.status_code == 200
    event_id = await only_inbound_id(database_url, "printess")

    code, out, _ = printhook("replay", str(event_id), "--json")
    assert code == 0
    assert json.loads(out)["state"] == "applied"
    async with db_session(database_url) as session:
        job = await session.get(PrintessJob, "job-9")
        assert job is not None
        assert (job.status, job.finalized_by) == ("succeeded", "callback")
        job.status, job.finalized_by, job.documents = "pending", None, {}
        await session.commit()

    code, out, _ = printhook("replay", str(event_id), "--json")
    assert (code, json.loads(out)["state"]) == (0, "applied")
    async with db_session(database_url) as session:
        job = await session.get(PrintessJob, "job-9")
    assert job is not None
    assert (job.status, job.finalized_by) == ("succeeded", "replay")
    assert job.documents == {"document": "https://cdn.example/doc.pdf"}


async def test_replay_of_an_unknown_id_fails_clearly(
    database_url: str, printhook: CommandRunner
) -> None:
    await deliver_order(database_url)
    before = await order_state(database_url)
    code, out, err = printhook("replay", "424242")
    assert code == 1
    assert out == ""
    assert err.strip() == "printhook: no inbound event with id 424242"
    assert await order_state(database_url) == before


async def test_replay_of_a_purged_event_fails_clearly(
    database_url: str, printhook: CommandRunner
) -> None:
    async with db_session(database_url) as session:
        event = inbound_event("printmotor", "gone", b"{}", age=timedelta(days=40))
        event.body, event.body_purged_at = None, utcnow()
        session.add(event)
        await session.commit()
        event_id = event.id
    code, _, err = printhook("replay", str(event_id), "--json")
    assert code == 1
    assert f"inbound event {event_id} cannot be replayed: its body was purged" in err
