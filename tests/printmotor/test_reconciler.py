"""Missed webhooks are healed by reading stale orders back, within budget, without overlap."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from app.context import AppContext
from app.db import utcnow
from app.printmotor import reconciler
from app.printmotor.models import PrintmotorOrder
from app.ratelimit import paused_until
from app.simulator.printmotor import CannedAnswer, FakePrintmotor
from tests.printmotor.conftest import created, feed_types, order_row, pm_settings, post_webhook
from tests.support.helpers import db_session, running_app, wait_for


async def _make_stale(database_url: str, *numbers: str) -> None:
    async with db_session(database_url) as session:
        await session.execute(
            update(PrintmotorOrder)
            .where(PrintmotorOrder.order_number.in_(numbers))
            .values(next_poll_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


async def test_lost_delivered_webhook_is_healed_by_the_stale_order_read_back(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(
        database_url,
        printmotor_api_url=url,
        printmotor_stale_after="1s",
        printmotor_read_rate=100,
        reconcile_interval=0.1,
        run_workers=True,
    )
    async with running_app(settings) as (_, client):
        placed = await client.post(
            "/v1/printmotor/orders",
            json={"meta": {"reference": "SHOP-R"}, "products": [{"product": "poster"}]},
            headers={"Authorization": "Bearer test-shop-key-0123456789"},
        )
        number = placed.json()["orderNumber"]
        # Printmotor ships it, and the DELIVERED webhook never arrives.
        fake.set_status(
            number,
            "DELIVERED",
            description="Delivered",
            tracking_code="LOST-1",
            tracking_links=["https://t.example/LOST-1"],
            delivery_time="2026-11-23T09:00",
        )

        async def healed() -> bool:
            row = await order_row(database_url, number)
            return row is not None and row.status == "delivered"

        await wait_for(healed, timeout=10)
    row = await order_row(database_url, number)
    assert row is not None
    assert (row.tracking_code, row.tracking_links) == ("LOST-1", ["https://t.example/LOST-1"])
    assert row.next_poll_at is None
    assert row.lease_owner is None
    assert await feed_types(database_url, number) == [
        "printmotor.order.received",
        "printmotor.order.status_changed",
    ]


async def test_fresh_and_done_orders_are_not_read_back(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    async with running_app(settings) as (app, client):
        await post_webhook(client, created(31))  # fresh: next read-back in 24 h
        summary = await reconciler.run_once(app.state.ctx)
    assert summary.polled == 0
    assert fake.read_calls == 0


async def test_throttled_read_back_pauses_the_budget_and_keeps_the_order_due(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    fake.read_failures.append(CannedAnswer(429, {"message": "slow down"}, {"Retry-After": "30"}))
    async with running_app(settings) as (app, client):
        await post_webhook(client, created(32))
        await post_webhook(client, created(33))
        await _make_stale(database_url, "32", "33")
        ctx: AppContext = app.state.ctx
        first = await reconciler.run_once(ctx)
        second = await reconciler.run_once(ctx)
        paused = await paused_until(ctx.session_factory, reconciler.READ_BUDGET)
    assert first.throttled is True
    assert second.skipped == "throttled by Printmotor"
    assert fake.read_calls == 1
    assert paused is not None
    for number in ("32", "33"):
        row = await order_row(database_url, number)
        assert row is not None
        assert row.lease_owner is None
        assert row.next_poll_at is not None
        assert row.next_poll_at <= utcnow()


async def test_failed_read_back_backs_off_per_order(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    _, url = fake_printmotor
    settings = pm_settings(
        database_url, printmotor_api_url=url, printmotor_read_rate=100, reconcile_interval=60
    )
    async with running_app(settings) as (app, client):
        await post_webhook(client, created(34))  # unknown to the fake: 404 on read
        await _make_stale(database_url, "34")
        summary = await reconciler.run_once(app.state.ctx)
    row = await order_row(database_url, "34")
    assert summary.errors == 1
    assert row is not None
    assert row.poll_attempts == 1
    assert row.next_poll_at is not None
    assert timedelta(seconds=60) < row.next_poll_at - utcnow() < timedelta(seconds=150)
    assert row.status == "received"


async def test_two_replicas_never_read_the_same_order_twice(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.read_delay = 0.05
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=1000)
    numbers = [str(n) for n in range(40, 46)]
    async with running_app(settings) as (app_a, client), running_app(settings) as (app_b, _):
        for number in numbers:
            await post_webhook(client, created(number))
            fake.orders[number] = {
                "orderNumber": int(number),
                "processingStatus": "IN_PRODUCTION",
                "meta": {},
            }
        await _make_stale(database_url, *numbers)
        a, b = await asyncio.gather(
            reconciler.run_once(app_a.state.ctx), reconciler.run_once(app_b.state.ctx)
        )
    assert a.polled + b.polled == len(numbers)
    assert fake.read_calls == len(numbers)
    for number in numbers:
        row = await order_row(database_url, number)
        assert row is not None
        assert row.status == "in_production"


async def test_shutdown_during_a_slow_read_back_releases_the_leases(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.read_delay = 30
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=1000)
    async with running_app(settings) as (app, client):
        await post_webhook(client, created(50))
        fake.orders["50"] = {"orderNumber": 50, "processingStatus": "RECEIVED", "meta": {}}
        await _make_stale(database_url, "50")
        task = asyncio.create_task(reconciler.run_once(app.state.ctx))

        async def leased() -> bool:
            row = await order_row(database_url, "50")
            return row is not None and row.lease_owner is not None

        await wait_for(leased, timeout=5)
        await wait_for(lambda: asyncio.sleep(0, result=fake.read_calls == 1), timeout=5)
        started = asyncio.get_running_loop().time()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert asyncio.get_running_loop().time() - started < 2
    row = await order_row(database_url, "50")
    assert row is not None
    assert (row.lease_owner, row.leased_until) == (None, None)
