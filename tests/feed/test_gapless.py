"""The feed is gapless: a consumer following `next` sees every event exactly once, and each
subject's events in the order they were committed, while writers of any speed race it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from app.feed.models import Event
from app.printmotor.service import apply_observation
from app.printmotor.transition import Observation
from tests.support.helpers import AUTH, db_session, make_settings, running_app

STALE = timedelta(hours=24)
T = TypeVar("T")


def describe(order_number: str, text: str) -> Observation:
    # A new description is always a real change: one event per observation.
    return Observation(order_number=order_number, status=None, description=text)


async def wait_for(
    fetch: Callable[[], Awaitable[T]], *, until: Callable[[T], object] = bool, timeout: float = 15
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await fetch()
        if until(result):
            return result
        assert time.monotonic() < deadline, f"not settled within {timeout}s: {result!r}"
        await asyncio.sleep(0.02)


async def read_page(client: httpx.AsyncClient, cursor: str | None) -> tuple[list[Any], str]:
    params: dict[str, Any] = {"limit": 7}
    if cursor is not None:
        params["after"] = cursor
    answer = await client.get("/v1/events", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["items"], body["next"]


async def test_a_consumer_polling_in_a_tight_loop_sees_every_event_once_while_writers_race(
    database_url: str,
) -> None:
    rng = random.Random(9)
    shared = [f"shared-{n}" for n in range(3)]
    written = 0

    async def writer(name: str, *, slow: bool) -> None:
        nonlocal written
        async with db_session(database_url) as session:
            for k in range(12):
                if slow:
                    # Take a transaction id early (a change elsewhere), then be overtaken.
                    await apply_observation(
                        session, describe(f"own-{name}", f"{k}"), stale_after=STALE
                    )
                    await asyncio.sleep(rng.uniform(0, 0.03))
                await apply_observation(
                    session, describe(rng.choice(shared), f"{name}-{k}"), stale_after=STALE
                )
                if slow:
                    await asyncio.sleep(rng.uniform(0, 0.05))
                await session.commit()
                written += 2 if slow else 1

    seen: list[dict[str, Any]] = []
    async with running_app(make_settings(database_url)) as (_, client):
        writers = asyncio.gather(
            *(writer(f"slow{n}", slow=True) for n in range(3)),
            *(writer(f"fast{n}", slow=False) for n in range(3)),
        )
        cursor: str | None = None
        deadline = time.monotonic() + 60
        while True:
            items, cursor = await read_page(client, cursor)
            seen += items
            if writers.done() and not items:
                async with db_session(database_url) as session:
                    total = len((await session.scalars(select(Event.id))).all())
                if len(seen) >= total:
                    break
            assert time.monotonic() < deadline, f"saw {len(seen)} of {written} events"
        await writers

    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was served twice"
    async with db_session(database_url) as session:
        rows = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert sorted(ids) == [row.id for row in rows], "an event was never served"
    # Every subject's events come in commit order, which is id order within a subject
    # (they are written under the order's row lock).
    for subject in {e["subject"]["id"] for e in seen}:
        of_subject = [e["id"] for e in seen if e["subject"]["id"] == subject]
        assert of_subject == sorted(of_subject), subject


@pytest.mark.postgres_only
async def test_an_event_is_held_back_until_older_transactions_have_finished(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: id order is commit order")
    async with (
        running_app(make_settings(database_url)) as (_, client),
        db_session(database_url) as slow,
        db_session(database_url) as fast,
    ):
        await apply_observation(slow, describe("slow-1", "first id"), stale_after=STALE)
        await apply_observation(fast, describe("fast-1", "second id"), stale_after=STALE)
        await fast.commit()

        # The fast event is committed but has a later place than the slow transaction's:
        # serving it now would let the slow one land behind the consumer's cursor.
        items, cursor = await read_page(client, None)
        assert items == []

        await slow.commit()
        # Other transactions on the server (other databases too) may hold the horizon a
        # moment longer: wait for it.
        items, cursor = await wait_for(lambda: read_page(client, cursor), until=lambda p: p[0])
        assert [e["subject"]["id"] for e in items] == ["slow-1", "fast-1"]
        items, _ = await read_page(client, cursor)
        assert items == []


@pytest.mark.postgres_only
async def test_a_subjects_events_keep_commit_order_when_an_older_transaction_writes_last(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: id order is commit order")
    async with (
        running_app(make_settings(database_url)) as (_, client),
        db_session(database_url) as older,
        db_session(database_url) as newer,
    ):
        # `older` takes its transaction id first, by changing another order.
        await apply_observation(older, describe("elsewhere", "x"), stale_after=STALE)
        await apply_observation(
            newer, Observation(order_number="7", status="received"), stale_after=STALE
        )
        await newer.commit()
        # ... and writes to order 7 only after `newer` committed order 7's first event.
        await apply_observation(older, describe("7", "later change"), stale_after=STALE)
        await older.commit()

        async def subject_events() -> list[dict[str, Any]]:
            answer = await client.get(
                "/v1/events", params={"subject": "printmotor_order:7"}, headers=AUTH
            )
            items: list[dict[str, Any]] = answer.json()["items"]
            return items if len(items) == 2 else []

        items = await wait_for(subject_events)
        assert [e["type"] for e in items] == [
            "printmotor.order.received",
            "printmotor.order.updated",
        ]
        assert items[1]["data"]["description"] == "later change"
