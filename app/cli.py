"""The `printhook` command.

Results go to stdout (JSON where a script reads them: `printhook reconcile --once | jq .`),
logs to stderr as JSON lines. A failure is one line on stderr and a documented exit code
(`app/exits.py`, docs/CLI.md), never a traceback for a known cause.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import Any

import httpx

from app.config import ConfigurationError, Settings, load_settings
from app.exits import CommandError, ExitCode, unreachable
from app.feed.commands import register as register_feed_commands
from app.feed.commands import register_simulator as register_shop_simulator
from app.logging import configure_logging, register_secrets, settings_secrets
from app.printess.commands import register_simulator as register_printess_simulator
from app.printmotor.commands import register as register_printmotor_commands
from app.printmotor.commands import register_simulators as register_printmotor_simulators
from app.startup import bind_listener, check_database, log_configuration_summary, run_server

log = logging.getLogger("printhook.cli")

GRACEFUL_SHUTDOWN_SECONDS = 15
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _version() -> str:
    try:
        return version("printhook")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.migrate import upgrade

    upgrade(settings.database_url)
    log.info("db.migrated")
    return ExitCode.OK


def _stopped_gracefully(signum: int, frame: FrameType | None) -> None:
    log.info("server.stopped", extra={"signal": signal.Signals(signum).name})


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from app.main import create_app

    # The port first: a taken port must stop us before migrations or background work start.
    listener = bind_listener(args.host, args.port)
    try:
        log_configuration_summary(settings, "serve")
        check_database(settings, connect=args.migrate)
        if settings.is_sqlite or args.migrate:
            _cmd_migrate(settings, args)
        app = create_app(settings)
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal into the
        # handler that was there before it. A no-op there lets a graceful stop exit 0 instead
        # of "killed by SIGTERM" (which orchestrators report as a crash).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _stopped_gracefully)
        run_server(
            app,
            listener,
            # printhook logs its own access line with the callback token masked.
            access_log=False,
            # The app applies X-Forwarded-* itself (PRINTHOOK_TRUSTED_PROXIES); doing it here
            # too would unwrap the X-Forwarded-For chain twice.
            proxy_headers=False,
            server_header=False,
            # On SIGTERM: stop accepting, let in-flight requests finish (vendors wait up to
            # 10 s), then the lifespan stops the background workers.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    except BaseException:
        listener.close()
        raise
    return ExitCode.OK


async def _run_worker(settings: Settings) -> None:
    from app.background import BackgroundWorkers
    from app.context import AppContext
    from app.main import background_tasks

    ctx = AppContext.create(settings)
    workers = BackgroundWorkers(ctx, background_tasks(ctx))
    stop = _stop_on_signals()
    workers.start()
    log.info("worker.started", extra={"instance_id": ctx.instance_id})
    try:
        await stop.wait()
    finally:
        await workers.stop()
        await ctx.aclose()
        log.info("worker.stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    check_database(settings, connect=False)
    log_configuration_summary(settings, "worker")
    asyncio.run(_run_worker(settings))
    return ExitCode.OK


def _cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from app.inbound.retention import run_purge

    if not args.json:
        return run_purge(settings, dry_run=args.dry_run)
    print(json.dumps(asyncio.run(_purge(settings, dry_run=args.dry_run))))
    return ExitCode.OK


async def _purge(settings: Settings, *, dry_run: bool) -> dict[str, Any]:
    from app.context import AppContext
    from app.inbound.retention import count_purgeable, purge_expired_bodies, retention_cutoff

    ctx = AppContext.create(settings)
    try:
        cutoff = retention_cutoff(settings.retention_days)
        if dry_run:
            async with ctx.session_factory() as session:
                count = await count_purgeable(session, cutoff)
        else:
            count = await purge_expired_bodies(ctx)
    finally:
        await ctx.aclose()
    return {
        "dryRun": dry_run,
        "events": count.events,
        "bytes": count.bytes,
        "receivedBefore": cutoff.isoformat(timespec="seconds"),
        "retentionDays": settings.retention_days,
    }


async def _reconcile(settings: Settings, *, once: bool) -> int:
    from app.context import AppContext
    from app.printess.reconciler import run_once as printess_pass
    from app.printmotor.reconciler import run_once as printmotor_pass

    ctx = AppContext.create(settings)
    try:
        stop = None if once else _stop_on_signals()
        while True:
            summary = {
                "printess": (await printess_pass(ctx)).as_dict(),
                "printmotor": (await printmotor_pass(ctx)).as_dict(),
            }
            failed = any(vendor["errors"] for vendor in summary.values())
            if stop is None:
                print(json.dumps(summary, indent=2), flush=True)
                return ExitCode.FAILED if failed else ExitCode.OK
            # One JSON document per line and pass: `printhook reconcile | jq .` follows it.
            print(json.dumps(summary), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.reconcile_interval)
            if stop.is_set():
                return ExitCode.OK
    finally:
        await ctx.aclose()


def _cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_reconcile(settings, once=args.once))


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from app.inbound.replay import ReplayError, replay
    from app.main import applier

    try:
        event = asyncio.run(replay(settings, args.inbound_event_id, applier))
    except ReplayError as exc:
        raise CommandError(ExitCode.FAILED, str(exc)) from None
    if args.json:
        print(json.dumps(event.model_dump(mode="json", by_alias=True, exclude_none=True)))
    else:
        subject = f" {event.subject}" if event.subject else ""
        print(f"inbound event {event.id} ({event.source}{subject}): {event.state}")
    return ExitCode.OK


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it says its default itself."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
        ):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """The parser of `printhook` and, through `add_subparsers`, of each of its commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _describe(parser: argparse.ArgumentParser) -> None:
    """A command's one-line help (shown in its group's list) is also its `--help` description."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None:
                    child.description = helps.get(name)
                _describe(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="printhook",
        description="Durable, verified Printess and Printmotor callbacks for print shops. "
        "Settings come from PRINTHOOK_* variables (docs/CONFIGURATION.md); exit codes are "
        "listed in docs/CLI.md.",
    )
    parser.add_argument("--version", action="version", version=f"printhook {_version()}")
    # Which commands need the database before they start: "required" checks it (and
    # connects to PostgreSQL), "optional" lets the command decide, "none" skips it.
    parser.set_defaults(database="required")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP service (and background work)")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (always done on SQLite; on PostgreSQL run "
        "`printhook migrate` once per release instead)",
    )
    serve.set_defaults(handler=_cmd_serve, database="optional")

    migrate = sub.add_parser("migrate", help="bring the database schema to the newest version")
    migrate.set_defaults(handler=_cmd_migrate)

    worker = sub.add_parser(
        "worker", help="run only the background work (reconcilers, retention) until stopped"
    )
    worker.set_defaults(handler=_cmd_worker, database="optional")

    purge = sub.add_parser(
        "purge", help="drop raw inbound bodies older than PRINTHOOK_RETENTION_DAYS (rows stay)"
    )
    purge.add_argument("--dry-run", action="store_true", help="only show what would go")
    purge.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (dryRun, events, bytes, receivedBefore, retentionDays)",
    )
    purge.set_defaults(handler=_cmd_purge)

    replay = sub.add_parser(
        "replay", help="re-apply a stored vendor event through the same transition"
    )
    replay.add_argument("inbound_event_id", type=int, help="id of the row in inbound_events")
    replay.add_argument(
        "--json",
        action="store_true",
        help="print the outcome as one JSON object (inboundEventId, source, subjectId, outcome)",
    )
    replay.set_defaults(handler=_cmd_replay)

    reconcile = sub.add_parser(
        "reconcile",
        help="ask the vendors about due jobs and quiet orders: one JSON summary per pass, "
        "every PRINTHOOK_RECONCILE_INTERVAL until stopped",
    )
    reconcile.add_argument(
        "--once",
        action="store_true",
        help="run one full pass, print its summary and exit (1 if a vendor call failed)",
    )
    reconcile.set_defaults(handler=_cmd_reconcile)

    # Each domain adds its own commands (and simulators) to these groups, one line each.
    register_printmotor_commands(sub)
    register_feed_commands(sub)
    simulate = sub.add_parser("simulate", help="local stand-ins for the vendors (no accounts)")
    simulate.set_defaults(database="none")
    simulators = simulate.add_subparsers(dest="simulator", required=True, metavar="SIMULATOR")
    register_printess_simulator(simulators)
    register_printmotor_simulators(simulators)
    register_shop_simulator(simulators)

    _describe(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        for problem in exc.problems:
            print(f"printhook: {problem}", file=sys.stderr)
        return ExitCode.CONFIGURATION
    configure_logging(settings.log_level, stream=sys.stderr)
    register_secrets(settings_secrets(settings))
    try:
        if args.database == "required":
            check_database(settings)
        code: int = args.handler(settings, args)
    except CommandError as exc:
        print(exc.line, file=sys.stderr)
        return exc.code
    except httpx.TransportError as exc:
        print(unreachable(exc).line, file=sys.stderr)
        return ExitCode.UNREACHABLE
    except KeyboardInterrupt:
        print("printhook: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
