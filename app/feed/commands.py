"""`printhook notify ...` and `printhook simulate shop`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.config import Settings


async def _notify(settings: Settings, *, enable: bool) -> dict[str, object]:
    from app.context import AppContext
    from app.feed import delivery
    from app.feed.router import notify_status

    ctx = AppContext.create(settings)
    try:
        async with ctx.session_factory() as session:
            if enable:
                await delivery.enable(session)
                await session.commit()
            status = await notify_status(session, settings)
        return status.model_dump(mode="json", by_alias=True)
    finally:
        await ctx.aclose()


def _cmd_enable(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_notify(settings, enable=True)), indent=2))
    return 0


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(asyncio.run(_notify(settings, enable=False)), indent=2))
    return 0


def _cmd_shop(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.simulator.shop import shop_app

    secrets = [part.strip() for part in (args.secret or "").split(",") if part.strip()]
    secrets = secrets or [secret.get_secret_value() for secret in settings.notify_secrets]
    if not secrets:
        print("printhook: give --secret whsec_... or set PRINTHOOK_NOTIFY_SECRETS", file=sys.stderr)
        return 2

    def show(line: str) -> None:
        print(line, flush=True)

    print(
        f"shop receiver on http://{args.host}:{args.port}/ "
        f"(set PRINTHOOK_NOTIFY_URL=http://{args.host}:{args.port}/webhooks)",
        file=sys.stderr,
    )
    uvicorn.run(shop_app(secrets, show), host=args.host, port=args.port, log_config=None)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`printhook notify enable | status`."""
    group = sub.add_parser("notify", help="outbound webhooks to the shop")
    commands = group.add_subparsers(dest="notify_command", required=True)
    enable = commands.add_parser(
        "enable", help="resume delivery after the shop answered 410 Gone (all replicas)"
    )
    enable.set_defaults(handler=_cmd_enable)
    status = commands.add_parser("status", help="show whether delivery runs, and its backlog")
    status.set_defaults(handler=_cmd_status)


def register_simulator(simulators: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`printhook simulate shop`."""
    shop = simulators.add_parser(
        "shop", help="a shop webhook receiver that prints every verified delivery"
    )
    shop.add_argument("--host", default="127.0.0.1", help="address to listen on")
    shop.add_argument("--port", type=int, default=8100, help="port to listen on")
    shop.add_argument(
        "--secret", help="whsec_... (comma-separated; default: PRINTHOOK_NOTIFY_SECRETS)"
    )
    shop.set_defaults(handler=_cmd_shop)
