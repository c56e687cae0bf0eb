"""What `printhook serve` and `printhook worker` check and say before they start.

- `log_configuration_summary`: one log line with what is configured (counts and on/off, never
  a value), and one warning per missing piece that makes an endpoint refuse everything.
- `check_database`: the database can be used, else a one-line `CommandError`.
- `bind_listener`: the port is taken before migrations and background work start.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.exits import CommandError, ExitCode, connection_reason

log = logging.getLogger("printhook.startup")

# Variables read by the test suite, not by printhook.
_NOT_SETTINGS = frozenset({"PRINTHOOK_TEST_DATABASE_URL"})


@dataclass(frozen=True)
class ConfigWarning:
    variable: str
    consequence: str


def configuration_summary(settings: Settings) -> dict[str, object]:
    """What is configured, as log fields: kinds, counts and switches, never a secret."""
    credentials = _printmotor_credentials(settings)
    return {
        "environment": settings.environment,
        "database": "sqlite" if settings.is_sqlite else "postgresql",
        "api_keys": len(settings.api_keys),
        "printess_service_token": settings.printess_service_token is not None,
        "printess_callback_secret": settings.printess_callback_secret is not None,
        "printess_verify_callbacks": settings.verify_printess_callbacks,
        "printmotor_webhook_keys": len(settings.printmotor_webhook_secrets),
        "printmotor_order_credentials": (
            "complete" if not credentials[1] else "partial" if credentials[0] else "none"
        ),
        "notify_url": settings.notify_url is not None,
        "notify_secrets": len(settings.notify_secrets),
        "run_workers": settings.run_workers,
    }


def _printmotor_credentials(settings: Settings) -> tuple[list[str], list[str]]:
    """(set, missing) names of the three order-API settings."""
    values = {
        "PRINTHOOK_PRINTMOTOR_USERNAME": settings.printmotor_username,
        "PRINTHOOK_PRINTMOTOR_PASSWORD": settings.printmotor_password,
        "PRINTHOOK_PRINTMOTOR_SERVICE": settings.printmotor_service,
    }
    present = [name for name, value in values.items() if value]
    return present, [name for name in values if name not in present]


def configuration_warnings(
    settings: Settings, environ: dict[str, str] | None = None
) -> list[ConfigWarning]:
    """Each missing piece that makes an endpoint refuse everything, and each unknown variable."""
    found: list[ConfigWarning] = []
    if not settings.api_keys:
        found.append(
            ConfigWarning("PRINTHOOK_API_KEYS", "every shop call to /v1/... is answered 401")
        )
    if not settings.printmotor_webhook_secrets:
        found.append(
            ConfigWarning(
                "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS",
                "every Printmotor webhook is answered 401",
            )
        )
    if settings.printess_service_token is None:
        found.append(
            ConfigWarning(
                "PRINTHOOK_PRINTESS_SERVICE_TOKEN",
                "POST /v1/printess/jobs is answered 503, callbacks are not re-read from "
                "Printess and no job is reconciled",
            )
        )
    present, missing = _printmotor_credentials(settings)
    if missing:
        found.append(
            ConfigWarning(
                ", ".join(missing),
                "POST /v1/printmotor/orders is answered 503 (not configured) and no order is "
                "read back" + (f" ({', '.join(present)} set without them)" if present else ""),
            )
        )
    if settings.notify_url is not None and not settings.notify_secrets:
        found.append(
            ConfigWarning(
                "PRINTHOOK_NOTIFY_SECRETS",
                "PRINTHOOK_NOTIFY_URL is set but deliveries cannot be signed",
            )
        )
    known = {f"PRINTHOOK_{name.upper()}" for name in Settings.model_fields}
    for name in sorted(os.environ if environ is None else environ):
        if name.startswith("PRINTHOOK_") and name not in known and name not in _NOT_SETTINGS:
            found.append(ConfigWarning(name, "is not a printhook setting and is ignored (a typo?)"))
    return found


def log_configuration_summary(settings: Settings, command: str) -> None:
    """The start-up summary line, then one warning line per problem found."""
    log.info("config.summary", extra={"command": command, **configuration_summary(settings)})
    for warning in configuration_warnings(settings):
        log.warning(
            "config.warning",
            extra={"variable": warning.variable, "consequence": warning.consequence},
        )


def check_database(settings: Settings, *, connect: bool = True) -> None:
    """Raise CommandError (exit 3) unless the configured database can be used.

    SQLite: its folder must exist and be writable (the file itself is created by migrating).
    PostgreSQL (with `connect`): one connection and `SELECT 1` within the connect timeout.
    """
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return
        folder = Path(database).parent
        if not folder.is_dir():
            raise CommandError(
                ExitCode.DATABASE,
                f"the folder {folder}/ of the SQLite database {database} does not exist "
                "(PRINTHOOK_DATABASE_URL); create it or point the URL elsewhere",
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(
                ExitCode.DATABASE,
                f"the folder {folder}/ of the SQLite database {database} is not writable "
                "(PRINTHOOK_DATABASE_URL)",
            )
        return
    if connect:
        asyncio.run(_select_one(settings))


async def _select_one(settings: Settings) -> None:
    from app.db import create_engine

    engine = create_engine(settings)
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, DBAPIError) as exc:
        reason = connection_reason(exc)
        if isinstance(exc, DBAPIError) and not isinstance(exc.orig, OSError):
            reason = str(exc.orig).strip().splitlines()[0].split(": ", 1)[-1]
        raise CommandError(
            ExitCode.DATABASE,
            f"cannot use the PostgreSQL database {where} (PRINTHOOK_DATABASE_URL): {reason}",
        ) from None
    finally:
        await engine.dispose()


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (as uvicorn would bind it), or CommandError (exit 4)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use (another printhook?); choose another --port"
        elif isinstance(exc, socket.gaierror):
            reason = "unknown host"
        else:
            reason = exc.strerror or str(exc)
        raise CommandError(ExitCode.ADDRESS, f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def run_server(app: Any, listener: socket.socket, **options: Any) -> None:
    """Serve `app` with uvicorn on an already bound `listener` (closed afterwards)."""
    import uvicorn

    host, port = listener.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_config=None, **options)
    log.info("server.starting", extra={"host": host, "port": port})
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()


def serve_app(app: Any, host: str, port: int, **options: Any) -> None:
    """Bind host:port (a taken port: CommandError, exit 4), then serve `app` on it."""
    run_server(app, bind_listener(host, port), **options)
