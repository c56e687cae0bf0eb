"""The shop reads orders: one with its history, or pages that never skip an order."""

from __future__ import annotations

from app.simulator.printmotor import webhook_body
from tests.printmotor.conftest import created, delivered, pm_settings, post_webhook
from tests.support.helpers import AUTH, running_app


async def test_order_shows_status_tracking_and_history(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        await post_webhook(client, created(21, reference="R-21", postal_class="EXPRESS"))
        await post_webhook(
            client,
            delivered(
                21,
                tracking_code="TRK",
                tracking_links=["https://t.example/TRK"],
                delivery_time="2026-11-22T10:00",
                estimated_delivery_time="2026-11-24T12:00",
                description="Delivered",
            ),
        )
        response = await client.get("/v1/printmotor/orders/21", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["orderNumber"] == "21"
    assert body["reference"] == "R-21"
    assert body["status"] == "delivered"
    assert body["description"] == "Delivered"
    assert body["trackingCode"] == "TRK"
    assert body["trackingLinks"] == ["https://t.example/TRK"]
    assert body["postalClass"] == "EXPRESS"
    assert body["deliveryTime"].startswith("2026-11-22T10:00:00")
    assert body["estimatedDeliveryTime"].startswith("2026-11-24T12:00:00")
    assert body["lastEventType"] == "USER_ORDER_DELIVERED"
    assert [h["type"] for h in body["history"]] == [
        "printmotor.order.received",
        "printmotor.order.status_changed",
    ]
    # Each history entry carries the order as it was right after that change.
    assert body["history"][0]["data"]["status"] == "received"
    assert body["history"][1]["data"]["status"] == "delivered"
    assert body["history"][1]["data"]["trackingCode"] == "TRK"


async def test_unknown_order_is_404_problem(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await client.get("/v1/printmotor/orders/999", headers=AUTH)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_orders_api_needs_a_shop_key(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        one = await client.get("/v1/printmotor/orders/1")
        many = await client.get("/v1/printmotor/orders", headers={"Authorization": "Bearer no"})
        place = await client.post("/v1/printmotor/orders", json={"meta": {"reference": "x"}})
    assert (one.status_code, many.status_code, place.status_code) == (401, 401, 401)


async def test_pages_cover_every_order_once_and_filters_apply(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        for number in range(1, 8):
            await post_webhook(client, created(number, reference=f"R-{number % 2}"))
        await post_webhook(client, webhook_body(3, "USER_ORDER_CANCELLED"))
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/printmotor/orders", params=params, headers=AUTH)).json()
            seen += [item["orderNumber"] for item in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        cancelled = await client.get(
            "/v1/printmotor/orders", params={"status": "cancelled"}, headers=AUTH
        )
        by_reference = await client.get(
            "/v1/printmotor/orders", params={"reference": "R-1"}, headers=AUTH
        )
        latest = cancelled.json()["items"][0]["updatedAt"]
        after = await client.get(
            "/v1/printmotor/orders", params={"updated_after": latest}, headers=AUTH
        )
        bad_status = await client.get(
            "/v1/printmotor/orders", params={"status": "shipped"}, headers=AUTH
        )
        bad_cursor = await client.get(
            "/v1/printmotor/orders", params={"cursor": "!!"}, headers=AUTH
        )
    assert sorted(seen) == [str(n) for n in range(1, 8)]
    assert seen[-1] == "3"  # the most recently changed order comes last
    assert [i["orderNumber"] for i in cancelled.json()["items"]] == ["3"]
    assert {i["orderNumber"] for i in by_reference.json()["items"]} == {"1", "3", "5", "7"}
    assert after.json()["items"] == []
    assert (bad_status.status_code, bad_cursor.status_code) == (400, 400)
