"""The applier: verified callbacks within the shared budget, poison events, arrival order."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.context import AppContext
from app.inbound import applier as applier_module
from app.inbound.applier import PendingEvent
from app.inbound.models import InboundEvent
from app.main import applier, create_app
from app.printmotor.webhook import PrintmotorApplier
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from app.simulator.printmotor import signed_headers, webhook_body
from tests.printess.conftest import CALLBACK_SECRET, SERVICE_TOKEN, printess_settings
from tests.printmotor.conftest import SECRET, feed_types, pm_settings
from tests.support.helpers import AUTH, db_session, running_app, serve_in_thread, wait_for


async def states(database_url: str) -> dict[int, tuple[str, str | None, int]]:
    async with db_session(database_url) as session:
        rows = await session.scalars(select(InboundEvent).order_by(InboundEvent.id))
        return {row.id: (row.state, row.error, row.attempts) for row in rows}


async def test_a_hundred_verified_callbacks_stay_within_the_status_budget(
    database_url: str,
) -> None:
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=0))
    job_ids = [sim.create_job(delay=0).job_id for _ in range(100)]
    with serve_in_thread(sim.create_app()) as printess_url:
        settings = printess_settings(
            database_url,
            printess_url,
            printess_status_rate=20,
            run_workers=True,
            reconcile_interval=3600,
        )
        with serve_in_thread(create_app(settings)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                loop = asyncio.get_running_loop()
                started = loop.time()
                answers = await asyncio.gather(
                    *(
                        client.post(
                            f"/callbacks/printess/{CALLBACK_SECRET}",
                            json=sim.callback_body(job_id),
                        )
                        for job_id in job_ids
                    )
                )
                assert {a.status_code for a in answers} == {200}

                async def all_final() -> bool:
                    page = await client.get(
                        "/v1/printess/jobs", params={"limit": 200}, headers=AUTH
                    )
                    items = page.json()["items"]
                    return len(items) == 100 and all(item["isFinal"] for item in items)

                await wait_for(all_final, timeout=15)
                took = loop.time() - started
    calls = sorted(call.at for call in sim.calls_to("status"))
    assert len(calls) == 100  # one verification each, no slot wasted
    # Never more than 20 status/get calls within any one second.
    busiest = max(sum(1 for other in calls[i:] if other - at < 1.0) for i, at in enumerate(calls))
    assert busiest <= 20, busiest
    assert took < 15


async def test_a_poison_event_is_parked_others_flow_and_replay_applies_it_after_the_fix(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = PrintmotorApplier.apply

    async def broken(self: Any, ctx: Any, session: Any, event: PendingEvent, prepared: Any) -> Any:
        if event.subject_id == "66":
            raise RuntimeError("a bug in applying order 66")
        return await real_apply(self, ctx, session, event, prepared)

    monkeypatch.setattr(PrintmotorApplier, "apply", broken)
    monkeypatch.setattr(applier_module, "retry_delay", lambda attempts: applier_module.timedelta())
    settings = pm_settings(database_url, apply_max_attempts=3)
    bodies = [webhook_body(n, "USER_ORDER_CREATED") for n in (65, 66, 67)]
    async with running_app(settings, apply=False) as (app, client):
        for body in bodies:
            answer = await client.post(
                "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
            )
            assert answer.status_code == 200
        await app.state.applier.drain()
        seen = await states(database_url)
        shown = await client.get("/v1/inbound-events", params={"state": "failed"}, headers=AUTH)
        metrics = (await client.get("/metrics")).text

        monkeypatch.setattr(PrintmotorApplier, "apply", real_apply)  # the fix is deployed
        replayed = await client.post("/v1/inbound-events/2/replay", headers=AUTH)
    assert seen[1][0] == seen[3][0] == "applied"
    assert seen[2] == ("failed", "RuntimeError: a bug in applying order 66", 3)
    assert [item["id"] for item in shown.json()["items"]] == [2]
    assert 'printhook_inbound_failed{source="printmotor"} 1.0' in metrics
    assert replayed.status_code == 200
    assert (replayed.json()["state"], replayed.json()["error"]) == ("applied", None)
    assert await feed_types(database_url, 66) == ["printmotor.order.received"]


@pytest.mark.postgres_only
async def test_two_appliers_apply_each_orders_events_once_and_in_arrival_order(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two processes sharing one database: PostgreSQL")
    settings = pm_settings(database_url, apply_batch_size=7)
    orders = range(300, 320)
    async with running_app(settings, apply=False) as (_, client):
        for step in ("created", "delivered", "tracked"):
            for number in orders:
                if step == "created":
                    body = webhook_body(number, "USER_ORDER_CREATED")
                elif step == "delivered":
                    body = webhook_body(
                        number, "USER_ORDER_DELIVERED", delivery_time="2026-11-20T10:00"
                    )
                else:
                    body = webhook_body(
                        number,
                        "USER_ORDER_DELIVERED",
                        delivery_time="2026-11-21T10:00",
                        tracking_code=f"T{number}",
                    )
                answer = await client.post(
                    "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
                )
                assert answer.status_code == 200
    one, two = AppContext.create(settings), AppContext.create(settings)
    try:
        assert one.instance_id != two.instance_id
        await asyncio.gather(applier(one).drain(), applier(two).drain(), applier(one).drain())
    finally:
        await one.aclose()
        await two.aclose()
    seen = await states(database_url)
    assert {state for state, _, _ in seen.values()} == {"applied"}
    for number in orders:
        assert await feed_types(database_url, number) == [
            "printmotor.order.received",
            "printmotor.order.status_changed",
            "printmotor.order.tracking_updated",
        ]


async def test_the_operator_api_lists_filters_pages_shows_and_replays(database_url: str) -> None:
    settings = pm_settings(database_url)
    async with running_app(settings) as (_, client):
        for number in (11, 12, 13):
            body = webhook_body(number, "USER_ORDER_CREATED")
            await client.post(
                "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
            )
        await client.post(
            "/webhooks/printmotor", content=b"[]", headers=signed_headers(b"[]", SECRET)
        )
        first = (await client.get("/v1/inbound-events", params={"limit": 2}, headers=AUTH)).json()
        rest = (
            await client.get(
                "/v1/inbound-events",
                params={"limit": 2, "cursor": first["nextCursor"]},
                headers=AUTH,
            )
        ).json()
        rejected = await client.get(
            "/v1/inbound-events", params={"state": "rejected"}, headers=AUTH
        )
        by_subject = await client.get(
            "/v1/inbound-events", params={"subject": "12", "source": "printmotor"}, headers=AUTH
        )
        later = await client.get(
            "/v1/inbound-events", params={"received_after": "2999-01-01T00:00:00Z"}, headers=AUTH
        )
        naive = await client.get(
            "/v1/inbound-events", params={"received_after": "2026-01-01T00:00:00"}, headers=AUTH
        )
        one = await client.get("/v1/inbound-events/2", params={"include": "body"}, headers=AUTH)
        plain = await client.get("/v1/inbound-events/2", headers=AUTH)
        missing = await client.get("/v1/inbound-events/999", headers=AUTH)
        anonymous = await client.get("/v1/inbound-events")
        replayed = await client.post("/v1/inbound-events/2/replay", headers=AUTH)
    assert [e["id"] for e in first["items"]] == [1, 2]
    assert [e["id"] for e in rest["items"]] == [3, 4]
    assert [(e["id"], e["state"]) for e in rejected.json()["items"]] == [(4, "rejected")]
    assert rejected.json()["items"][0]["error"] == "body is not a JSON object"
    assert [e["subject"] for e in by_subject.json()["items"]] == ["12"]
    assert later.json()["items"] == []
    assert naive.status_code == 400
    shown = one.json()
    assert (shown["source"], shown["type"], shown["subject"], shown["state"]) == (
        "printmotor",
        "USER_ORDER_CREATED",
        "12",
        "applied",
    )
    assert shown["receivedAt"]
    assert shown["processedAt"]

    assert base64.b64decode(shown["body"]) == webhook_body(12, "USER_ORDER_CREATED")
    assert plain.json()["body"] is None
    assert missing.status_code == 404
    assert anonymous.status_code == 401
    assert replayed.status_code == 200
    assert replayed.json()["state"] == "applied"
    assert json.loads(base64.b64decode(shown["body"]))["userOrder"]["orderNumber"] == 12
