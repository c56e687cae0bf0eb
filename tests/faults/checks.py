"""What the fault tests read back from the database after the storm."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from app.feed.models import Event
from app.inbound.models import PENDING, InboundEvent
from tests.support.helpers import db_session, wait_for
from tests.support.sender import LoadStats


async def pending_events(database_url: str) -> int:
    async with db_session(database_url) as session:
        count = await session.scalar(
            select(func.count()).select_from(InboundEvent).where(InboundEvent.state == PENDING)
        )
    return int(count or 0)


async def wait_until_applied(database_url: str, timeout: float = 60.0) -> None:
    """Poll until the applier has left no inbound event pending."""

    async def none_pending() -> bool:
        return await pending_events(database_url) == 0

    await wait_for(none_pending, timeout=timeout, interval=0.2)


async def inbound_states(database_url: str) -> dict[int, str]:
    async with db_session(database_url) as session:
        rows = (await session.execute(select(InboundEvent.id, InboundEvent.state))).all()
    return {row.id: row.state for row in rows}


async def feed_rows(database_url: str) -> list[tuple[str, str, int | None]]:
    """(subject_id, type, inbound_event_id) of every `events` row, in id order."""
    async with db_session(database_url) as session:
        rows = (
            await session.execute(
                select(Event.subject_id, Event.type, Event.inbound_event_id).order_by(Event.id)
            )
        ).all()
    return [(row.subject_id, row.type, row.inbound_event_id) for row in rows]


def feed_by_subject(rows: list[tuple[str, str, int | None]]) -> dict[str, list[str]]:
    subjects: dict[str, list[str]] = {}
    for subject_id, event_type, _ in rows:
        subjects.setdefault(subject_id, []).append(event_type)
    return subjects


def duplicate_feed_rows(rows: list[tuple[str, str, int | None]]) -> list[tuple[str, str]]:
    counts = Counter((subject_id, event_type) for subject_id, event_type, _ in rows)
    return [key for key, count in counts.items() if count > 1]


async def assert_every_ack_applied(database_url: str, stats: LoadStats) -> dict[int, str]:
    """Every acknowledged vendor request is a stored row that was applied: 0 lost."""
    states = await inbound_states(database_url)
    acked = set(stats.acked_events.values())
    lost = sorted(event_id for event_id in acked if event_id not in states)
    assert not lost, f"{len(lost)} acknowledged events are not stored: {lost[:10]}"
    not_applied = {i: states[i] for i in acked if states[i] != "applied"}
    assert not not_applied, f"acknowledged events not applied: {list(not_applied.items())[:10]}"
    return states


def report(name: str, **figures: Any) -> None:
    """One line per test with its figures (shown with `pytest -s`; docs/RELIABILITY.md)."""
    print(f"\nfaults.figures {name} " + json.dumps(figures, sort_keys=True))
