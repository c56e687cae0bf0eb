"""A database error that is not an outage is a bug: 500, logged, and nothing of the request
(SQL parameters hold bodies and addresses) in the answer or the log."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from sqlalchemy import text

from app.deps import SessionDep
from tests.api.conftest import CapturedLogs
from tests.support.helpers import make_settings, running_app

MARKER = "Mannerheimintie-18-A-129-secret"
NOW = datetime(2026, 12, 1, tzinfo=UTC)

probe = APIRouter()


@probe.post("/probe/duplicate")
async def duplicate(session: SessionDep) -> dict[str, bool]:
    # The second insert violates the primary key; the driver's message quotes the value.
    for _ in range(2):
        await session.execute(
            text(
                "INSERT INTO printmotor_orders (order_number, reference, status, status_rank,"
                " tracking_links, created_at, updated_at, version, poll_attempts)"
                " VALUES (:number, :reference, 'received', 10, '[]', :now, :now, 0, 0)"
            ),
            {"number": MARKER, "reference": MARKER, "now": NOW},
        )
    return {"ok": True}


async def test_database_error_is_500_without_the_request_in_answer_or_log(
    database_url: str, logs: CapturedLogs
) -> None:
    async with running_app(make_settings(database_url)) as (app, client):
        app.include_router(probe)
        response = await client.post("/probe/duplicate")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:printhook:problem:internal"
    assert MARKER not in response.text
    (logged,) = logs.events("db.error")
    assert logged["error_class"] == "IntegrityError"
    assert logged["where"]
    assert MARKER not in logs.text
