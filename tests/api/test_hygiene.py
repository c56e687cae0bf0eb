"""Input the database would refuse gets a 4xx problem on every /v1 route, never a 5xx, and
loses nothing: the job and order that were there before are unchanged afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.printess.models import PrintessJob, PrintessSubmission
from app.printmotor.models import PrintmotorPlacement
from app.simulator.printmotor import signed_headers, webhook_body
from tests.support.helpers import AUTH, db_session, make_settings, running_app

SECRET = "printmotor-webhook-key-current-0001"
LONG = "x" * 300


def settings(database_url: str) -> Any:
    return make_settings(
        database_url,
        printmotor_webhook_secrets=SECRET,
        printess_service_token="printess-service-token-0123456789",
        printess_api_url="http://127.0.0.1:9",
        printmotor_username="printhook",
        printmotor_password="printmotor-password",
        printmotor_service="printhook-service",
        printmotor_api_url="http://127.0.0.1:9",
    )


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


async def seed(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """One job and one order that bad requests must leave as they are."""
    job = await client.put("/v1/printess/jobs/job-kept", json={"reference": "r-1"}, headers=AUTH)
    assert job.status_code == 201
    body = webhook_body(7001, "USER_ORDER_CREATED", reference="ref-kept")
    hook = await client.post(
        "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
    )
    assert hook.status_code == 200
    order = await client.get("/v1/printmotor/orders/7001", headers=AUTH)
    assert order.status_code == 200
    return job.json(), order.json()


async def assert_intact(
    client: httpx.AsyncClient, job: dict[str, Any], order: dict[str, Any]
) -> None:
    assert (await client.get("/v1/printess/jobs/job-kept", headers=AUTH)).json() == job
    assert (await client.get("/v1/printmotor/orders/7001", headers=AUTH)).json() == order
    assert (await client.get("/readyz")).status_code == 200


BAD_PATHS = [
    ("GET", "/v1/printess/jobs/a%00b", 400),
    ("PUT", "/v1/printess/jobs/a%00b", 400),
    ("GET", "/v1/printmotor/orders/7%000", 400),
    ("GET", f"/v1/printess/jobs/{'j' * 129}", 422),
    ("PUT", f"/v1/printess/jobs/{'j' * 129}", 422),
    ("GET", f"/v1/printmotor/orders/{'1' * 129}", 422),
    ("PUT", "/v1/printess/jobs/a%01b", 422),
    ("GET", "/v1/printess/jobs?reference=%00", 400),
    ("GET", "/v1/printmotor/orders?reference=a%00", 400),
    ("GET", f"/v1/printess/jobs?reference={LONG}", 422),
    ("GET", f"/v1/printmotor/orders?reference={LONG}", 422),
    ("GET", "/v1/printess/jobs?unknown=%00", 400),
]


@pytest.mark.parametrize(("method", "path", "status"), BAD_PATHS)
async def test_nul_and_over_long_identifiers_in_path_and_query_are_4xx(
    database_url: str, method: str, path: str, status: int
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        job, order = await seed(client)
        response = await client.request(method, path, headers=AUTH, json={})
        assert_problem(response, status)
        await assert_intact(client, job, order)


BAD_BODIES: list[tuple[str, str, bytes]] = [
    ("PUT", "/v1/printess/jobs/job-new", b'{"reference": "a\\u0000b"}'),
    ("PUT", "/v1/printess/jobs/job-new", b'{"reference": "\\ud800"}'),
    ("PUT", "/v1/printess/jobs/job-new", b'{"reference": "' + LONG.encode() + b'"}'),
    ("PUT", "/v1/printess/jobs/job-new", b'{"reference": 5}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t\\u0000", "origin": "o"}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t", "origin": "\\udfff"}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "' + LONG.encode() + b'", "origin": "o"}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t", "origin": "o", "x": ["\\u0000"]}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t", "origin": "o", "k\\u0000": 1}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t", "origin": "o", "x": NaN}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t", "origin": "o", "copies": "2"}'),
    ("POST", "/v1/printess/jobs", b'{"templateName": "t"}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {"reference": "r\\u0000"}}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {"reference": "r", "n\\u0000": 1}}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {"reference": "r"}, "a": {"b": "\\u0000"}}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {"reference": "r"}, "a": Infinity}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {"reference": "\\ud83d"}}'),
    ("POST", "/v1/printmotor/orders", b'{"meta": {}}'),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_BODIES)
async def test_nul_surrogates_and_wrong_types_in_json_bodies_are_422(
    database_url: str, method: str, path: str, body: bytes
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        job, order = await seed(client)
        response = await client.request(
            method, path, content=body, headers={**AUTH, "content-type": "application/json"}
        )
        assert_problem(response, 422)
        errors = response.json()["errors"]
        assert errors
        assert all("input" not in error for error in errors)  # values are never echoed
        await assert_intact(client, job, order)
    async with db_session(database_url) as session:
        for model in (PrintessSubmission, PrintmotorPlacement):
            assert await session.scalar(select(func.count()).select_from(model)) == 0
        assert await session.scalar(select(func.count()).select_from(PrintessJob)) == 1


@pytest.mark.parametrize("path", ["/v1/printess/jobs", "/v1/printmotor/orders"])
@pytest.mark.parametrize("key", ["", "k" * 256, "a\x01b"])
async def test_empty_or_unusable_idempotency_key_is_422_on_both_posts(
    database_url: str, path: str, key: str
) -> None:
    body = (
        {"templateName": "t", "origin": "o"}
        if "printess" in path
        else {"meta": {"reference": "r-1"}, "products": [{"amount": 1}]}
    )
    async with running_app(settings(database_url)) as (_, client):
        response = await client.post(path, json=body, headers={**AUTH, "Idempotency-Key": key})
    assert_problem(response, 422)
    async with db_session(database_url) as session:
        for model in (PrintessSubmission, PrintmotorPlacement):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


LIST_PATHS = ["/v1/printess/jobs", "/v1/printmotor/orders"]
BAD_QUERIES = [
    "updated_after=2026-11-23T18:00:00",  # no time zone
    "updated_after=2026-11-23",
    "updated_after=9999-12-31T23:59:59-14:00",  # past the last storable instant
    "updated_after=0001-01-01T00:00:00%2B01:00",  # before the first
    "updated_after=10000-01-01T00:00:00Z",
    "updated_after=2026-02-30T00:00:00Z",
    "updated_after=",
    "cursor=",
    "cursor=not-a-cursor",
    "cursor=WyIyMDI2LTExLTIzVDE4OjAwOjAwIiwiMSJd",  # base64 JSON with a naive time
    "cursor=1.0",  # odd number of hex digits
    "cursor=1.ZZ",
    f"cursor=1.{'00' * 600}",
    "status=shipped",
    "status=",
    "status=PENDING",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
async def test_both_lists_refuse_the_same_inputs_with_the_same_400(
    database_url: str, query: str
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        job, order = await seed(client)
        answers = [await client.get(f"{path}?{query}", headers=AUTH) for path in LIST_PATHS]
        for response in answers:
            assert_problem(response, 400)
        assert answers[0].json()["type"] == answers[1].json()["type"]
        if not query.startswith("status"):  # the list of statuses differs; the rest not
            assert answers[0].json()["detail"] == answers[1].json()["detail"]
        await assert_intact(client, job, order)


# (cursor, items after it: the seeded job and order were changed in 2026-12)
CRAFTED_CURSORS = [
    ("0.", 1),  # before everything
    ("999999999999999999.ffff", 0),  # after everything, and not UTF-8
    (f"63902919845678901.{'00' * 10}", 1),  # 2026-01-02, NUL bytes in the key
    ("63902919845678901.eda080", 1),  # an encoded surrogate
    (f"{'9' * 18}.{'00' * 512}", 0),
]


@pytest.mark.parametrize(("cursor", "expected"), CRAFTED_CURSORS)
async def test_a_crafted_but_well_formed_cursor_is_only_a_position(
    database_url: str, cursor: str, expected: int
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        await seed(client)
        answers = [
            await client.get(path, params={"cursor": cursor}, headers=AUTH) for path in LIST_PATHS
        ]
    for response in answers:
        assert response.status_code == 200, response.text
    assert [len(response.json()["items"]) for response in answers] == [expected, expected]


async def test_pages_follow_next_cursor_on_both_lists(database_url: str) -> None:
    async with running_app(settings(database_url)) as (_, client):
        for n in range(5):
            assert (await client.put(f"/v1/printess/jobs/job-{n}", headers=AUTH)).status_code == 201
            body = webhook_body(8000 + n, "USER_ORDER_CREATED", reference=f"ref-{n}")
            hook = await client.post(
                "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
            )
            assert hook.status_code == 200
        for path, key in (("/v1/printess/jobs", "jobId"), ("/v1/printmotor/orders", "orderNumber")):
            seen: list[str] = []
            params: dict[str, Any] = {"limit": 2, "updated_after": "2000-01-01T00:00:00+02:00"}
            while True:
                page = (await client.get(path, params=params, headers=AUTH)).json()
                seen += [item[key] for item in page["items"]]
                if page["nextCursor"] is None:
                    break
                params["cursor"] = page["nextCursor"]
            assert len(seen) == 5
            assert len(set(seen)) == 5
