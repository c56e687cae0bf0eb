"""Webhooks are stored before they are acknowledged and applied exactly once, in any order."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from app.feed.models import Event
from app.inbound.models import InboundEvent
from app.simulator.printmotor import signed_headers, webhook_body
from tests.printmotor.conftest import (
    SECRET,
    count_rows,
    created,
    delivered,
    feed_types,
    inbound_rows,
    order_row,
    pm_settings,
    post_webhook,
)
from tests.support.helpers import running_app


async def test_example_delivered_webhook_creates_an_unknown_order_with_tracking(
    database_url: str,
) -> None:
    body = delivered(
        6912,
        reference="2017-0821-3121-0192",
        tracking_code="MA0943165000000107801",
        tracking_links=["https://a.example/1", "https://b.example/2"],
        delivery_time="2017-08-24T14:57:56",
        estimated_delivery_time="2017-08-25T12:00",
        postal_class="PRIORITY",
        description="Delivered",
    )
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, body)
    assert response.status_code == 200
    row = await order_row(database_url, 6912)
    assert row is not None
    assert row.status == "delivered"
    assert row.reference == "2017-0821-3121-0192"
    assert row.tracking_code == "MA0943165000000107801"
    assert row.tracking_links == ["https://a.example/1", "https://b.example/2"]
    assert row.postal_class == "PRIORITY"
    assert row.last_event_type == "USER_ORDER_DELIVERED"
    assert row.delivery_time == datetime(2017, 8, 24, 14, 57, 56, tzinfo=UTC)
    assert row.estimated_delivery_time == datetime(2017, 8, 25, 12, 0, tzinfo=UTC)
    assert row.next_poll_at is None  # Printmotor is done with it: no read-back
    assert await feed_types(database_url, 6912) == ["printmotor.order.received"]
    [inbound] = await inbound_rows(database_url)
    assert (inbound.source, inbound.state, inbound.subject_id) == (
        "printmotor",
        "applied",
        "6912",
    )
    assert inbound.body == body


async def test_duplicate_webhook_answers_200_and_changes_nothing(database_url: str) -> None:
    body = created(100, reference="R-100")
    async with running_app(pm_settings(database_url)) as (_, client):
        first = await post_webhook(client, body)
        second = await post_webhook(client, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == {"ok": True, "eventId": 1}
    assert second.json() == first.json()  # the first copy's id
    assert await feed_types(database_url, 100) == ["printmotor.order.received"]
    assert await count_rows(database_url, InboundEvent) == 1


async def test_stale_created_event_does_not_regress_a_delivered_order(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, delivered(7, tracking_code="T1", description="Delivered"))
        late = await post_webhook(client, created(7, description="Received, waiting"))
    assert late.status_code == 200
    row = await order_row(database_url, 7)
    assert row is not None
    assert (row.status, row.tracking_code) == ("delivered", "T1")
    assert row.processing_status_description == "Delivered"
    assert row.last_event_type == "USER_ORDER_CREATED"
    assert await feed_types(database_url, 7) == ["printmotor.order.received"]
    outcomes = [r.state for r in await inbound_rows(database_url)]
    assert outcomes == ["applied", "unchanged"]


async def test_repeated_delivered_with_later_tracking_updates_tracking(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(8))
        await post_webhook(client, delivered(8, delivery_time="2026-11-20T10:00"))
        await post_webhook(
            client, delivered(8, delivery_time="2026-11-21T09:30:00", tracking_code="NEW")
        )
        # An older DELIVERED arriving late does not take the tracking back.
        await post_webhook(
            client, delivered(8, delivery_time="2026-11-20T11:00", tracking_code="OLD")
        )
    row = await order_row(database_url, 8)
    assert row is not None
    assert row.tracking_code == "NEW"
    assert await feed_types(database_url, 8) == [
        "printmotor.order.received",
        "printmotor.order.status_changed",
        "printmotor.order.tracking_updated",
    ]


async def test_cancelled_order_never_changes_status(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, webhook_body(9, "USER_ORDER_CANCELLED"))
        await post_webhook(client, created(9))
        await post_webhook(
            client, webhook_body(9, "SOMETHING_NEW", processing_status="IN_PRODUCTION")
        )
    row = await order_row(database_url, 9)
    assert row is not None
    assert row.status == "cancelled"
    assert await feed_types(database_url, 9) == ["printmotor.order.received"]


async def test_unknown_event_type_and_status_are_stored_verbatim_without_moving_rank(
    database_url: str,
) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(10))
        response = await post_webhook(
            client,
            webhook_body(10, "USER_ORDER_ON_HOLD", processing_status="ON_HOLD", description="Hold"),
        )
        in_production = await post_webhook(
            client, webhook_body(10, "USER_ORDER_UPDATED", processing_status="IN_PRODUCTION")
        )
    assert response.status_code == 200
    assert in_production.status_code == 200
    row = await order_row(database_url, 10)
    assert row is not None
    assert row.status == "in_production"
    assert row.last_event_type == "USER_ORDER_UPDATED"
    assert await feed_types(database_url, 10) == [
        "printmotor.order.received",
        "printmotor.order.updated",
        "printmotor.order.status_changed",
    ]


async def test_twenty_concurrent_copies_of_one_webhook_make_one_change(database_url: str) -> None:
    body = delivered(11, tracking_code="T-11", delivery_time="2026-11-23T10:00")
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(11))
        answers = await asyncio.gather(*(post_webhook(client, body) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert await feed_types(database_url, 11) == [
        "printmotor.order.received",
        "printmotor.order.status_changed",
    ]
    assert await count_rows(database_url, InboundEvent) == 2


async def test_concurrent_different_first_events_create_the_order_once(database_url: str) -> None:
    bodies = [created(12, description=f"copy {i}") for i in range(5)] + [delivered(12)]
    async with running_app(pm_settings(database_url)) as (_, client):
        answers = await asyncio.gather(*(post_webhook(client, b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * 6
    row = await order_row(database_url, 12)
    assert row is not None
    assert row.status == "delivered"
    assert await count_rows(database_url, InboundEvent) == 6


async def test_signed_body_that_is_not_json_is_400_and_kept_as_rejected(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(13, reference="R-13"))
        response = await post_webhook(client, b"this is not json {")
        again = await post_webhook(client, b"this is not json {")
    assert response.status_code == 400
    assert again.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    rows = await inbound_rows(database_url)
    assert [r.state for r in rows] == ["applied", "rejected"]
    assert rows[1].body == b"this is not json {"
    assert rows[1].error == "body is not JSON"
    row = await order_row(database_url, 13)
    assert row is not None
    assert (row.status, row.reference) == ("received", "R-13")


async def test_signed_json_without_order_number_is_400_and_kept_as_rejected(
    database_url: str,
) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(14))
        not_object = await post_webhook(client, b"[1, 2]")
        no_number = await post_webhook(client, b'{"eventType":"USER_ORDER_CREATED","userOrder":{}}')
    assert (not_object.status_code, no_number.status_code) == (400, 400)
    assert [r.state for r in await inbound_rows(database_url)] == [
        "applied",
        "rejected",
        "rejected",
    ]
    assert await count_rows(database_url, Event) == 1


async def test_oversized_body_is_413_and_good_data_stays(database_url: str) -> None:
    settings = pm_settings(database_url, max_body_bytes=2048)
    big = created(15, description="x" * 5000)
    async with running_app(settings) as (_, client):
        await post_webhook(client, created(15, reference="R-15"))
        response = await post_webhook(client, big)
    assert response.status_code == 413
    assert await count_rows(database_url, InboundEvent) == 1
    row = await order_row(database_url, 15)
    assert row is not None
    assert (row.reference, row.processing_status_description) == ("R-15", None)


@pytest.mark.parametrize(
    "unreachable",
    [
        "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        "sqlite+aiosqlite:////nonexistent-dir/printhook.db",
    ],
)
async def test_database_down_answers_503_so_printmotor_retries(unreachable: str) -> None:
    settings = pm_settings(unreachable)
    async with running_app(settings) as (_, client):
        response = await post_webhook(client, created(16))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_order_number_as_string_and_zoned_timestamps_are_understood(
    database_url: str,
) -> None:
    body = webhook_body(" 17", "USER_ORDER_DELIVERED", delivery_time="2026-11-23T12:00:00+02:00")
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, body)
    assert response.status_code == 200
    row = await order_row(database_url, "17")
    assert row is not None
    assert row.delivery_time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def test_a_burst_of_mixed_and_repeated_events_for_one_order_converges(
    database_url: str,
) -> None:
    created_bodies = [created(18, description=f"copy {i}") for i in range(4)]
    delivered_bodies = [
        delivered(18, tracking_code=f"T{i}", delivery_time=f"2026-11-2{i}T10:00") for i in range(4)
    ]
    burst = [*created_bodies, *delivered_bodies, *delivered_bodies[:2], created_bodies[0]]
    random.Random(18).shuffle(burst)
    async with running_app(pm_settings(database_url)) as (_, client):
        answers = await asyncio.gather(*(post_webhook(client, b) for b in burst))
    assert [a.status_code for a in answers] == [200] * len(burst)
    row = await order_row(database_url, 18)
    assert row is not None
    assert (row.status, row.tracking_code) == ("delivered", "T3")
    assert await count_rows(database_url, InboundEvent) == 8
    types = await feed_types(database_url, 18)
    # One creation, and the order reached delivered once (at creation or in one change).
    assert types.count("printmotor.order.received") == 1
    assert types.count("printmotor.order.status_changed") <= 1
    assert len(types) <= 8


async def test_webhook_is_served_under_a_root_path_prefixed_and_stripped(
    database_url: str,
) -> None:
    settings = pm_settings(database_url, root_path="/printhook")
    async with running_app(settings) as (_, client):
        body = created(7101)
        prefixed = await client.post(
            "/printhook/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
        )
        body = delivered(7101, tracking_code="JJFI7101")
        stripped = await client.post(
            "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
        )
        wrong_method = await client.get("/printhook/webhooks/printmotor")
    assert (prefixed.status_code, prefixed.json()) == (200, {"ok": True, "eventId": 1})
    assert (stripped.status_code, stripped.json()) == (200, {"ok": True, "eventId": 2})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    order = await order_row(database_url, 7101)
    assert order is not None
    assert (order.status, order.tracking_code) == ("delivered", "JJFI7101")
