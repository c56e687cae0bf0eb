"""Oversized bodies get 413 while streaming, over real HTTP; bodies at the limit pass intact."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager

import httpx
from fastapi import APIRouter, Request
from sqlalchemy import select

from app.inbound.models import InboundEvent
from app.main import create_app
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import signed_headers, webhook_body
from tests.support.helpers import db_session, make_settings, serve_in_thread, wait_for

LIMIT = 2048
NO_DB = "sqlite+aiosqlite:////nonexistent-dir/printhook.db"

probe = APIRouter()
received: list[str] = []


@probe.post("/probe/echo")
async def echo(request: Request) -> dict[str, object]:
    body = await request.body()
    received.append(hashlib.sha256(body).hexdigest())
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def limited_server() -> AbstractContextManager[str]:
    app = create_app(make_settings(NO_DB, max_body_bytes=LIMIT))
    app.include_router(probe)
    return serve_in_thread(app)


def chunks(total: int, size: int = 512) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b"x" * piece
        sent += piece


async def achunks(total: int) -> AsyncIterator[bytes]:
    for piece in chunks(total):
        yield piece


def test_body_exactly_at_the_limit_passes_through_intact() -> None:
    body = bytes(range(256)) * (LIMIT // 256)
    with limited_server() as base:
        response = httpx.post(f"{base}/probe/echo", content=body)
    assert response.status_code == 200
    assert response.json() == {"size": LIMIT, "sha256": hashlib.sha256(body).hexdigest()}


def test_content_length_over_the_limit_is_refused_before_the_route_runs() -> None:
    received.clear()
    with limited_server() as base:
        refused = httpx.post(f"{base}/probe/echo", content=b"y" * (LIMIT + 1))
        good = httpx.post(f"{base}/probe/echo", content=b"fine")
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:printhook:problem:payload-too-large"
    assert good.status_code == 200
    assert good.json()["size"] == 4
    # Only the good request reached the route.
    assert received == [hashlib.sha256(b"fine").hexdigest()]


def test_chunked_body_over_the_limit_without_content_length_is_refused() -> None:
    with limited_server() as base:
        refused = httpx.post(f"{base}/probe/echo", content=chunks(LIMIT * 2))
        at_limit = httpx.post(f"{base}/probe/echo", content=chunks(LIMIT))
    assert refused.status_code == 413
    assert "content-length" not in refused.request.headers
    assert refused.request.headers["transfer-encoding"] == "chunked"
    assert at_limit.status_code == 200
    assert at_limit.json()["size"] == LIMIT


async def test_oversized_webhook_stores_nothing_and_the_next_good_one_lands(
    database_url: str,
) -> None:
    secret = "limits-test-webhook-key-0001"
    settings = make_settings(
        database_url,
        max_body_bytes=LIMIT,
        printmotor_webhook_secrets=secret,
        run_workers=True,  # the real applier applies the good one
        reconcile_interval=3600,
    )
    good = webhook_body(4100, "USER_ORDER_DELIVERED", tracking_code="JJ-LIMIT")
    padded = webhook_body(4101, "USER_ORDER_DELIVERED", description="x" * LIMIT)
    with serve_in_thread(create_app(settings)) as base:
        async with httpx.AsyncClient(base_url=base) as client:
            too_large = await client.post(
                "/webhooks/printmotor", content=padded, headers=signed_headers(padded, secret)
            )
            streamed = await client.post(
                "/webhooks/printmotor",
                content=achunks(LIMIT + 1),
                headers=signed_headers(b"x" * (LIMIT + 1), secret),
            )
            accepted = await client.post(
                "/webhooks/printmotor", content=good, headers=signed_headers(good, secret)
            )

            async def applied() -> PrintmotorOrder | None:
                async with db_session(database_url) as session:
                    return await session.get(PrintmotorOrder, "4100")

            order = await wait_for(applied)
    assert (too_large.status_code, streamed.status_code, accepted.status_code) == (413, 413, 200)
    async with db_session(database_url) as session:
        stored = (await session.scalars(select(InboundEvent.body))).all()
    assert stored == [good]
    assert (order.status, order.tracking_code) == ("delivered", "JJ-LIMIT")
