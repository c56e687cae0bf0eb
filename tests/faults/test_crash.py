"""kill -9 under load: every acknowledged request is stored and applied, once.

A sender streams distinct signed Printmotor webhooks (PROCESSING, then DELIVERED, per order)
and Printess callbacks (half of the jobs tracked first with PUT) at a real `printhook serve`,
retrying anything not answered 2xx as the vendors do, while the server is killed with SIGKILL
at random moments and started again on the same port.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from pathlib import Path

import pytest

from tests.faults.checks import assert_every_ack_applied, report, wait_until_applied
from tests.faults.load import assert_final_states, send_subject
from tests.support.sender import Sender
from tests.support.serve import ServeProcess, serve_env

SOAK = os.environ.get("PRINTHOOK_SOAK") == "1"
KILLS = 10 if SOAK else 3
MIN_SUBJECTS = 2000 if SOAK else 300
MAX_SUBJECTS = 20_000 if SOAK else 3_000
SEED = int(os.environ.get("FAULTS_SEED", "20261201"))


@pytest.mark.parametrize("database_url", ["postgres", "sqlite"], indirect=True)
async def test_kill_9_at_random_moments_loses_nothing_acknowledged(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # A killed server's claims on pending events are taken over after LEASE_GRACE.
    server = ServeProcess(serve_env(database_url, lease_grace="2s"), tmp_path)
    server.start()
    await server.wait_ready()
    done: list[tuple[str, str]] = []
    chaos_over = asyncio.Event()
    numbers = itertools.count(1001)
    started = time.monotonic()

    async def stream(sender: Sender) -> None:
        while not (chaos_over.is_set() and len(done) >= MIN_SUBJECTS):
            n = next(numbers)
            if n - 1001 >= MAX_SUBJECTS:
                return
            done.append(await send_subject(sender, n, "crash"))

    async def chaos() -> None:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            server.start()
            await server.wait_ready()
        chaos_over.set()

    try:
        async with Sender([server.base_url], deadline=started + (600 if SOAK else 90)) as sender:
            async with asyncio.TaskGroup() as group:
                group.create_task(chaos())
                for _ in range(16):
                    group.create_task(stream(sender))
            await wait_until_applied(database_url, timeout=30)
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    stats = sender.stats
    assert server.kills == KILLS
    assert stats.gave_up == 0
    states = await assert_every_ack_applied(database_url, stats)
    # No stray rows either: each stored event is one of the acknowledged requests.
    assert set(states) == set(stats.acked_events.values())

    orders = sum(1 for kind, _ in done if kind == "order")
    feed = await assert_final_states(database_url, done)

    report(
        "crash",
        database=database_url.split(":")[0].split("+")[0],
        kills=server.kills,
        restarts=server.starts - 1,
        orders=orders,
        jobs=len(done) - orders,
        requests_sent=stats.sent,
        acknowledged=stats.acknowledged,
        no_answer=stats.statuses()["no answer"],
        answers=dict(stats.statuses()),
        vendor_events_stored=len(states),
        redeliveries_absorbed=stats.answers_2xx - stats.acknowledged,
        lost=0,
        feed_rows=feed,
        seconds=round(elapsed, 1),
    )
