"""Two replicas on one PostgreSQL under load, one killed with SIGKILL mid-run.

Both run every background loop (applier, reconcilers, notifier) against a Printess simulator
and a shop receiver on loopback. After the kill, the survivor takes over the dead replica's
leases once they run out (PRINTHOOK_LEASE_GRACE=2s here) and finishes the work: each inbound
event applied once, one feed row per change, each feed row delivered to the shop once
(a delivery the dead replica had in flight may reach the shop a second time: at-least-once,
with the same `webhook-id`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select

from app.feed.models import Delivery, Event
from app.inbound.models import InboundEvent
from app.printess.models import PrintessJob
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from app.simulator.shop import shop_app
from tests.faults.checks import assert_every_ack_applied, report, wait_until_applied
from tests.faults.load import assert_final_states, send_subject
from tests.support.helpers import db_session, serve_in_thread, wait_for
from tests.support.sender import Sender, track_job
from tests.support.serve import ServeProcess, serve_env

SOAK = os.environ.get("PRINTHOOK_SOAK") == "1"
POLLED_JOBS = 200 if SOAK else 40
MIN_SUBJECTS = 1_000 if SOAK else 200
SERVICE_TOKEN = "faults-test-printess-token-0001"
NOTIFY_SECRET = "whsec_" + base64.b64encode(b"faults-test-notify-secret-01").decode()


async def leases_held(url: str) -> int:
    async with db_session(url) as session:
        held = 0
        for model in (InboundEvent, Delivery, PrintessJob):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.lease_owner.is_not(None))
            )
            held += int(count or 0)
    return held


async def delivered_ids(url: str) -> set[str]:
    async with db_session(url) as session:
        rows = await session.scalars(select(Delivery.event_id).where(Delivery.state == "delivered"))
        return {f"evt_{event_id}" for event_id in rows.all()}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_survivor_finishes_a_killed_replicas_work_and_nothing_is_done_twice(
    database_url: str, tmp_path: Path
) -> None:
    url = database_url
    printess = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=1.0))
    received: list[str] = []
    with (
        serve_in_thread(printess.create_app()) as printess_url,
        serve_in_thread(shop_app([NOTIFY_SECRET], out=received.append)) as shop_url,
    ):
        env = serve_env(
            url,
            lease_grace="2s",
            printess_api_url=printess_url,
            printess_service_token=SERVICE_TOKEN,
            printess_first_poll_after="1s",
            printess_status_rate="50",
            printess_vanished_after="100",
            reconcile_interval="0.2",
            notify_url=f"{shop_url}/printhook",
            notify_secrets=NOTIFY_SECRET,
            notify_schedule="1s",
            notify_timeout="2s",
        )
        replicas = [ServeProcess(env, tmp_path), ServeProcess(env, tmp_path)]
        for replica in replicas:
            replica.start()
        try:
            for replica in replicas:
                await replica.wait_ready()
            figures = await run_replicas(url, replicas, printess, received)
        finally:
            for replica in replicas:
                replica.stop()
    report("replicas", **figures)


async def run_replicas(
    url: str,
    replicas: list[ServeProcess],
    printess: PrintessSimulator,
    received: list[str],
) -> dict[str, object]:
    victim, survivor = replicas
    started = time.monotonic()
    done: list[tuple[str, str]] = []
    killed = asyncio.Event()
    numbers = itertools.count(9001)
    in_flight: set[str] = set()
    leased_inbound: list[int] = []

    async def stream(sender: Sender) -> None:
        while not (killed.is_set() and len(done) >= MIN_SUBJECTS):
            n = next(numbers)
            if n - 9001 >= 10_000:
                return
            done.append(await send_subject(sender, n, "replica"))

    async def kill_one(sender: Sender) -> None:
        deadline = time.monotonic() + 60
        while sender.stats.acknowledged < MIN_SUBJECTS // 2 or await leases_held(url) == 0:
            assert time.monotonic() < deadline, "no lease was ever held"
            await asyncio.sleep(0.05)
        victim.kill()
        # Deliveries the victim may have sent without recording it: the only ones the shop
        # may see twice.
        async with db_session(url) as session:
            rows = await session.scalars(
                select(Delivery.event_id).where(
                    Delivery.state == "pending", Delivery.lease_owner.is_not(None)
                )
            )
            in_flight.update(f"evt_{event_id}" for event_id in rows.all())
            leased_inbound.append(
                int(
                    await session.scalar(
                        select(func.count())
                        .select_from(InboundEvent)
                        .where(
                            InboundEvent.state == "pending", InboundEvent.lease_owner.is_not(None)
                        )
                    )
                    or 0
                )
            )
        killed.set()

    polled = [printess.create_job().job_id for _ in range(POLLED_JOBS)]
    urls = [victim.base_url, survivor.base_url]
    async with Sender(urls, deadline=started + (600 if SOAK else 100)) as sender:
        for job_id in polled:
            await sender.deliver(track_job(job_id))
        async with asyncio.TaskGroup() as group:
            group.create_task(kill_one(sender))
            for _ in range(16):
                group.create_task(stream(sender))
        await wait_until_applied(url, timeout=30)

    async def reconciled() -> bool:
        async with db_session(url) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(PrintessJob)
                .where(PrintessJob.job_id.in_(polled), PrintessJob.status == "succeeded")
            )
        return count == len(polled)

    await wait_for(reconciled, timeout=30, interval=0.2)

    async def all_delivered() -> bool:
        async with db_session(url) as session:
            events = await session.scalar(select(func.count()).select_from(Event))
        return len(await delivered_ids(url)) == events

    await wait_for(all_delivered, timeout=60, interval=0.2)

    assert victim.process is not None
    assert victim.process.poll() is not None
    assert survivor.process is not None
    assert survivor.process.poll() is None
    stats = sender.stats
    assert stats.gave_up == 0
    states = await assert_every_ack_applied(url, stats)
    assert set(states) == set(stats.acked_events.values())
    # The polled jobs too: tracked by PUT, succeeded by a reconciler's poll, one row each.
    feed = await assert_final_states(url, done + [("job", job_id) for job_id in polled])

    async with db_session(url) as session:
        attempts = Counter((await session.scalars(select(Delivery.attempts))).all())
        leftover = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(or_(Delivery.state != "delivered", Delivery.lease_owner.is_not(None)))
        )
    assert leftover == 0
    # One recorded attempt per delivery: no delivery was sent again by a replica that knew.
    assert set(attempts) == {1}
    shop = Counter(line.split(" ", 1)[0] for line in received)
    assert set(shop) == await delivered_ids(url)
    twice = {message_id for message_id, count in shop.items() if count > 1}
    assert twice <= in_flight, f"delivered twice without being in flight: {twice - in_flight}"
    assert max(shop.values()) <= 2
    return {
        "replicas": 2,
        "killed": 1,
        "subjects_by_webhook": len(done),
        "jobs_reconciled": len(polled),
        "requests_sent": stats.sent,
        "acknowledged": stats.acknowledged,
        "answers": dict(stats.statuses()),
        "vendor_events_stored": len(states),
        "lost": 0,
        "feed_rows": feed,
        "notifications_received": sum(shop.values()),
        "inbound_leased_at_kill": leased_inbound[0],
        "notifications_in_flight_at_kill": len(in_flight),
        "notifications_received_twice": len(twice),
        "delivery_attempts": dict(attempts),
        "seconds": round(time.monotonic() - started, 1),
    }
