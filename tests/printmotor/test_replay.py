"""A stored webhook replayed through the same transition changes nothing twice."""

from __future__ import annotations

from sqlalchemy import select

from app.inbound.models import InboundEvent
from app.printmotor.models import PrintmotorOrder
from tests.printmotor.conftest import delivered, feed_types, order_row, pm_settings, post_webhook
from tests.support.helpers import running_app


async def test_replaying_an_applied_webhook_changes_nothing(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (app, client):
        await post_webhook(client, delivered(60, tracking_code="T60"))
        replayed = await app.state.applier.replay(1)
    assert replayed.state == "applied"  # what it did the first time stays on record
    assert await feed_types(database_url, 60) == ["printmotor.order.received"]


async def test_replaying_a_lost_effect_reapplies_it(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (app, client):
        await post_webhook(client, delivered(61, tracking_code="T61"))
        ctx = app.state.ctx
        async with ctx.session_factory() as session:
            # As if the order had been lost (restored from an older backup, say).
            await session.delete(await session.get(PrintmotorOrder, "61"))
            await session.commit()
            event = await session.scalar(select(InboundEvent))
            assert event is not None
        replayed = await app.state.applier.replay(event.id)
    row = await order_row(database_url, 61)
    assert replayed.state == "applied"
    assert row is not None
    assert (row.status, row.tracking_code) == ("delivered", "T61")
