"""A slow body never holds anything others need, and is cut off at PRINTHOOK_BODY_TIMEOUT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import func, select

from app.inbound.models import InboundEvent
from app.main import create_app
from app.simulator.printmotor import signed_headers, webhook_body
from tests.printmotor.conftest import SECRET, pm_settings
from tests.support.helpers import AUTH, db_session, serve_in_thread

CALLBACK_SECRET = "slow-body-callback-secret-0123456789"
TRICKLERS = 20


async def trickle(seconds: float) -> AsyncIterator[bytes]:
    """A valid-looking callback body, one byte every half second, for up to `seconds`."""
    started = time.monotonic()
    yield b'{"jobId": "slow-'
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.5)
        yield b"x"
    yield b'", "isFailure": true}'


async def test_trickling_callbacks_do_not_delay_webhooks_or_the_shop_and_get_408(
    database_url: str,
) -> None:
    settings = pm_settings(
        database_url,
        printess_callback_secret=CALLBACK_SECRET,
        printess_verify_callbacks=False,
        body_timeout=3,
        database_pool_size=5,  # fewer connections than slow senders
        run_workers=True,
        reconcile_interval=3600,
        printmotor_api_url="http://127.0.0.1:9",
    )
    with serve_in_thread(create_app(settings)) as base:
        limits = httpx.Limits(max_connections=TRICKLERS + 10)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            slow = [
                asyncio.create_task(
                    client.post(f"/callbacks/printess/{CALLBACK_SECRET}", content=trickle(20))
                )
                for _ in range(TRICKLERS)
            ]
            started_all = time.monotonic()
            await asyncio.sleep(0.5)  # every slow sender is mid-body now
            delays = []
            for n in range(5):
                body = webhook_body(900 + n, "USER_ORDER_CREATED")
                started = time.monotonic()
                hook = await client.post(
                    "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
                )
                shop = await client.get("/v1/printmotor/orders", headers=AUTH)
                ready = await client.get("/readyz")
                delays.append(time.monotonic() - started)
                assert (hook.status_code, shop.status_code, ready.status_code) == (200, 200, 200)
                await asyncio.sleep(0.2)
            answers = await asyncio.gather(*slow, return_exceptions=True)
            cut_after = time.monotonic() - started_all
    # Every request took well under a second while 20 bodies trickled in.
    assert max(delays) < 1.0, delays
    # The slow senders were answered 408 at the deadline (3 s), not after their 20 s; a client
    # still writing its body may see the closed connection instead of reading the answer.
    assert cut_after < 10, cut_after
    statuses = [a.status_code if isinstance(a, httpx.Response) else type(a) for a in answers]
    assert set(statuses) <= {408, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError}
    answered = [a for a in answers if isinstance(a, httpx.Response)]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answered)
    async with db_session(database_url) as session:
        sources = (
            await session.execute(
                select(InboundEvent.source, func.count()).group_by(InboundEvent.source)
            )
        ).all()
    # The webhooks were stored; the cut-off callbacks were not.
    assert dict(sources) == {"printmotor": 5}
