"""Request ids, the access line and redaction of secrets in every log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter

from app.deps import ShopKey
from app.main import create_app
from tests.ops.conftest import CapturedLogs
from tests.support.helpers import AUTH, SHOP_KEY, make_settings, running_app

NO_DB = "sqlite+aiosqlite:////nonexistent-dir/printhook.db"
CALLBACK_TOKEN = "cbtok-7f3a9c1e5b2d4f60a8e1"
SERVICE_TOKEN = "printess-service-token-5d1c7e"
WEBHOOK_SECRET = "printmotor-hmac-key-91b0c4d2"

probe = APIRouter()
probe_log = logging.getLogger("printhook.probe")


@probe.post("/probe/callbacks/printess/{token}")
async def fake_callback(token: str) -> dict[str, bool]:
    # Domain code logging a URL that holds the token, as a careless line would.
    probe_log.info("probe.callback", extra={"url": f"http://x/callbacks/printess/{token}"})
    return {"ok": True}


@probe.get("/probe/shop")
async def shop_only(_: ShopKey) -> dict[str, bool]:
    probe_log.info("probe.shop")
    return {"ok": True}


@probe.get("/probe/crash")
async def crash() -> None:
    raise RuntimeError(f"vendor said no to token {SERVICE_TOKEN} and key {WEBHOOK_SECRET}")


@asynccontextmanager
async def probe_client() -> AsyncIterator[httpx.AsyncClient]:
    """The app plus probe routes, lifespan running; app exceptions reach the middleware."""
    settings = make_settings(
        NO_DB,
        printess_service_token=SERVICE_TOKEN,
        printmotor_webhook_secrets=WEBHOOK_SECRET,
    )
    app = create_app(settings)
    app.include_router(probe)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://printhook.test") as c:
            yield c


async def test_a_request_id_is_generated_returned_and_bound_to_every_line(
    logs: CapturedLogs,
) -> None:
    async with probe_client() as client:
        response = await client.get("/probe/shop", headers=AUTH)
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    (domain_line,) = logs.events("probe.shop")
    (access,) = logs.events("http.request")
    assert domain_line["request_id"] == request_id
    assert access["request_id"] == request_id
    assert access["method"] == "GET"
    assert access["path"] == "/probe/shop"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert access["client_ip"] == "127.0.0.1"


async def test_a_sane_incoming_request_id_is_kept() -> None:
    async with running_app(make_settings(NO_DB)) as (_, client):
        response = await client.get("/healthz", headers={"X-Request-ID": "edge-4f2a.9:1"})
    assert response.headers["x-request-id"] == "edge-4f2a.9:1"


async def test_an_oversized_or_odd_incoming_request_id_is_replaced(logs: CapturedLogs) -> None:
    async with running_app(make_settings(NO_DB)) as (_, client):
        long_id = await client.get("/healthz", headers={"X-Request-ID": "a" * 129})
        odd_id = await client.get("/healthz", headers={"X-Request-ID": 'x"} {"admin":1'})
    for response in (long_id, odd_id):
        assert response.status_code == 200
        assert len(response.headers["x-request-id"]) == 32
        assert response.headers["x-request-id"] != "a" * 129
    assert "admin" not in logs.text


async def test_access_line_masks_the_printess_callback_token(logs: CapturedLogs) -> None:
    async with probe_client() as client:
        response = await client.post(f"/probe/callbacks/printess/{CALLBACK_TOKEN}?x=1", json={})
    assert response.status_code == 200
    (access,) = logs.events("http.request")
    assert access["path"] == "/probe/callbacks/printess/***"
    (domain_line,) = logs.events("probe.callback")
    assert domain_line["url"] == "http://x/callbacks/printess/***"
    assert CALLBACK_TOKEN not in logs.text


async def test_a_wrong_api_key_is_refused_and_never_logged(logs: CapturedLogs) -> None:
    wrong = "wrong-key-0f9e8d7c6b5a"
    async with probe_client() as client:
        refused = await client.get("/probe/shop", headers={"Authorization": f"Bearer {wrong}"})
        accepted = await client.get("/probe/shop", headers=AUTH)
    assert refused.status_code == 401
    assert wrong not in refused.text
    assert accepted.status_code == 200
    assert [line["status"] for line in logs.events("http.request")] == [401, 200]
    assert wrong not in logs.text
    assert SHOP_KEY not in logs.text


async def test_a_crashing_handler_answers_problem_json_and_logs_no_secret(
    logs: CapturedLogs,
) -> None:
    async with probe_client() as client:
        crashed = await client.get("/probe/crash", headers={"X-Request-ID": "crash-1"})
        healthy = await client.get("/healthz")
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "application/problem+json"
    assert crashed.headers["x-request-id"] == "crash-1"
    assert SERVICE_TOKEN not in crashed.text
    assert healthy.status_code == 200
    (failure,) = logs.events("http.request.failed")
    assert failure["request_id"] == "crash-1"
    assert "RuntimeError: vendor said no to token *** and key ***" in failure["exc_info"]
    assert [line["status"] for line in logs.events("http.request")] == [500, 200]
    assert SERVICE_TOKEN not in logs.text
    assert WEBHOOK_SECRET not in logs.text


def test_log_lines_outside_requests_have_no_request_id(logs: CapturedLogs) -> None:
    logging.getLogger("printhook.test").info("test.event", extra={"job_id": "j1"})
    (line,) = logs.events("test.event")
    assert line["job_id"] == "j1"
    assert "request_id" not in line
    assert line["level"] == "info"
    assert line["logger"] == "printhook.test"


def test_uvicorn_colour_duplicates_and_secret_fields_are_dropped(logs: CapturedLogs) -> None:
    logging.getLogger("uvicorn.error").info(
        "server.started", extra={"color_message": "\x1b[1mserver.started\x1b[0m"}
    )
    logging.getLogger("printhook.test").info(
        "test.fields",
        extra={"signature": "abc123==", "headers": {"Authorization": "Bearer zzz-top-secret"}},
    )
    (started,) = logs.events("server.started")
    assert "color_message" not in started
    (fields,) = logs.events("test.fields")
    assert fields["signature"] == "***"
    assert "zzz-top-secret" not in logs.text
