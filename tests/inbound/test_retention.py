"""Retention purges old raw bodies in batches, keeps the rows, and `purge --dry-run` counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.context import AppContext
from app.inbound.ingest import Arrival
from app.inbound.models import InboundEvent
from app.inbound.retention import purge_expired_bodies
from tests.inbound.conftest import CommandRunner, inbound_event
from tests.support.helpers import db_session, make_settings, running_app, wait_for

OLD = timedelta(days=31)
RECENT = timedelta(days=29)


async def store_events(database_url: str, old: int, recent: int) -> int:
    """`old` bodies past the 30-day retention and `recent` ones inside it; returns old bytes."""
    old_bytes = 0
    async with db_session(database_url) as session:
        for n in range(old):
            body = b'{"old":%d}' % n
            old_bytes += len(body)
            session.add(inbound_event("printmotor", f"old-{n}", body, age=OLD + timedelta(hours=n)))
        for n in range(recent):
            session.add(inbound_event("printess", f"new-{n}", b'{"new":%d}' % n, age=RECENT))
        await session.commit()
    return old_bytes


async def rows(database_url: str) -> dict[str, InboundEvent]:
    async with db_session(database_url) as session:
        found = (await session.execute(select(InboundEvent))).scalars().all()
    return {row.dedupe_key: row for row in found}


async def test_purge_drops_only_expired_bodies_in_batches_and_keeps_the_rows(
    database_url: str,
) -> None:
    old_bytes = await store_events(database_url, old=5, recent=2)
    ctx = AppContext.create(make_settings(database_url, retention_days=30))
    try:
        purged = await purge_expired_bodies(ctx, batch_size=2)
    finally:
        await ctx.aclose()
    assert (purged.events, purged.bytes) == (5, old_bytes)
    stored = await rows(database_url)
    assert len(stored) == 7
    for n in range(5):
        row = stored[f"old-{n}"]
        assert row.body is None
        assert row.body_purged_at is not None
        assert row.body_size == len(b'{"old":%d}' % n)
        assert row.state == "applied"
    assert stored["new-0"].body == b'{"new":0}'
    assert stored["new-1"].body == b'{"new":1}'
    assert stored["new-1"].body_purged_at is None


async def test_purge_dry_run_counts_without_changing_anything(
    database_url: str, printhook: CommandRunner
) -> None:
    old_bytes = await store_events(database_url, old=3, recent=1)
    code, out, _ = printhook("purge", "--dry-run")
    assert code == 0
    assert out.startswith(f"would purge 3 inbound event bodies ({old_bytes} bytes) received before")
    assert all(row.body is not None for row in (await rows(database_url)).values())

    code, out, _ = printhook("purge")
    assert code == 0
    assert out.startswith(f"purged 3 inbound event bodies ({old_bytes} bytes)")
    stored = await rows(database_url)
    assert [key for key, row in sorted(stored.items()) if row.body is None] == [
        "old-0",
        "old-1",
        "old-2",
    ]
    assert stored["new-0"].body == b'{"new":0}'

    code, out, _ = printhook("purge")
    assert out.startswith("purged 0 inbound event bodies (0 bytes)")


async def test_the_worker_purges_expired_bodies_in_the_background(database_url: str) -> None:
    await store_events(database_url, old=2, recent=1)

    async def purged() -> bool:
        stored = await rows(database_url)
        return stored["old-0"].body is None and stored["old-1"].body is None

    settings = make_settings(database_url, run_workers=True, reconcile_interval=3600)
    async with running_app(settings):
        await wait_for(purged)
    assert (await rows(database_url))["new-0"].body == b'{"new":0}'


async def test_a_redelivery_of_a_purged_event_is_still_a_duplicate(database_url: str) -> None:
    await store_events(database_url, old=1, recent=0)
    ctx = AppContext.create(make_settings(database_url))
    try:
        await purge_expired_bodies(ctx)
    finally:
        await ctx.aclose()
    ctx = AppContext.create(make_settings(database_url))
    try:
        again = await ctx.inbound.store(Arrival("printmotor", "old-0", b"{}", "6912"))
    finally:
        await ctx.aclose()
    assert again.is_duplicate
    assert again.state == "applied"
    assert len(await rows(database_url)) == 1


async def test_pending_and_parked_bodies_are_never_purged(database_url: str) -> None:
    async with db_session(database_url) as session:
        for state in ("pending", "failed", "rejected"):
            session.add(inbound_event("printmotor", state, b"{}", age=OLD, state=state))
        await session.commit()
    ctx = AppContext.create(make_settings(database_url, retention_days=30))
    try:
        purged = await purge_expired_bodies(ctx)
    finally:
        await ctx.aclose()
    assert purged.events == 1
    stored = await rows(database_url)
    assert stored["pending"].body == b"{}"
    assert stored["failed"].body == b"{}"
    assert stored["rejected"].body is None
