"""`printhook replay ID`: apply a stored vendor event again through the same transition.

For after a bug fix or an outage: the raw bytes kept in `inbound_events` go through the
applier's replay (the one path for state), so replaying an already-applied event changes
nothing. Prints the event as JSON on stdout (the same shape as the operator API).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

from app.config import Settings
from app.context import AppContext
from app.inbound.applier import Applier, ReplayError
from app.inbound.schemas import InboundEventOut

MakeApplier = Callable[[AppContext], Applier]


async def _replay(
    settings: Settings, inbound_event_id: int, make_applier: MakeApplier
) -> InboundEventOut:
    ctx = AppContext.create(settings)
    try:
        return InboundEventOut.of(await make_applier(ctx).replay(inbound_event_id))
    finally:
        await ctx.aclose()


def run_replay(settings: Settings, inbound_event_id: int, make_applier: MakeApplier) -> int:
    """Print the replayed event as JSON; exit 1 with a one-line reason if it cannot run."""
    try:
        event = asyncio.run(_replay(settings, inbound_event_id, make_applier))
    except ReplayError as exc:
        print(f"printhook: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(event.model_dump(mode="json", by_alias=True, exclude_none=True)))
    return 0
