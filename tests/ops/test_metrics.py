"""GET /metrics: request counts by route template, backlog gauges from the database."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from app.db import utcnow
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
