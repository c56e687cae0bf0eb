"""Orders are placed at Printmotor at most once per Idempotency-Key and per meta.reference."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.printmotor import client as printmotor_client
from app.printmotor.models import PrintmotorPlacement
from app.simulator.printmotor import CannedAnswer, FakePrintmotor
from tests.printmotor.conftest import count_rows, created, pm_settings, post_webhook
from tests.support.helpers import AUTH, running_app


def order_request(reference: str) -> dict[str, Any]:
    """order-request-example.json with a reference of our own."""
    return {
        "address": {
            "address": "Mannerheimintie 18",
            "countryIso2": "FI",
            "name": "Brad Pitt",
            "postalArea": "Helsinki",
            "postalCode": "00100",
        },
        "meta": {"reference": reference},
        "orderer": {"emailAddress": "brad.pitt@example.com", "firstName": "Brad"},
        "postalClass": "EXPRESS",
        "productionClass": "HIGH",
        "products": [{"amount": 1, "product": "matt-poster", "size": "30x40"}],
    }


def headers(key: str | None = None) -> dict[str, str]:
    return {**AUTH, **({"Idempotency-Key": key} if key else {})}


async def test_order_is_placed_and_a_repeat_answers_the_same_without_resending(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        first = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-1"), headers=headers("k-1")
        )
        repeat = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-1"), headers=headers("k-1")
        )
        shown = await client.get(
            f"/v1/printmotor/orders/{first.json()['orderNumber']}", headers=AUTH
        )
    assert first.status_code == 201
    assert repeat.status_code == 201
    assert first.json()["orderNumber"] == repeat.json()["orderNumber"]
    assert first.json()["status"] == "received"
    assert first.json()["reference"] == "SHOP-1"
    assert shown.json()["history"][0]["type"] == "printmotor.order.received"
    assert fake.create_calls == 1
    assert fake.placed[0]["meta"]["reference"] == "SHOP-1"
    assert fake.placed[0]["products"][0]["product"] == "matt-poster"


async def test_concurrent_placements_with_one_key_reach_printmotor_once(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.create_delay = 0.3  # keep the first call in flight while the others arrive
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/printmotor/orders", json=order_request("SHOP-2"), headers=headers("k-2")
                )
                for _ in range(8)
            )
        )
        settled = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-2"), headers=headers("k-2")
        )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) >= 1
    assert set(codes) <= {201, 409}
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["type"] == "urn:printhook:problem:placement-in-progress"
    assert settled.status_code == 201
    assert fake.create_calls == 1
    assert len(fake.orders_with_reference("SHOP-2")) == 1


async def test_concurrent_placements_with_one_reference_and_no_key_reach_printmotor_once(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.create_delay = 0.2
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/printmotor/orders",
                    json=order_request("SHOP-3"),
                    headers=headers(f"key-{i}" if i % 2 else None),
                )
                for i in range(8)
            )
        )
    assert sorted({a.status_code for a in answers}) in ([201], [201, 409])
    assert fake.create_calls == 1
    assert len(fake.orders_with_reference("SHOP-3")) == 1


async def test_timed_out_placement_is_not_resent_and_a_webhook_resolves_it(
    database_url: str,
    fake_printmotor: tuple[FakePrintmotor, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = fake_printmotor
    monkeypatch.setattr(printmotor_client, "CREATE_TIMEOUT", httpx.Timeout(0.3))
    fake.create_delay = 1.0  # Printmotor accepts the order, but its answer comes too late
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        first = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-4"), headers=headers("k-4")
        )
        fake.create_delay = 0
        repeat = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-4"), headers=headers("k-4")
        )
        other_key = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-4"), headers=headers("k-4b")
        )
        [made] = fake.orders_with_reference("SHOP-4")
        hook = await post_webhook(client, created(made["orderNumber"], reference="SHOP-4"))
        resolved = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-4"), headers=headers("k-4")
        )
    assert first.status_code == 409
    assert first.json()["type"] == "urn:printhook:problem:placement-outcome-unknown"
    assert "will not send it again" in first.json()["detail"]
    assert repeat.status_code == 409
    assert repeat.json()["type"] == "urn:printhook:problem:placement-outcome-unknown"
    assert other_key.status_code == 409
    assert fake.create_calls == 1
    assert hook.status_code == 200
    assert resolved.status_code == 201
    assert resolved.json()["orderNumber"] == str(made["orderNumber"])
    assert fake.create_calls == 1


async def test_server_error_after_accepting_is_unknown_not_resent(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.fail_after_accept = 502
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        first = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-5"), headers=AUTH
        )
        fake.fail_after_accept = None
        repeat = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-5"), headers=AUTH
        )
    assert (first.status_code, repeat.status_code) == (409, 409)
    assert fake.create_calls == 1


async def test_printmotor_refusal_is_a_problem_with_its_message_and_may_be_retried(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.create_failures.append(CannedAnswer(400, {"message": "postalCode: invalid for FI"}))
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        refused = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-6"), headers=headers("k-6")
        )
        assert await count_rows(database_url, PrintmotorPlacement) == 0
        retried = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-6"), headers=headers("k-6")
        )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:printhook:problem:printmotor-rejected"
    assert refused.json()["detail"] == "postalCode: invalid for FI"
    assert retried.status_code == 201
    assert fake.create_calls == 2
    assert len(fake.placed) == 1


async def test_wrong_printmotor_credentials_are_a_502_and_are_not_echoed(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    _, url = fake_printmotor
    settings = pm_settings(
        database_url, printmotor_api_url=url, printmotor_password="wrong-password-123456"
    )
    async with running_app(settings) as (_, client):
        response = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-7"), headers=AUTH
        )
    assert response.status_code == 502
    assert "wrong-password" not in response.text


async def test_idempotency_key_reused_for_another_order_is_422(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        first = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-8"), headers=headers("k-8")
        )
        other = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-9"), headers=headers("k-8")
        )
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["type"] == "urn:printhook:problem:idempotency-key-reused"
    assert fake.create_calls == 1


async def test_order_without_reference_is_refused_before_printmotor(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    body = order_request("x")
    del body["meta"]
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        response = await client.post("/v1/printmotor/orders", json=body, headers=headers("k-10"))
    assert response.status_code == 422
    assert fake.create_calls == 0


async def test_order_made_outside_printhook_with_the_reference_is_409_and_not_sent(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        # Made by hand in Printmotor's UI; its webhook told printhook about it. Its body is
        # unknown, so printhook can neither send this one nor claim it is the same order.
        await post_webhook(client, created(4242, reference="SHOP-11"))
        response = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-11"), headers=AUTH
        )
        again = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-11"), headers=AUTH
        )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:printhook:problem:reference-in-use"
    assert response.json()["orderNumber"] == "4242"
    assert "4242" in response.json()["detail"]
    assert again.status_code == 409
    assert fake.create_calls == 0
    assert await count_rows(database_url, PrintmotorPlacement) == 0


async def test_a_reference_reused_with_another_order_body_is_409_naming_the_order(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    other_body = order_request("SHOP-12")
    other_body["products"] = [{"amount": 2, "product": "canvas", "size": "50x70"}]
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        first = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-12"), headers=headers("k-12")
        )
        other = await client.post("/v1/printmotor/orders", json=other_body, headers=AUTH)
        other_key = await client.post(
            "/v1/printmotor/orders", json=other_body, headers=headers("k-12b")
        )
        same = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-12"), headers=AUTH
        )
    number = first.json()["orderNumber"]
    assert first.status_code == 201
    for refused in (other, other_key):
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:printhook:problem:reference-in-use"
        assert refused.json()["orderNumber"] == number
        assert f"Printmotor order {number}" in refused.json()["detail"]
    assert same.status_code == 201
    assert same.json()["orderNumber"] == number
    assert fake.create_calls == 1
    assert fake.placed[0]["products"][0]["product"] == "matt-poster"


async def test_printmotor_technical_description_is_in_the_refusal(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    body = order_request("SHOP-13")
    body["products"] = []  # the fake refuses it as Printmotor does, with technicalDescription
    both = {"message": "Validation failed", "technicalDescription": "postalCode: invalid"}
    async with running_app(pm_settings(database_url, printmotor_api_url=url)) as (_, client):
        refused = await client.post("/v1/printmotor/orders", json=body, headers=AUTH)
        fake.create_failures.append(CannedAnswer(400, both))
        explained = await client.post(
            "/v1/printmotor/orders", json=order_request("SHOP-14"), headers=AUTH
        )
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:printhook:problem:printmotor-rejected"
    assert refused.json()["detail"] == "products: must not be empty"
    assert explained.json()["detail"] == "Validation failed (technical: postalCode: invalid)"
    assert fake.orders == {}
