"""Shared helpers for the Printmotor tests: signed webhooks, a fake Printmotor, row reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.feed.models import Event
from app.inbound.models import InboundEvent
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import FakePrintmotor, signed_headers, webhook_body
from tests.support.helpers import db_session, make_settings, serve_in_thread

SECRET = "printmotor-webhook-key-current-0001"
OLD_SECRET = "printmotor-webhook-key-previous-0002"


def pm_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "printmotor_webhook_secrets": f"{SECRET},{OLD_SECRET}",
        "printmotor_username": "printhook",
        "printmotor_password": "printmotor-password",
        "printmotor_service": "printhook-service",
    }
    values.update(overrides)
    return make_settings(database_url, **values)


async def post_webhook(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    secret: str = SECRET,
    encoding: str = "base64",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = signed_headers(body, secret, encoding) if headers is None else headers
    return await client.post("/webhooks/printmotor", content=body, headers=sent)


def delivered(number: int | str, **fields: Any) -> bytes:
    return webhook_body(number, "USER_ORDER_DELIVERED", **fields)


def created(number: int | str, **fields: Any) -> bytes:
    return webhook_body(number, "USER_ORDER_CREATED", **fields)


async def order_row(database_url: str, number: int | str) -> PrintmotorOrder | None:
    async with db_session(database_url) as session:
        return await session.get(PrintmotorOrder, str(number))


async def feed_types(database_url: str, number: int | str) -> list[str]:
    async with db_session(database_url) as session:
        rows = await session.scalars(
            select(Event.type).where(Event.subject_id == str(number)).order_by(Event.id)
        )
        return list(rows)


async def inbound_rows(database_url: str) -> list[InboundEvent]:
    async with db_session(database_url) as session:
        return list(await session.scalars(select(InboundEvent).order_by(InboundEvent.id)))


async def count_rows(database_url: str, model: Any) -> int:
    async with db_session(database_url) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def fake_printmotor() -> Iterator[tuple[FakePrintmotor, str]]:
    """A fake Printmotor on loopback and its API base URL (with the `/api/v1` base path)."""
    fake = FakePrintmotor()
    with serve_in_thread(fake.app) as url:
        try:
            yield fake, f"{url}/api/v1"
        finally:
            fake.closing = True
