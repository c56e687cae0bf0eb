"""The `printhook` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from app.config import ConfigurationError, Settings, load_settings
from app.feed.commands import register as register_feed_commands
from app.feed.commands import register_simulator as register_shop_simulator
from app.logging import configure_logging, register_secrets, settings_secrets
from app.printess.commands import register_simulator as register_printess_simulator
from app.printmotor.commands import register as register_printmotor_commands
from app.printmotor.commands import register_simulators as register_printmotor_simulators

log = logging.getLogger("printhook.cli")

GRACEFUL_SHUTDOWN_SECONDS = 15


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.migrate import upgrade

    upgrade(settings.database_url)
    log.info("db.migrated")
    return 0


def _stopped_gracefully(signum: int, frame: FrameType | None) -> None:
    log.info("server.stopped", extra={"signal": signal.Signals(signum).name})


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    if settings.is_sqlite or args.migrate:
        _cmd_migrate(settings, args)
    app = create_app(settings)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal into the
    # handler that was there before it. A no-op there lets a graceful stop exit 0 instead of
    # "killed by SIGTERM" (which orchestrators report as a crash).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped_gracefully)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        # printhook logs its own access line with the callback token masked.
        access_log=False,
        # The app applies X-Forwarded-* itself (PRINTHOOK_TRUSTED_PROXIES); doing it here too
        # would unwrap the X-Forwarded-For chain twice.
        proxy_headers=False,
        server_header=False,
        # On SIGTERM: stop accepting, let in-flight requests finish (vendors wait up to 10 s),
        # then the lifespan stops the background workers.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


async def _run_worker(settings: Settings) -> None:
    from app.background import BackgroundWorkers
    from app.context import AppContext
    from app.main import background_tasks

    ctx = AppContext.create(settings)
    workers = BackgroundWorkers(ctx, background_tasks(ctx))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers.start()
    log.info("worker.started", extra={"instance_id": ctx.instance_id})
    try:
        await stop.wait()
    finally:
        await workers.stop()
        await ctx.aclose()
        log.info("worker.stopped")


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_run_worker(settings))
    return 0


def _cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from app.inbound.retention import run_purge

    return run_purge(settings, dry_run=args.dry_run)


async def _reconcile_once(settings: Settings) -> dict[str, dict[str, object]]:
    from app.context import AppContext
    from app.printess.reconciler import run_once as printess_pass
    from app.printmotor.reconciler import run_once as printmotor_pass

    ctx = AppContext.create(settings)
    try:
        return {
            "printess": (await printess_pass(ctx)).as_dict(),
            "printmotor": (await printmotor_pass(ctx)).as_dict(),
        }
    finally:
        await ctx.aclose()


def _cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    summary = asyncio.run(_reconcile_once(settings))
    print(json.dumps(summary, indent=2))
    return 1 if any(vendor["errors"] for vendor in summary.values()) else 0


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from app.inbound.replay import run_replay

    return run_replay(settings, args.inbound_event_id)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printhook",
        description="Durable, verified Printess and Printmotor callbacks for print shops.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (and background work)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (always done on SQLite)",
    )
    serve.set_defaults(handler=_cmd_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema to the newest version")
    migrate.set_defaults(handler=_cmd_migrate)

    worker = sub.add_parser("worker", help="run only the background work (reconcilers, retention)")
    worker.set_defaults(handler=_cmd_worker)

    purge = sub.add_parser(
        "purge", help="drop raw inbound bodies older than PRINTHOOK_RETENTION_DAYS (rows stay)"
    )
    purge.add_argument("--dry-run", action="store_true", help="only show what would go")
    purge.set_defaults(handler=_cmd_purge)

    replay = sub.add_parser(
        "replay", help="re-apply a stored vendor event through the same transition"
    )
    replay.add_argument("inbound_event_id", type=int, help="id of the row in inbound_events")
    replay.set_defaults(handler=_cmd_replay)

    reconcile = sub.add_parser(
        "reconcile", help="ask the vendors about jobs and orders without news (one pass)"
    )
    reconcile.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run one full pass over every due job and order, print a summary and exit",
    )
    reconcile.set_defaults(handler=_cmd_reconcile)

    # Each domain adds its own commands (and simulators) to these groups.
    register_printmotor_commands(sub)
    register_feed_commands(sub)
    simulate = sub.add_parser("simulate", help="local stand-ins for the vendors (no accounts)")
    simulators = simulate.add_subparsers(dest="simulator", required=True)
    register_printess_simulator(simulators)
    register_printmotor_simulators(simulators)
    register_shop_simulator(simulators)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"printhook: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    register_secrets(settings_secrets(settings))
    code: int = args.handler(settings, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
