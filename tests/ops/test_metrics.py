"""GET /metrics: request counts by route template, backlog gauges from the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.db import utcnow
from app.feed.models import Delivery, Event, NotifyState
from app.inbound.models import InboundEvent
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import signed_headers, webhook_body
from tests.support.helpers import db_session, make_settings, running_app


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_requests_are_counted_by_route_template_never_the_raw_path(
    database_url: str,
) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        before = (await client.get("/metrics")).text
        await client.get("/healthz")
        await client.get("/healthz")
        await client.post("/callbacks/printess/tok-secret-abcdef123", content=b"{}")
        await client.get("/no/such/path-xyz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    delta = sample(after, "printhook_http_requests_total", **healthz) - sample(
        before, "printhook_http_requests_total", **healthz
    )
    assert delta == 2
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert sample(after, "printhook_http_requests_total", **unmatched) >= 1
    assert "tok-secret-abcdef123" not in after
    assert "path-xyz" not in after
    for declared in (
        "printhook_vendor_ack_seconds",
        "printhook_inbound_events_total",
        "printhook_reconciler_polls_total",
        "printhook_vendor_calls_total",
    ):
        assert f"# TYPE {declared.removesuffix('_total')}" in after


async def test_backlog_gauges_count_non_final_jobs_and_orders_and_the_oldest_age(
    database_url: str,
) -> None:
    now = utcnow()
    async with db_session(database_url) as session:
        for job_id, status, age in (("j-old", "pending", 3600), ("j-new", "pending", 60)):
            session.add(job(job_id, status, now - timedelta(seconds=age)))
        session.add(job("j-done", "succeeded", now - timedelta(days=3)))
        session.add(order("1001", "in_production", now - timedelta(seconds=7200)))
        session.add(order("1002", "delivered", now - timedelta(days=9)))
        session.add(order("1003", "cancelled", now - timedelta(days=9)))
        await session.commit()
    async with running_app(make_settings(database_url)) as (_, client):
        text = (await client.get("/metrics")).text
    assert sample(text, "printhook_non_final", kind="printess_job") == 2
    assert sample(text, "printhook_non_final", kind="printmotor_order") == 1
    job_age = sample(text, "printhook_oldest_non_final_age_seconds", kind="printess_job")
    order_age = sample(text, "printhook_oldest_non_final_age_seconds", kind="printmotor_order")
    assert 3600 <= job_age < 3600 + 60
    assert 7200 <= order_age < 7200 + 60


async def test_backlog_gauges_are_zero_on_an_empty_database(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        text = (await client.get("/metrics")).text
    for kind in ("printess_job", "printmotor_order"):
        assert sample(text, "printhook_non_final", kind=kind) == 0
        assert sample(text, "printhook_oldest_non_final_age_seconds", kind=kind) == 0


async def test_metrics_are_served_while_the_database_is_down() -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    async with running_app(settings) as (_, client):
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "printhook_http_requests_total" in response.text


def job(job_id: str, status: str, created_at: object) -> PrintessJob:
    return PrintessJob(
        job_id=job_id,
        status=status,
        documents={},
        pictures=[],
        created_at=created_at,
        updated_at=created_at,
        poll_attempts=0,
    )


def order(order_number: str, status: str, created_at: object) -> PrintmotorOrder:
    rank = {"in_production": 20, "delivered": 30, "cancelled": 40}[status]
    return PrintmotorOrder(
        order_number=order_number,
        status=status,
        status_rank=rank,
        tracking_links=[],
        created_at=created_at,
        updated_at=created_at,
        poll_attempts=0,
    )


async def test_vendor_endpoints_are_labelled_by_their_templates(database_url: str) -> None:
    secret = "metrics-test-webhook-key-0001"
    body = webhook_body(5100, "USER_ORDER_DELIVERED")
    settings = make_settings(database_url, printmotor_webhook_secrets=secret)
    async with running_app(settings) as (_, client):
        before = (await client.get("/metrics")).text
        signed = await client.post(
            "/webhooks/printmotor", content=body, headers=signed_headers(body, secret)
        )
        forged = await client.post("/webhooks/printmotor", content=body)
        wrong = await client.post("/callbacks/printess/not-a-token-5c1e", content=b"{}")
        after = (await client.get("/metrics")).text
    assert (signed.status_code, forged.status_code, wrong.status_code) == (200, 401, 404)

    def delta(**labels: str) -> float:
        name = "printhook_http_requests_total"
        return sample(after, name, **labels) - sample(before, name, **labels)

    webhook = {"method": "POST", "route": "/webhooks/printmotor"}
    assert delta(**webhook, status="200") == 1
    assert delta(**webhook, status="401") == 1
    assert delta(method="POST", route="/callbacks/printess/{token}", status="404") == 1
    assert "not-a-token-5c1e" not in after


async def test_inbound_and_delivery_gauges_are_read_from_the_database_at_each_scrape(
    database_url: str,
) -> None:
    # No background work runs (a web process with PRINTHOOK_RUN_WORKERS=false): every value
    # below can only come from the scrape itself.
    now = utcnow()
    async with db_session(database_url) as session:
        for key, source, state, age in (
            ("pm-old", "printmotor", "pending", 900),
            ("pm-new", "printmotor", "pending", 30),
            ("pm-done", "printmotor", "applied", 5000),
            ("pe-parked", "printess", "failed", 4000),
        ):
            session.add(inbound(key, source, state, now - timedelta(seconds=age)))
        events = [feed_event(f"70{n}", now) for n in range(4)]
        session.add_all(events)
        await session.flush()
        for event, state, age in zip(
            events,
            ("pending", "pending", "delivered", "failed"),
            (600, 20, 9000, 9000),
            strict=True,
        ):
            session.add(delivery(event, state, now - timedelta(seconds=age)))
        session.add(
            NotifyState(
                id=1,
                since=now - timedelta(days=1),
                cursor_tx_id=0,
                cursor_event_id=0,
                disabled_at=now,
                disabled_reason="the receiver answered 410 Gone",
                updated_at=now,
            )
        )
        await session.commit()
    async with running_app(make_settings(database_url)) as (_, client):
        first = (await client.get("/metrics")).text
        async with db_session(database_url) as session:
            await session.execute(
                update(InboundEvent).where(InboundEvent.state == "pending").values(state="applied")
            )
            await session.execute(
                update(Delivery).where(Delivery.state == "pending").values(state="delivered")
            )
            await session.execute(update(NotifyState).values(disabled_at=None))
            await session.commit()
        second = (await client.get("/metrics")).text

    assert sample(first, "printhook_inbound_pending", source="printmotor") == 2
    assert sample(first, "printhook_inbound_pending", source="printess") == 0
    pending_age = sample(first, "printhook_inbound_oldest_pending_age_seconds", source="printmotor")
    assert 900 <= pending_age < 900 + 60
    assert sample(first, "printhook_inbound_oldest_pending_age_seconds", source="printess") == 0
    assert sample(first, "printhook_inbound_failed", source="printess") == 1
    assert sample(first, "printhook_inbound_failed", source="printmotor") == 0
    assert sample(first, "printhook_pending_deliveries") == 2
    delivery_age = sample(first, "printhook_oldest_pending_delivery_age_seconds")
    assert 600 <= delivery_age < 600 + 60
    assert sample(first, "printhook_deliveries_disabled") == 1

    # The next scrape sees the database as it is now, not the values of the first.
    assert sample(second, "printhook_inbound_pending", source="printmotor") == 0
    assert sample(second, "printhook_inbound_oldest_pending_age_seconds", source="printmotor") == 0
    assert sample(second, "printhook_inbound_failed", source="printess") == 1
    assert sample(second, "printhook_pending_deliveries") == 0
    assert sample(second, "printhook_oldest_pending_delivery_age_seconds") == 0
    assert sample(second, "printhook_deliveries_disabled") == 0


def inbound(key: str, source: str, state: str, received_at: datetime) -> InboundEvent:
    body = b'{"metrics": "test"}'
    return InboundEvent(
        source=source,
        dedupe_key=key,
        received_at=received_at,
        subject_id=key,
        state=state,
        attempts=0,
        body_size=len(body),
        body=body,
    )


def feed_event(order_number: str, created_at: datetime) -> Event:
    return Event(
        created_at=created_at,
        subject_type="printmotor_order",
        subject_id=order_number,
        type="printmotor.order.received",
        data={"orderNumber": int(order_number)},
    )


def delivery(event: Event, state: str, created_at: datetime) -> Delivery:
    return Delivery(
        event_id=event.id,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        state=state,
        attempts=0,
        next_attempt_at=created_at if state == "pending" else None,
        created_at=created_at,
    )
