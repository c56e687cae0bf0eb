"""GET /v1/events: stable types, full-state payloads, cursors, filters and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.feed.conftest import observe
from tests.support.helpers import AUTH, make_settings, running_app, wait_for


async def all_events(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], str]:
    answer = await client.get("/v1/events", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["items"], body["next"]


async def settled(
    client: httpx.AsyncClient, count: int, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """The page once it holds `count` events. On PostgreSQL an event is served only after
    every older transaction on the server has ended (other tests' included): wait for that."""

    async def page() -> tuple[list[dict[str, Any]], str] | None:
        items, cursor = await all_events(client, **params)
        return (items, cursor) if len(items) >= count else None

    result = await wait_for(page)
    assert result is not None
    assert len(result[0]) == count
    return result


async def test_events_carry_stable_types_and_the_entitys_full_state(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        put = await client.put("/v1/printess/jobs/job-1", json={"reference": "A-1"}, headers=AUTH)
        assert put.status_code == 201
        await observe(database_url, "6912", "received", event_type="USER_ORDER_CREATED")
        await observe(database_url, "6912", "in_production", processing_status="IN_PRODUCTION")
        await observe(
            database_url,
            "6912",
            "delivered",
            event_type="USER_ORDER_DELIVERED",
            tracking_code="JJFI1",
            delivery_time=datetime(2026, 12, 1, 9, tzinfo=UTC),
        )
        await observe(
            database_url,
            "6912",
            "delivered",
            event_type="USER_ORDER_DELIVERED",
            tracking_code="JJFI2",
            delivery_time=datetime(2026, 12, 1, 10, tzinfo=UTC),
        )
        await observe(database_url, "7000", "received", event_type="USER_ORDER_CREATED")
        await observe(database_url, "7000", "cancelled", event_type="USER_ORDER_CANCELLED")

        items, _ = await settled(client, 7)
        assert [(e["type"], e["subject"]) for e in items] == [
            ("printess.job.tracked", {"type": "printess_job", "id": "job-1"}),
            ("printmotor.order.received", {"type": "printmotor_order", "id": "6912"}),
            ("printmotor.order.status_changed", {"type": "printmotor_order", "id": "6912"}),
            ("printmotor.order.status_changed", {"type": "printmotor_order", "id": "6912"}),
            ("printmotor.order.tracking_updated", {"type": "printmotor_order", "id": "6912"}),
            ("printmotor.order.received", {"type": "printmotor_order", "id": "7000"}),
            ("printmotor.order.cancelled", {"type": "printmotor_order", "id": "7000"}),
        ]
        assert [e["id"] for e in items] == sorted(e["id"] for e in items)
        assert all(e["createdAt"].endswith("Z") for e in items)

        # `data` is exactly what the entity's GET shows (the order's GET adds its history).
        job = (await client.get("/v1/printess/jobs/job-1", headers=AUTH)).json()
        assert items[0]["data"] == job
        order = (await client.get("/v1/printmotor/orders/6912", headers=AUTH)).json()
        order.pop("history")
        assert items[4]["data"] == order
        assert items[4]["data"]["trackingCode"] == "JJFI2"
        assert items[3]["data"]["status"] == "delivered"
        assert items[3]["data"]["trackingCode"] == "JJFI1"


async def test_a_job_submitted_through_printhook_is_tracked_too(database_url: str) -> None:
    # Covered end to end by the Printess tests; here: the PUT of a known job with a new
    # reference is a documented `printess.job.updated`.
    async with running_app(make_settings(database_url)) as (_, client):
        await client.put("/v1/printess/jobs/job-2", json={"reference": "A"}, headers=AUTH)
        await client.put("/v1/printess/jobs/job-2", json={"reference": "B"}, headers=AUTH)
        await client.put("/v1/printess/jobs/job-2", json={"reference": "B"}, headers=AUTH)
        items, _ = await settled(client, 2)
        assert [e["type"] for e in items] == ["printess.job.tracked", "printess.job.updated"]
        assert items[1]["data"]["reference"] == "B"


async def test_next_pages_through_every_event_once_and_is_present_on_empty_pages(
    database_url: str,
) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        for n in range(7):
            await client.put(f"/v1/printess/jobs/page-{n}", headers=AUTH)
        await settled(client, 7)
        seen: list[int] = []
        cursor: str | None = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 3}
            if cursor is not None:
                params["after"] = cursor
            items, cursor = await all_events(client, **params)
            seen += [e["id"] for e in items]
            if not items:
                break
        assert len(seen) == 7
        assert len(set(seen)) == 7
        assert cursor

        # An empty page still hands out a cursor, and it is stable.
        items, again = await all_events(client, after=cursor)
        assert items == []
        assert again == cursor

        await client.put("/v1/printess/jobs/page-late", headers=AUTH)
        items, _ = await settled(client, 1, after=cursor)
        assert [e["subject"]["id"] for e in items] == ["page-late"]


async def test_type_and_subject_filters(database_url: str) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        await client.put("/v1/printess/jobs/f-1", headers=AUTH)
        await observe(database_url, "1", "received")
        await observe(database_url, "2", "received")
        await observe(database_url, "2", "cancelled")

        await settled(client, 4)
        items, _ = await all_events(client, subject="printmotor_order:2")
        assert [e["type"] for e in items] == [
            "printmotor.order.received",
            "printmotor.order.cancelled",
        ]
        items, _ = await all_events(client, type="printess.job.tracked,printmotor.order.cancelled")
        assert [(e["subject"]["id"], e["type"]) for e in items] == [
            ("f-1", "printess.job.tracked"),
            ("2", "printmotor.order.cancelled"),
        ]


async def test_bad_cursor_limit_or_subject_is_a_problem_and_changes_nothing(
    database_url: str,
) -> None:
    async with running_app(make_settings(database_url)) as (_, client):
        await client.put("/v1/printess/jobs/keep-1", headers=AUTH)
        for params, status in (
            ({"after": "not-a-cursor"}, 400),
            ({"after": "12.ab"}, 400),
            ({"after": "-1.5"}, 400),
            ({"after": "1." + "2" * 120}, 400),  # longer than any cursor
            ({"after": ""}, 400),
            ({"limit": 0}, 422),
            ({"limit": 100000}, 422),
            ({"limit": "many"}, 422),
            ({"subject": "6912"}, 400),
            ({"subject": "shipment:1"}, 400),
        ):
            answer = await client.get("/v1/events", params=params, headers=AUTH)
            assert answer.status_code == status, (params, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == status
        unauthorized = await client.get("/v1/events")
        assert unauthorized.status_code == 401

        items, _ = await settled(client, 1)
        assert [e["subject"]["id"] for e in items] == ["keep-1"]


async def test_a_consumer_resumes_from_its_saved_cursor_after_a_restart(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as (_, client):
        for n in range(3):
            await client.put(f"/v1/printess/jobs/before-{n}", headers=AUTH)
        items, saved = await settled(client, 3)

    # printhook restarts; more changes happen while the consumer is away.
    async with running_app(settings) as (_, client):
        await client.put("/v1/printess/jobs/after-0", headers=AUTH)
        await observe(database_url, "42", "received")
        items, _ = await settled(client, 2, after=saved)
        assert [e["subject"]["id"] for e in items] == ["after-0", "42"]
