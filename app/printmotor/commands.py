"""`printhook` subcommands for Printmotor: simulators and placement resolution."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.config import Settings
from app.startup import serve_app


def _cmd_send_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from app.simulator.printmotor import send_webhook, webhook_body

    secret = args.secret
    if secret is None and settings.printmotor_webhook_secrets:
        secret = settings.printmotor_webhook_secrets[0].get_secret_value()
    if not secret:
        print(
            "printhook: give --secret or set PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS", file=sys.stderr
        )
        return 2
    body = webhook_body(
        args.order,
        args.event,
        reference=args.reference,
        processing_status=args.processing_status,
        description=args.description,
        tracking_code=args.tracking,
        tracking_links=args.link,
        delivery_time=args.delivery_time,
    )
    url = args.url
    if url is None and args.port is not None:
        url = f"http://127.0.0.1:{args.port}/webhooks/printmotor"
    if url is None:
        url = f"{settings.public_base_url}/webhooks/printmotor"
    response = send_webhook(url, secret, body, args.encoding)
    print(f"{response.status_code} {response.text}")
    return 0 if response.is_success else 1


def _cmd_fake_api(settings: Settings, args: argparse.Namespace) -> int:
    from app.simulator.printmotor import FakePrintmotor

    fake = FakePrintmotor(username=args.username, password=args.password, service=args.service)
    print(
        f"fake Printmotor order API on http://{args.host}:{args.port}/api/v1 "
        f"(user {args.username!r}, service {args.service!r})",
        file=sys.stderr,
    )
    serve_app(fake.app, args.host, args.port, access_log=False)
    return 0


def _cmd_resolve(settings: Settings, args: argparse.Namespace) -> int:
    from app.context import AppContext
    from app.printmotor.placement import resolve_placement

    async def _run() -> str:
        ctx = AppContext.create(settings)
        try:
            return await resolve_placement(ctx, args.reference, args.order_number)
        finally:
            await ctx.aclose()

    try:
        result = asyncio.run(_run())
    except LookupError as exc:
        print(f"printhook: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"reference": args.reference, "result": result}))
    return 0


def register_simulators(simulators: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`printhook simulate printmotor-webhook` and `printhook simulate printmotor-api`."""
    hook = simulators.add_parser(
        "printmotor-webhook", help="send a webhook signed exactly as Printmotor signs it"
    )
    target = hook.add_mutually_exclusive_group()
    target.add_argument(
        "--url", help="where to send it (default: PRINTHOOK_PUBLIC_BASE_URL/webhooks/printmotor)"
    )
    target.add_argument(
        "--port", type=int, help="send to a printhook on http://127.0.0.1:PORT instead"
    )
    hook.add_argument(
        "--secret", help="HMAC key (default: the first of PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS)"
    )
    hook.add_argument(
        "--order", required=True, type=int, help="orderNumber (an integer, as Printmotor sends)"
    )
    hook.add_argument("--event", default="USER_ORDER_DELIVERED", help="eventType")
    hook.add_argument("--reference", help="meta.reference")
    hook.add_argument("--processing-status", help="userOrder.processingStatus")
    hook.add_argument("--description", help="processingStatusDescription")
    hook.add_argument(
        "--tracking", help="meta.trackingCode (send DELIVERED again to update the tracking)"
    )
    hook.add_argument("--link", action="append", help="a tracking link (repeatable)")
    hook.add_argument(
        "--delivery-time",
        help="deliveryTime without a zone, as Printmotor sends it, e.g. 2026-11-24T14:57:56",
    )
    hook.add_argument(
        "--encoding",
        choices=["base64", "hex"],
        default="base64",
        help="how the signature is written in X-Printmotor-Hmac-SHA256",
    )
    hook.set_defaults(handler=_cmd_send_webhook)

    api = simulators.add_parser("printmotor-api", help="run a fake Printmotor order API")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on")
    api.add_argument("--port", type=int, default=8090, help="port to listen on")
    api.add_argument("--username", default="printhook", help="HTTP Basic user to require")
    api.add_argument(
        "--password", default="printmotor-password", help="HTTP Basic password to require"
    )
    api.add_argument(
        "--service", default="printhook-service", help="X-Printmotor-Service value to require"
    )
    api.set_defaults(handler=_cmd_fake_api)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`printhook printmotor resolve-placement`."""
    group = sub.add_parser("printmotor", help="Printmotor order placements")
    commands = group.add_subparsers(dest="printmotor_command", required=True)
    resolve = commands.add_parser(
        "resolve-placement",
        help="settle a placement whose outcome is unknown (after checking Printmotor's UI)",
    )
    resolve.add_argument("--reference", required=True, help="meta.reference of the placement")
    which = resolve.add_mutually_exclusive_group(required=True)
    which.add_argument("--order-number", help="the order Printmotor did create for it")
    which.add_argument(
        "--not-placed",
        action="store_true",
        help="Printmotor has no such order: allow the shop to place it again",
    )
    resolve.set_defaults(handler=_cmd_resolve)
