"""X-Forwarded-* from trusted proxies only, and serving under a path prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Request

from app.main import create_app
from tests.ops.conftest import CapturedLogs
from tests.support.helpers import make_settings

NO_DB = "sqlite+aiosqlite:////nonexistent-dir/printhook.db"

probe = APIRouter()


@probe.get("/probe/origin")
async def origin(request: Request) -> dict[str, Any]:
    return {
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
    }


@asynccontextmanager
async def client_from(peer: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(NO_DB, **overrides))
    app.include_router(probe)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://printhook.test") as c:
            yield c


FORWARDED = {"X-Forwarded-For": "203.0.113.7, 10.0.0.5", "X-Forwarded-Proto": "https"}


async def test_forwarded_headers_from_a_trusted_proxy_network_are_honoured(
    logs: CapturedLogs,
) -> None:
    async with client_from("10.0.0.5", trusted_proxies="10.0.0.0/8") as client:
        response = await client.get("/probe/origin", headers=FORWARDED)
    assert response.json() == {"client": "203.0.113.7", "scheme": "https"}
    (access,) = logs.events("http.request")
    assert access["client_ip"] == "203.0.113.7"


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(logs: CapturedLogs) -> None:
    async with client_from("198.51.100.20", trusted_proxies="10.0.0.0/8,127.0.0.1") as client:
        response = await client.get("/probe/origin", headers=FORWARDED)
    assert response.json() == {"client": "198.51.100.20", "scheme": "http"}
    (access,) = logs.events("http.request")
    assert access["client_ip"] == "198.51.100.20"


async def test_a_forged_client_entry_left_of_the_trusted_chain_is_not_believed() -> None:
    # The proxy appends the address it saw; whatever the client put before it is untrusted.
    headers = {"X-Forwarded-For": "1.1.1.1, 198.51.100.20", "X-Forwarded-Proto": "https"}
    async with client_from("10.0.0.5", trusted_proxies="10.0.0.5") as client:
        response = await client.get("/probe/origin", headers=headers)
    assert response.json()["client"] == "198.51.100.20"


async def test_under_a_root_path_prefixed_and_stripped_paths_both_route() -> None:
    async with client_from("127.0.0.1", root_path="/printhook") as client:
        prefixed = await client.get("/printhook/healthz")
        stripped = await client.get("/healthz")
        docs = await client.get("/printhook/docs")
        openapi = await client.get("/printhook/openapi.json")
        outside = await client.get("/elsewhere/healthz")
    assert prefixed.status_code == 200
    assert stripped.status_code == 200
    assert docs.status_code == 200
    assert "/printhook/openapi.json" in docs.text
    assert openapi.status_code == 200
    assert openapi.json()["servers"] == [{"url": "/printhook"}]
    assert outside.status_code == 404


async def test_access_line_shows_the_full_path_under_a_root_path(logs: CapturedLogs) -> None:
    async with client_from("127.0.0.1", root_path="/printhook") as client:
        await client.get("/printhook/healthz")
        await client.get("/healthz")
    assert [line["path"] for line in logs.events("http.request")] == [
        "/printhook/healthz",
        "/printhook/healthz",
    ]
