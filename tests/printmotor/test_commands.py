"""The `printhook simulate printmotor-webhook` sender and `printmotor resolve-placement`."""

from __future__ import annotations

import asyncio

import pytest

from app.cli import build_parser
from app.context import AppContext
from app.main import create_app
from app.printmotor.placement import claim, get_placement, resolve_placement
from app.simulator.printmotor import FakePrintmotor
from tests.printmotor.conftest import SECRET, feed_types, order_row, pm_settings
from tests.support.helpers import serve_in_thread, wait_for


def _run_cli(argv: list[str], settings: object) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(settings, args)
    return code


@pytest.mark.parametrize("encoding", ["base64", "hex"])
async def test_simulated_webhook_is_accepted_by_a_running_printhook(
    database_url: str, encoding: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real background applier applies what the simulator sends.
    settings = pm_settings(
        database_url,
        run_workers=True,
        reconcile_interval=3600,
        printmotor_api_url="http://127.0.0.1:9",
    )
    with serve_in_thread(create_app(settings)) as url:
        code = await asyncio.to_thread(
            _run_cli,
            [
                "simulate",
                "printmotor-webhook",
                "--url",
                f"{url}/webhooks/printmotor",
                "--secret",
                SECRET,
                "--order",
                "77",
                "--event",
                "USER_ORDER_DELIVERED",
                "--tracking",
                "JJFI123",
                "--reference",
                "SHOP-77",
                "--encoding",
                encoding,
            ],
            settings,
        )
        assert code == 0
        assert capsys.readouterr().out.strip() == '200 {"ok":true,"eventId":1}'
        row = await wait_for(lambda: order_row(database_url, 77))
    assert (row.status, row.tracking_code, row.reference) == ("delivered", "JJFI123", "SHOP-77")


async def test_simulated_webhook_with_a_wrong_secret_is_refused(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real background applier applies what the simulator sends.
    settings = pm_settings(
        database_url,
        run_workers=True,
        reconcile_interval=3600,
        printmotor_api_url="http://127.0.0.1:9",
    )
    with serve_in_thread(create_app(settings)) as url:
        code = await asyncio.to_thread(
            _run_cli,
            [
                "simulate",
                "printmotor-webhook",
                "--url",
                f"{url}/webhooks/printmotor",
                "--secret",
                "not-the-secret-000000",
                "--order",
                "78",
            ],
            settings,
        )
    assert code == 1
    assert capsys.readouterr().out.startswith("401 ")
    assert await order_row(database_url, 78) is None


async def test_operator_resolves_an_unknown_placement_with_the_order_number(
    database_url: str, fake_printmotor: tuple[FakePrintmotor, str]
) -> None:
    fake, url = fake_printmotor
    fake.orders["9001"] = {
        "orderNumber": 9001,
        "processingStatus": "IN_PRODUCTION",
        "meta": {"reference": "SHOP-OP"},
    }
    ctx = AppContext.create(pm_settings(database_url, printmotor_api_url=url))
    try:
        async with ctx.session_factory() as session:
            await claim(session, key=None, reference="SHOP-OP", digest="d", order={})
            await session.commit()
        assert await resolve_placement(ctx, "SHOP-OP", "9001") == "placed"
        async with ctx.session_factory() as session:
            placement = await get_placement(session, "SHOP-OP")
    finally:
        await ctx.aclose()
    assert placement is not None
    assert (placement.state, placement.order_number) == ("placed", "9001")
    row = await order_row(database_url, 9001)
    assert row is not None
    assert row.status == "in_production"
    assert await feed_types(database_url, 9001) == ["printmotor.order.received"]


async def test_operator_releases_a_placement_that_was_never_created(database_url: str) -> None:
    ctx = AppContext.create(pm_settings(database_url))
    try:
        async with ctx.session_factory() as session:
            await claim(session, key="k", reference="SHOP-NP", digest="d", order={})
            await session.commit()
        assert await resolve_placement(ctx, "SHOP-NP", None) == "released"
        async with ctx.session_factory() as session:
            assert await get_placement(session, "SHOP-NP") is None
        with pytest.raises(LookupError):
            await resolve_placement(ctx, "SHOP-NP", None)
    finally:
        await ctx.aclose()
