"""PostgreSQL stopped under load: nothing is acknowledged while it is down, /readyz says 503,
and once it is back the same process recovers and applies every retried request once.

The test starts its own throwaway cluster (initdb + pg_ctl), so it can stop it with
`pg_ctl stop -m fast` without disturbing any other test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import httpx

from app.migrate import upgrade
from tests.faults.checks import assert_every_ack_applied, report, wait_until_applied
from tests.faults.load import assert_final_states, send_subject
from tests.support import postgres
from tests.support.pgcluster import Cluster, own_cluster
from tests.support.sender import Sender
from tests.support.serve import ServeProcess, serve_env

SOAK = os.environ.get("PRINTHOOK_SOAK") == "1"
DOWN_SECONDS = 20.0 if SOAK else 4.0
ACKED_BEFORE_OUTAGE = 100


async def test_postgres_outage_under_load_acknowledges_nothing_and_recovers(
    tmp_path: Path,
) -> None:
    with own_cluster() as cluster:
        url = postgres.create_database(cluster.server_url, "printhook_outage")
        postgres.in_thread(upgrade, url)
        server = ServeProcess(serve_env(url, lease_grace="2s"), tmp_path)
        server.start()
        try:
            await server.wait_ready()
            figures = await run_outage(server, cluster, url)
        finally:
            exit_code = server.stop()
    assert exit_code == 0, server.log_tail()
    report("db_outage", **figures)


async def run_outage(server: ServeProcess, cluster: Cluster, url: str) -> dict[str, object]:
    done: list[tuple[str, str]] = []
    outage_over = asyncio.Event()
    numbers = itertools.count(3001)
    started = time.monotonic()
    window: dict[str, float] = {}
    readyz_while_down: list[int] = []

    async def stream(sender: Sender) -> None:
        while not (outage_over.is_set() and len(done) >= 2 * ACKED_BEFORE_OUTAGE):
            n = next(numbers)
            if n - 3001 >= 5_000:
                return
            done.append(await send_subject(sender, n, "outage"))

    async def outage(sender: Sender) -> None:
        deadline = time.monotonic() + 30
        while sender.stats.acknowledged < ACKED_BEFORE_OUTAGE:
            assert time.monotonic() < deadline, "load did not start"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(cluster.stop, "fast")
        window["down_from"] = time.monotonic()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as probe:
            while time.monotonic() < window["down_from"] + DOWN_SECONDS:
                readyz_while_down.append((await probe.get("/readyz")).status_code)
                await asyncio.sleep(0.2)
            window["down_until"] = time.monotonic()
            await asyncio.to_thread(cluster.start)
            deadline = time.monotonic() + 30
            while (await probe.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "/readyz did not recover"
                await asyncio.sleep(0.1)
            window["ready_again"] = time.monotonic()
        outage_over.set()

    async with Sender([server.base_url], deadline=started + 120) as sender:
        async with asyncio.TaskGroup() as group:
            group.create_task(outage(sender))
            for _ in range(16):
                group.create_task(stream(sender))
        await wait_until_applied(url, timeout=30)

    # Recovered without a restart: the first process is still the one serving.
    assert server.starts == 1
    assert server.process is not None
    assert server.process.poll() is None
    stats = sender.stats
    down_from, down_until = window["down_from"], window["down_until"]
    during = [a for a in stats.attempts if a.started > down_from and a.finished < down_until]
    assert len(during) > 50, "the load did not keep sending while the database was down"
    answered_2xx = [a for a in during if a.status is not None and 200 <= a.status < 300]
    assert answered_2xx == []
    assert {a.status for a in during} == {503}
    assert len(readyz_while_down) >= 5
    assert set(readyz_while_down) == {503}

    # An outage is never a bug: no 500 at any moment, no error logged, nothing parked.
    assert set(stats.statuses()) <= {"200", "201", "503", "no answer"}, stats.statuses()
    errors = [line for line in server.log_lines() if '"level": "error"' in line]
    assert errors == [], errors[:3]
    assert stats.gave_up == 0
    states = await assert_every_ack_applied(url, stats)
    assert set(states) == set(stats.acked_events.values())
    feed = await assert_final_states(url, done)
    orders = sum(1 for kind, _ in done if kind == "order")
    return {
        "down_seconds": round(down_until - down_from, 1),
        "recovered_after_start_seconds": round(window["ready_again"] - down_until, 1),
        "orders": orders,
        "jobs": len(done) - orders,
        "requests_sent": stats.sent,
        "sent_while_down": len(during),
        "answered_2xx_while_down": len(answered_2xx),
        "readyz_503_while_down": len(readyz_while_down),
        "acknowledged": stats.acknowledged,
        "answers": dict(stats.statuses()),
        "vendor_events_stored": len(states),
        "lost": 0,
        "feed_rows": feed,
        "restarts": server.starts - 1,
    }
