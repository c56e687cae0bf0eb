"""Duplicates at scale: distinct webhooks, each sent 20 times at once, and again after a restart
of the server: exactly one inbound event per webhook, applied once, one feed row each.

Every run sends 1,000 webhooks (40,000 requests); PRINTHOOK_SOAK=1 only allows more time.
The 20 copies of a webhook are queued next to each other, so with 64 in flight they reach
the server at the same moment and race on the insert.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from app.printmotor.models import PrintmotorOrder
from tests.faults.checks import (
    assert_every_ack_applied,
    duplicate_feed_rows,
    feed_rows,
    report,
    wait_until_applied,
)
from tests.support.helpers import db_session
from tests.support.sender import Request, Sender, bounded, printmotor_webhook
from tests.support.serve import ServeProcess, serve_env

SOAK = os.environ.get("PRINTHOOK_SOAK") == "1"
WEBHOOKS = 1_000
COPIES = 20
CONCURRENCY = 64
SEED = int(os.environ.get("FAULTS_SEED", "20261201"))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_each_webhook_sent_20_times_concurrently_is_applied_once(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    originals = [
        printmotor_webhook(n, "USER_ORDER_DELIVERED", tracking_code=f"D{n}")
        for n in range(50_001, 50_001 + WEBHOOKS)
    ]
    event_ids: dict[bytes, set[int]] = defaultdict(set)
    server = ServeProcess(serve_env(database_url), tmp_path)
    started = time.monotonic()

    async def send(sender: Sender, request: Request) -> None:
        answer = await sender.deliver(request)
        event_ids[request.body].add(answer.json()["eventId"])

    async def round_of_copies(sender: Sender) -> None:
        order = list(originals)
        rng.shuffle(order)
        copies = [request for request in order for _ in range(COPIES)]
        await bounded(copies, lambda request: send(sender, request), CONCURRENCY)

    server.start()
    try:
        await server.wait_ready()
        async with Sender(
            [server.base_url], deadline=started + (900 if SOAK else 400), concurrency=CONCURRENCY
        ) as sender:
            await round_of_copies(sender)
            await wait_until_applied(database_url)
            server.stop()
            server.start()
            await server.wait_ready()
            await round_of_copies(sender)
            await wait_until_applied(database_url)
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    stats = sender.stats
    # Every copy of a webhook was answered with the one event the first copy stored.
    assert len(event_ids) == WEBHOOKS
    assert all(len(ids) == 1 for ids in event_ids.values())
    states = await assert_every_ack_applied(database_url, stats)
    assert len(states) == WEBHOOKS
    assert set(states.values()) == {"applied"}
    async with db_session(database_url) as session:
        orders = {
            row.order_number: (row.status, row.tracking_code)
            for row in (await session.scalars(select(PrintmotorOrder))).all()
        }
    assert orders == {str(n): ("delivered", f"D{n}") for n in range(50_001, 50_001 + WEBHOOKS)}
    rows = await feed_rows(database_url)
    assert duplicate_feed_rows(rows) == []
    assert len(rows) == WEBHOOKS
    assert {inbound for _, _, inbound in rows} == set(states)

    report(
        "duplicates",
        webhooks=WEBHOOKS,
        copies_each_round=COPIES,
        rounds=2,
        restarts=server.starts - 1,
        concurrency=CONCURRENCY,
        requests_sent=stats.sent,
        answers=dict(stats.statuses()),
        events_stored=len(states),
        duplicates_absorbed=stats.answers_2xx - len(states),
        feed_rows=len(rows),
        seconds=round(elapsed, 1),
    )
