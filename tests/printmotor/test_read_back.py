"""Read-backs as Printmotor answers them: only RECEIVED and IN_PRODUCTION mean "still in
production"; anything else means Printmotor is done with the order. Order numbers can never
steer a read-back to another path; naive timestamps are read in the configured zone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.context import AppContext
from app.db import utcnow
from app.inbound.models import InboundEvent
from app.printmotor import client as pm
from app.printmotor import reconciler
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import FakePrintmotor
from tests.printmotor.conftest import (
    count_rows,
    created,
    feed_types,
    order_row,
    pm_settings,
    post_webhook,
)
from tests.printmotor.test_placement import order_request
from tests.support.helpers import AUTH, db_session, running_app


async def _make_due(database_url: str, number: str) -> None:
    async with db_session(database_url) as session:
        await session.execute(
            update(PrintmotorOrder)
            .where(PrintmotorOrder.order_number == number)
            .values(next_poll_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


async def _place(client: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    placed = await client.post("/v1/printmotor/orders", json=order_request(reference), headers=AUTH)
    assert placed.status_code == 201
    body: dict[str, Any] = placed.json()
    return body


async def test_an_unknown_status_on_read_back_flags_the_order_done_and_stops_polling(
    database_url: str,
    fake_printmotor: tuple[FakePrintmotor, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    async with running_app(settings) as (app, client):
        ctx: AppContext = app.state.ctx
        number = (await _place(client, "SHOP-RB1"))["orderNumber"]
        # Printmotor moves the order on to a status no source has shown, with tracking.
        fake.set_status(
            number,
            "HANDED_TO_CARRIER",
            description="On its way",
            tracking_code="JJFI1",
            tracking_links=["https://t.example/JJFI1"],
            delivery_time="2026-11-23T09:00",
        )
        await _make_due(database_url, number)
        with caplog.at_level(logging.INFO, logger="printhook.printmotor"):
            first = await reconciler.run_once(ctx)
        shown = (await client.get(f"/v1/printmotor/orders/{number}", headers=AUTH)).json()
        # Later passes, and a late webhook for the order, do not bring the read-backs back.
        await post_webhook(client, created(number, reference="SHOP-RB1"))
        await _make_due(database_url, number)
        second = await reconciler.run_once(ctx)
    assert (first.polled, first.changed, second.polled) == (1, 1, 0)
    assert fake.read_calls == 1
    assert shown["isFinal"] is True
    assert shown["doneProcessingStatus"] == "HANDED_TO_CARRIER"
    assert shown["doneAt"] is not None
    assert shown["processingStatus"] == "HANDED_TO_CARRIER"
    assert shown["status"] == "received"  # an unknown name does not move the rank
    assert (shown["trackingCode"], shown["trackingLinks"]) == (
        "JJFI1",
        ["https://t.example/JJFI1"],
    )
    assert shown["poll"]["nextPollAt"] is None
    assert await feed_types(database_url, number) == [
        "printmotor.order.received",
        "printmotor.order.done",
    ]
    [logged] = [r for r in caplog.records if r.getMessage() == "printmotor.order.done"]
    assert logged.__dict__["processing_status"] == "HANDED_TO_CARRIER"
    assert logged.__dict__["order_number"] == str(number)
    assert logged.levelno == logging.WARNING


@pytest.mark.parametrize(
    ("processing_status", "status"), [("CANCELLED", "cancelled"), ("DELIVERED", "delivered")]
)
async def test_known_done_names_on_read_back_move_the_status_and_flag_it(
    database_url: str,
    fake_printmotor: tuple[FakePrintmotor, str],
    processing_status: str,
    status: str,
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    async with running_app(settings) as (app, client):
        number = (await _place(client, f"SHOP-{processing_status}"))["orderNumber"]
        fake.set_status(number, processing_status)
        await _make_due(database_url, number)
        await reconciler.run_once(app.state.ctx)
        shown = (await client.get(f"/v1/printmotor/orders/{number}", headers=AUTH)).json()
    assert (shown["status"], shown["isFinal"]) == (status, True)
    assert shown["doneProcessingStatus"] == processing_status
    assert shown["poll"]["nextPollAt"] is None


async def test_in_production_on_read_back_keeps_the_order_polled(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    async with running_app(settings) as (app, client):
        number = (await _place(client, "SHOP-RB3"))["orderNumber"]
        fake.set_status(number, "IN_PRODUCTION", description="In production")
        await _make_due(database_url, number)
        await reconciler.run_once(app.state.ctx)
        shown = (await client.get(f"/v1/printmotor/orders/{number}", headers=AUTH)).json()
    assert (shown["status"], shown["isFinal"], shown["doneAt"]) == ("in_production", False, None)
    assert shown["poll"]["nextPollAt"] is not None


async def test_naive_timestamps_are_read_in_the_configured_zone_and_kept_raw(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(
        database_url,
        printmotor_api_url=url,
        printmotor_read_rate=100,
        printmotor_timezone="Europe/Helsinki",
    )
    async with running_app(settings) as (app, client):
        placed = await _place(client, "SHOP-TZ")
        number = placed["orderNumber"]
        fake.set_status(number, "DELIVERED", tracking_code="TZ1", delivery_time="2026-11-23T09:00")
        await _make_due(database_url, number)
        await reconciler.run_once(app.state.ctx)
        shown = (await client.get(f"/v1/printmotor/orders/{number}", headers=AUTH)).json()
    # The fake answers estimatedDeliveryTime "2026-12-01T12:00"; Helsinki is UTC+2 in winter.
    assert placed["estimatedDeliveryTimeRaw"] == "2026-12-01T12:00"
    assert datetime.fromisoformat(placed["estimatedDeliveryTime"]) == datetime(
        2026, 12, 1, 10, 0, tzinfo=UTC
    )
    assert shown["deliveryTimeRaw"] == "2026-11-23T09:00"
    assert datetime.fromisoformat(shown["deliveryTime"]) == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    row = await order_row(database_url, number)
    assert row is not None
    assert row.delivery_time == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("number", ["../../order", "7/../../admin", "..", "7?all=1"])
async def test_a_signed_webhook_with_a_path_like_order_number_is_rejected_and_never_read(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str], number: str
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url, printmotor_read_rate=100)
    body = created(number, reference="SHOP-PATH")
    async with running_app(settings) as (app, client):
        answer = await post_webhook(client, body)
        summary = await reconciler.run_once(app.state.ctx)
    assert answer.status_code == 400
    assert "orderNumber" in answer.json()["detail"]
    async with db_session(database_url) as session:
        stored = list(await session.scalars(select(InboundEvent)))
    assert [(e.body, e.subject_id) for e in stored] == [(body, None)]
    assert stored[0].error is not None
    assert "orderNumber" in stored[0].error
    assert await count_rows(database_url, PrintmotorOrder) == 0
    assert summary.polled == 0
    assert fake.requests == []


@pytest.mark.parametrize(
    ("number", "sent_path"),
    [
        ("../../admin", "/api/v1/order/..%2F..%2Fadmin"),
        ("..", "/api/v1/order/%2E%2E"),
        ("7?all=1#x", "/api/v1/order/7%3Fall%3D1%23x"),
    ],
)
async def test_the_client_escapes_order_numbers_into_one_path_segment(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str], number: str, sent_path: str
) -> None:
    fake, url = fake_printmotor
    settings = pm_settings(database_url, printmotor_api_url=url)
    async with httpx.AsyncClient() as http:
        client = pm.PrintmotorClient(http, settings)
        with pytest.raises(pm.Rejected) as refused:
            await client.get_order(number)
    assert refused.value.status == 404
    assert fake.requests == [("GET", sent_path)]
