"""`printhook replay ID`: apply a stored vendor event again through the same transition.

For after a bug fix or an outage: the raw bytes kept in `inbound_events` go through the
applier's replay (the one path for state), so replaying an already-applied event changes
nothing. `--json` prints the event in the operator API's shape.
"""

from __future__ import annotations

from collections.abc import Callable

from app.config import Settings
from app.context import AppContext
from app.inbound.applier import Applier, ReplayError
from app.inbound.schemas import InboundEventOut

__all__ = ["ReplayError", "replay"]

MakeApplier = Callable[[AppContext], Applier]


async def replay(
    settings: Settings, inbound_event_id: int, make_applier: MakeApplier
) -> InboundEventOut:
    """Replay one event with a fresh context; ReplayError says why it cannot run."""
    ctx = AppContext.create(settings)
    try:
        return InboundEventOut.of(await make_applier(ctx).replay(inbound_event_id))
    finally:
        await ctx.aclose()
