"""Conformance tables for every authenticated entry point: vector in, status out.

Refused requests must leave nothing behind (no inbound event, no job, no order); accepted vendor
requests are only checked for `200 {"ok": true, ...}` (the ack body is growing an `eventId`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from app.inbound.models import InboundEvent
from app.printess import service
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import webhook_body
from tests.support.helpers import SHOP_KEY, db_session, make_settings, running_app

KEY = "printmotor-webhook-key-current-0001"
OLD_KEY = "printmotor-webhook-key-previous-0002"
CALLBACK_SECRET = "printess-shared-callback-secret-0001"
JOB_TOKEN = "per-job-callback-token-abcdefghijklmnop"
OLD_SHOP_KEY = "previous-shop-key-0123456789"
HEADER = "X-Printmotor-Hmac-SHA256"


def settings(database_url: str) -> Any:
    return make_settings(
        database_url,
        api_keys=f"{SHOP_KEY},{OLD_SHOP_KEY}",
        printmotor_webhook_secrets=f"{KEY},{OLD_KEY}",
        printess_callback_secret=CALLBACK_SECRET,
    )


def digest(body: bytes, key: str = KEY) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def b64(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(digest(body, key)).decode()


async def count(database_url: str, model: Any) -> int:
    async with db_session(database_url) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


BODY = webhook_body(4242, "USER_ORDER_CREATED", reference="ref-4242")
TAMPERED = BODY.replace(b"4242", b"4243")
RESERIALISED = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
assert RESERIALISED != BODY  # the vector only means something if the bytes differ

# (id, headers for the raw BODY, expected status)
WEBHOOK_VECTORS: list[tuple[str, list[tuple[str, str]], int]] = [
    ("valid-base64", [(HEADER, b64(BODY))], 200),
    ("valid-hex", [(HEADER, digest(BODY).hex())], 200),
    ("valid-hex-uppercase", [(HEADER, digest(BODY).hex().upper())], 200),
    ("rotated-old-key", [(HEADER, b64(BODY, OLD_KEY))], 200),
    ("whitespace-around-header", [(HEADER, f"  {b64(BODY)}\t ")], 200),
    ("tampered-body", [(HEADER, b64(TAMPERED))], 401),
    ("tampered-header", [(HEADER, b64(BODY)[:-4] + "AAA=")], 401),
    ("wrong-key", [(HEADER, b64(BODY, "some-other-key-0123456789"))], 401),
    ("empty-header", [(HEADER, "")], 401),
    ("missing-header", [], 401),
    ("oversized-header", [(HEADER, b64(BODY) * 200)], 401),
    ("signature-over-reserialised-json", [(HEADER, b64(RESERIALISED))], 401),
    ("truncated-digest", [(HEADER, base64.b64encode(digest(BODY)[:16]).decode())], 401),
    ("two-headers-first-wrong", [(HEADER, b64(TAMPERED)), (HEADER, b64(BODY))], 401),
    ("two-headers-second-wrong", [(HEADER, b64(BODY)), (HEADER, b64(TAMPERED))], 401),
    ("two-valid-headers", [(HEADER, b64(BODY)), (HEADER, b64(BODY))], 401),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [pytest.param(h, e, id=name) for name, h, e in WEBHOOK_VECTORS],
)
async def test_printmotor_webhook_signature_vectors(
    database_url: str, headers: list[tuple[str, str]], expected: int
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        response = await client.post(
            "/webhooks/printmotor",
            content=BODY,
            headers=[*headers, ("content-type", "application/json")],
        )
    assert response.status_code == expected, response.text
    if expected == 200:
        assert response.json()["ok"] is True
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert await count(database_url, InboundEvent) == 0
        assert await count(database_url, PrintmotorOrder) == 0


async def _job_with_token(database_url: str) -> None:
    async with db_session(database_url) as session:
        await service.ensure_job(
            session,
            "job-with-token",
            event_type="printess.job.tracked",
            next_poll_at=None,
            callback_token_hash=service.hash_token(JOB_TOKEN),
        )
        await session.commit()


def callback_body(job_id: str) -> bytes:
    return json.dumps(
        {
            "jobId": job_id,
            "isFailure": False,
            "result": {"r": {"document": "https://cdn.example/doc.pdf"}},
        }
    ).encode()


# (id, token in the URL, expected status class: "ok" or "refused")
CALLBACK_VECTORS = [
    ("per-job-token", JOB_TOKEN, "job-with-token", "ok"),
    ("shared-secret", CALLBACK_SECRET, "job-from-the-shop", "ok"),
    ("wrong-token", "not-a-token-0123456789", "job-with-token", "refused"),
    ("shared-secret-with-suffix", CALLBACK_SECRET + "x", "job-from-the-shop", "refused"),
    ("per-job-token-prefix", JOB_TOKEN[:-1], "job-with-token", "refused"),
    ("oversized-token", "t" * 4000, "job-with-token", "refused"),
]


@pytest.mark.parametrize(
    ("token", "job_id", "outcome"),
    [pytest.param(t, j, o, id=name) for name, t, j, o in CALLBACK_VECTORS],
)
async def test_printess_callback_token_vectors(
    database_url: str, token: str, job_id: str, outcome: str
) -> None:
    await _job_with_token(database_url)
    async with running_app(settings(database_url)) as (_, client):
        response = await client.post(f"/callbacks/printess/{token}", content=callback_body(job_id))
    if outcome == "ok":
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
        return
    # DESIGN.md: a wrong token is 401 or 404, and nothing is stored.
    assert response.status_code in (401, 404), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert token not in response.text
    assert await count(database_url, InboundEvent) == 0
    assert await count(database_url, PrintessJob) == 1  # only the job made above


async def test_printess_callback_without_a_token_is_not_served(database_url: str) -> None:
    async with running_app(settings(database_url)) as (_, client):
        response = await client.post("/callbacks/printess/", content=callback_body("j"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(database_url, InboundEvent) == 0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# (id, headers, expected status)
API_KEY_VECTORS: list[tuple[str, dict[str, str], int]] = [
    ("valid", bearer(SHOP_KEY), 201),
    ("rotated-old-key", bearer(OLD_SHOP_KEY), 201),
    ("lower-case-scheme", {"Authorization": f"bearer {SHOP_KEY}"}, 201),
    ("wrong-key", bearer("not-a-key-0123456789"), 401),
    ("key-prefix", bearer(SHOP_KEY[:-1]), 401),
    ("missing", {}, 401),
    ("wrong-scheme", {"Authorization": f"Basic {SHOP_KEY}"}, 401),
    ("scheme-only", {"Authorization": "Bearer"}, 401),
    ("empty-token", {"Authorization": "Bearer "}, 401),
    ("empty-header", {"Authorization": ""}, 401),
    ("oversized", bearer("k" * 4000), 401),
]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [pytest.param(h, e, id=name) for name, h, e in API_KEY_VECTORS],
)
async def test_shop_api_key_vectors(
    database_url: str, headers: dict[str, str], expected: int
) -> None:
    async with running_app(settings(database_url)) as (_, client):
        response = await client.put("/v1/printess/jobs/job-1", json={}, headers=headers)
        listed = await client.get("/v1/printmotor/orders", headers=headers)
    assert response.status_code == expected, response.text
    assert listed.status_code == (200 if expected == 201 else 401)
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert SHOP_KEY not in response.text
        assert await count(database_url, PrintessJob) == 0
    else:
        assert await count(database_url, PrintessJob) == 1


def _filled(path: str) -> str:
    return path.replace("{jobId}", "j").replace("{orderNumber}", "1")


def _every_v1_operation(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method in item
    ]


async def test_every_v1_operation_is_documented_as_keyed_and_refuses_no_key(
    database_url: str,
) -> None:
    async with running_app(settings(database_url)) as (app, client):
        document = app.openapi()
        operations = _every_v1_operation(document)
        answers = {
            (method, path): await client.request(method.upper(), _filled(path), json={})
            for method, path in operations
        }
    assert operations
    for (method, path), response in answers.items():
        operation = document["paths"][path][method]
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert "401" in operation["responses"], (method, path)
        assert response.status_code == 401, (method, path, response.text)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
