"""Newer tracking wins: the later deliveryTime, and for equal times the DELIVERED event
received later (Printmotor repeats DELIVERED to update tracking). An older event applied
again — a replay — never overwrites newer tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.context import AppContext
from app.printmotor.service import apply_observation, parse_webhook
from app.simulator.printmotor import FakePrintmotor
from tests.printmotor.conftest import delivered, feed_types, order_row, pm_settings, post_webhook
from tests.support.helpers import AUTH, running_app


def tracked(number: int, code: str, when: str | None) -> bytes:
    return delivered(
        number,
        tracking_code=code,
        tracking_links=[f"https://t.example/{code}"],
        delivery_time=when,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [("AAA", "BBB"), ("BBB", "AAA")],
    ids=["AAA-then-BBB", "BBB-then-AAA"],
)
async def test_equal_delivery_times_the_delivered_event_received_later_is_the_tracking(
    database_url: str, first: str, second: str
) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        for code in (first, second):
            answer = await post_webhook(client, tracked(80, code, "2026-11-20T10:00"))
            assert answer.status_code == 200
        shown = (await client.get("/v1/printmotor/orders/80", headers=AUTH)).json()
    assert shown["trackingCode"] == second
    assert shown["trackingLinks"] == [f"https://t.example/{second}"]
    assert await feed_types(database_url, 80) == [
        "printmotor.order.received",
        "printmotor.order.tracking_updated",
    ]


@pytest.mark.parametrize("later_first", [True, False], ids=["later-first", "earlier-first"])
async def test_different_delivery_times_the_later_time_wins_in_either_arrival_order(
    database_url: str, later_first: bool
) -> None:
    later = tracked(81, "LATE", "2026-11-21T08:15:00")
    earlier = tracked(81, "EARLY", "2026-11-20T10:00")
    async with running_app(pm_settings(database_url)) as (_, client):
        for body in (later, earlier) if later_first else (earlier, later):
            assert (await post_webhook(client, body)).status_code == 200
    row = await order_row(database_url, 81)
    assert row is not None
    assert row.tracking_code == "LATE"
    assert row.delivery_time == datetime(2026, 11, 21, 8, 15, tzinfo=UTC)


async def test_a_delivered_event_without_tracking_does_not_wipe_the_tracking(
    database_url: str,
) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, tracked(82, "KEEP", "2026-11-20T10:00"))
        await post_webhook(client, delivered(82, delivery_time="2026-11-20T10:00"))
    row = await order_row(database_url, 82)
    assert row is not None
    assert (row.tracking_code, row.tracking_links) == ("KEEP", ["https://t.example/KEEP"])


async def test_an_older_event_applied_again_does_not_overwrite_newer_tracking(
    database_url: str,
) -> None:
    """As the applier applies stored events (with each event's received_at), and as a replay
    of an older stored event does."""
    settings = pm_settings(database_url)
    received = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    old = parse_webhook(tracked(83, "OLD", "2026-11-20T10:00"))
    new = parse_webhook(tracked(83, "NEW", "2026-11-20T10:00"))
    async with running_app(settings) as (app, _):
        ctx: AppContext = app.state.ctx
        outcomes = []
        for obs, at in ((old, received), (new, received + timedelta(minutes=5)), (old, received)):
            async with ctx.session_factory() as session:
                outcomes.append(
                    await apply_observation(
                        session, obs, stale_after=settings.printmotor_stale_after, received_at=at
                    )
                )
                await session.commit()
    row = await order_row(database_url, 83)
    assert outcomes == ["applied", "applied", "unchanged"]
    assert row is not None
    assert row.tracking_code == "NEW"
    assert row.tracking_received_at == received + timedelta(minutes=5)
    assert await feed_types(database_url, 83) == [
        "printmotor.order.received",
        "printmotor.order.tracking_updated",
    ]


async def test_receive_order_not_apply_order_decides_equal_delivery_times(
    database_url: str,
) -> None:
    settings = pm_settings(database_url)
    received = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    first = parse_webhook(tracked(84, "FIRST", "2026-11-20T10:00"))
    second = parse_webhook(tracked(84, "SECOND", "2026-11-20T10:00"))
    async with running_app(settings) as (app, _):
        ctx: AppContext = app.state.ctx
        # Applied newest first (the older one replayed afterwards): the newer still wins.
        for obs, at in ((second, received + timedelta(seconds=1)), (first, received)):
            async with ctx.session_factory() as session:
                await apply_observation(
                    session, obs, stale_after=settings.printmotor_stale_after, received_at=at
                )
                await session.commit()
    row = await order_row(database_url, 84)
    assert row is not None
    assert row.tracking_code == "SECOND"
    assert await feed_types(database_url, 84) == ["printmotor.order.received"]


async def test_printmotor_repeating_delivered_with_new_tracking_updates_the_order(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url)
    async with running_app(settings) as (_, client):
        placed = await client.post(
            "/v1/printmotor/orders",
            json={"meta": {"reference": "SHOP-T"}, "products": [{"product": "poster"}]},
            headers=AUTH,
        )
        number = placed.json()["orderNumber"]
        for code in ("FIRST-LEG", "CARRIER-2"):
            fake.set_status(
                number,
                "DELIVERED",
                description="Delivered",
                tracking_code=code,
                tracking_links=[f"https://t.example/{code}"],
                delivery_time="2026-11-23T09:00",
            )
            answer = await post_webhook(client, fake.webhook(number, "USER_ORDER_DELIVERED"))
            assert answer.status_code == 200
        shown = (await client.get(f"/v1/printmotor/orders/{number}", headers=AUTH)).json()
    assert (shown["status"], shown["trackingCode"]) == ("delivered", "CARRIER-2")
    assert [h["type"] for h in shown["history"]] == [
        "printmotor.order.received",
        "printmotor.order.status_changed",
        "printmotor.order.tracking_updated",
    ]
