"""How `printhook` commands fail: documented exit codes and one-line reasons, no tracebacks.

The codes are part of the CLI's contract (docs/CLI.md), so scripts and orchestrators can tell
"fix the configuration" from "the database is down" from "the port is taken".
"""

from __future__ import annotations

import errno
import socket
from enum import IntEnum

import httpx

from app.logging import redact


class ExitCode(IntEnum):
    OK = 0
    # The command ran and reports a failure: a vendor call failed during a reconcile pass, a
    # replay is impossible, a sent webhook was answered non-2xx.
    FAILED = 1
    # Wrong arguments or an invalid PRINTHOOK_* setting.
    CONFIGURATION = 2
    # The database cannot be used: SQLite folder missing or not writable, PostgreSQL
    # unreachable, refusing the login, or without the database.
    DATABASE = 3
    # The address to listen on is taken (or not allowed).
    ADDRESS = 4
    # A URL the command sends to answers nothing (connection refused, unknown host, timeout).
    UNREACHABLE = 5
    # Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130


class CommandError(Exception):
    """Ends a command with `code` and one line on stderr (secrets redacted)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def line(self) -> str:
        return "printhook: " + redact(" ".join(str(self).split()))


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words, from the innermost cause we recognise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "unknown host"
        if isinstance(current, TimeoutError | httpx.TimeoutException):
            return "no answer in time"
        current = current.__cause__ or current.__context__
    text = str(exc).strip().splitlines()
    if text and "connection refused" in text[0].lower():
        return "connection refused"
    return text[0] if text else type(exc).__name__


def unreachable(exc: httpx.TransportError) -> CommandError:
    """A URL the command sent to could not be reached."""
    try:
        url = str(exc.request.url)
    except RuntimeError:
        url = "the URL"
    return CommandError(ExitCode.UNREACHABLE, f"cannot reach {url}: {connection_reason(exc)}")
