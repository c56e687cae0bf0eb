"""`printhook simulate shop` (a verifying receiver) and `printhook notify enable | status`."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from app.cli import build_parser
from app.feed import delivery
from app.feed.models import NotifyState
from app.simulator.shop import shop_app
from tests.feed.conftest import new_secret, observe
from tests.support.helpers import (
    AUTH,
    db_session,
    make_settings,
    running_app,
    serve_in_thread,
    wait_for,
)


def _run_cli(argv: list[str], settings: object) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(settings, args)
    return code


def test_simulate_shop_takes_a_port_and_a_secret() -> None:
    args = build_parser().parse_args(["simulate", "shop", "--port", "8100", "--secret", "whsec_x"])
    assert (args.port, args.secret) == (8100, "whsec_x")


@pytest.mark.usefixtures("fast_notifier")
async def test_the_shop_simulator_prints_verified_deliveries_and_rejects_bad_signatures(
    database_url: str,
) -> None:
    secret = new_secret()
    lines: list[str] = []
    with serve_in_thread(shop_app([secret], lines.append)) as shop:
        settings = make_settings(
            database_url,
            notify_url=f"{shop}/webhooks",
            notify_secrets=secret,
            run_workers=True,
            reconcile_interval=3600,
        )
        async with running_app(settings) as (_, client):
            await client.put("/v1/printess/jobs/job-9", json={"reference": "S-9"}, headers=AUTH)

            async def printed() -> list[str]:
                return list(lines)

            (line,) = await wait_for(printed)
        assert line.startswith("evt_1 printess.job.tracked printess_job:job-9 {")
        assert json.loads(line.split(" ", 3)[3])["reference"] == "S-9"

        forged = httpx.post(
            f"{shop}/webhooks",
            content=b'{"type":"printmotor.order.cancelled"}',
            headers={
                "webhook-id": "evt_99",
                "webhook-timestamp": "1700000000",
                "webhook-signature": "v1,AAAA",
            },
        )
    assert forged.status_code == 401
    assert lines[-1] == "rejected evt_99: signature does not verify"


async def test_notify_enable_resumes_delivery_and_status_shows_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database_url, notify_url="http://127.0.0.1:9/hook", notify_secrets=new_secret()
    )
    await observe(database_url, "1", "received")
    async with db_session(database_url) as session:
        await delivery.set_disabled(session, "the receiver answered 410 Gone")
        await session.commit()

    assert await asyncio.to_thread(_run_cli, ["notify", "status"], settings) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["configured"], shown["disabled"]) == (True, True)

    assert await asyncio.to_thread(_run_cli, ["notify", "enable"], settings) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["disabled"] is False
    async with db_session(database_url) as session:
        state = await session.get(NotifyState, 1)
    assert state is not None
    assert state.disabled_at is None
    async with running_app(settings) as (_, client):
        status = (await client.get("/v1/notify", headers=AUTH)).json()
    assert status["disabled"] is False
