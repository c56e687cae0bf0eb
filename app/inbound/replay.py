"""`printhook replay`: re-apply a stored vendor event through the same transition.

For after a bug fix: the raw bytes kept in `inbound_events` go through the domain's own
replay function (the one path for state), so replaying an already-applied event changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.context import AppContext
from app.inbound.models import InboundEvent

log = logging.getLogger("printhook.inbound.replay")

Replayer = Callable[[AppContext, AsyncSession, InboundEvent], Awaitable[str]]


class ReplayError(Exception):
    """The event cannot be replayed; the message says why (and never holds its body)."""


@dataclass(frozen=True)
class ReplayResult:
    inbound_event_id: int
    source: str
    subject_id: str | None
    outcome: str


def _replayers() -> dict[str, Replayer]:
    # Imported here: the domains import the inbound log, not the other way round.
    from app.printess.service import replay_inbound_event as replay_printess
    from app.printmotor.service import replay_inbound_event as replay_printmotor

    return {"printess": replay_printess, "printmotor": replay_printmotor}


async def replay_event(ctx: AppContext, inbound_event_id: int) -> ReplayResult:
    """Load the stored event, hand it to its source's replay function, commit."""
    async with ctx.session_factory() as session:
        event = await session.get(InboundEvent, inbound_event_id)
        if event is None:
            raise ReplayError(f"no inbound event with id {inbound_event_id}")
        if event.body is None:
            purged = event.body_purged_at.isoformat() if event.body_purged_at else "earlier"
            raise ReplayError(
                f"inbound event {inbound_event_id} cannot be replayed: its body was purged "
                f"by retention ({purged}); only the metadata row is kept"
            )
        replayer = _replayers().get(event.source)
        if replayer is None:
            raise ReplayError(
                f"inbound event {inbound_event_id} has unknown source {event.source!r}"
            )
        outcome = await replayer(ctx, session, event)
        await session.commit()
        result = ReplayResult(event.id, event.source, event.subject_id, outcome)
    log.info(
        "inbound.replayed",
        extra={
            "inbound_event_id": result.inbound_event_id,
            "source": result.source,
            "subject_id": result.subject_id,
            "outcome": result.outcome,
        },
    )
    return result


async def _replay_command(settings: Settings, inbound_event_id: int) -> ReplayResult:
    ctx = AppContext.create(settings)
    try:
        return await replay_event(ctx, inbound_event_id)
    finally:
        await ctx.aclose()


def run_replay(settings: Settings, inbound_event_id: int) -> int:
    """`printhook replay <id>`: print the outcome; exit 1 with a reason if it cannot run."""
    try:
        result = asyncio.run(_replay_command(settings, inbound_event_id))
    except ReplayError as exc:
        print(f"printhook: {exc}", file=sys.stderr)
        return 1
    subject = f" {result.subject_id}" if result.subject_id else ""
    print(f"inbound event {result.inbound_event_id} ({result.source}{subject}): {result.outcome}")
    return 0
