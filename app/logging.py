"""Structured JSON logs, one line per event, with secrets redacted.

Every line carries the id of the request it belongs to (`request_id`), bound through a
context variable by `app.ops.http.RequestContextMiddleware` and added by a handler filter.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from app.config import Settings

# Attributes every LogRecord has; anything else was bound by the caller as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# uvicorn duplicates its message with ANSI colours for its own formatter.
_DROPPED = frozenset({"color_message"})

request_id_var: ContextVar[str | None] = ContextVar("printhook_request_id", default=None)

_CALLBACK_PATH = re.compile(r"(/callbacks/printess/)[^/?\s\"'#]+")
_REDACTIONS = [
    # The Printess callback token is the last path segment of the callback URL.
    (_CALLBACK_PATH, r"\1***"),
    (
        re.compile(
            r"(?i)(authorization|x-printmotor-hmac-sha256|x-printmotor-service)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\"',\s]+(\s+[^\"',\s]+)?"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+"), r"\1***"),
    # Credentials inside URLs (database URLs in connection errors).
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
]

SENSITIVE_FIELDS = frozenset(
    {"authorization", "token", "secret", "password", "signature", "api_key", "service_token"}
)

# The configured secret values themselves, so they are caught wherever they turn up
# (an exception message, a vendor's error text), not only where a pattern expects them.
_secret_values: set[str] = set()
_known_secrets: re.Pattern[str] | None = None
# Shorter values would redact ordinary words; real secrets are far longer.
_MIN_SECRET_LENGTH = 6


def register_secrets(values: Iterable[str]) -> None:
    """Remember secret values (API keys, tokens, passwords, HMAC keys) to scrub from logs."""
    global _known_secrets
    _secret_values.update(value for value in values if len(value) >= _MIN_SECRET_LENGTH)
    # Longest first, so a secret containing another is replaced whole.
    escaped = [re.escape(s) for s in sorted(_secret_values, key=len, reverse=True)]
    _known_secrets = re.compile("|".join(escaped)) if escaped else None


# Standard Webhooks secrets are `whsec_<base64 key>`; the key is secret on its own too.
_WHSEC_PREFIX = "whsec_"


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value in the configuration."""
    secrets = [*settings.api_keys, *settings.printmotor_webhook_secrets]
    for single in (
        settings.printess_service_token,
        settings.printess_callback_secret,
        settings.printmotor_password,
    ):
        if single is not None:
            secrets.append(single)
    values = [secret.get_secret_value() for secret in secrets]
    for notify in settings.notify_secrets:
        value = notify.get_secret_value()
        values.append(value)
        if value.startswith(_WHSEC_PREFIX):
            values.append(value.removeprefix(_WHSEC_PREFIX))
    return values


def mask_path(path: str) -> str:
    """The request path as it may be logged: the Printess callback token replaced by `***`."""
    if "/callbacks/printess/" not in path:
        return path
    return _CALLBACK_PATH.sub(r"\1***", path)


# Every pattern above needs one of these (lower-cased) in the text: checking for them first
# keeps redaction cheap on the access line written for every request.
_TRIGGERS = ("/callbacks/printess/", "authorization", "x-printmotor-", "bearer", "basic", "://")


def redact(text: str) -> str:
    lowered = text.lower()
    if any(trigger in lowered for trigger in _TRIGGERS):
        for pattern, replacement in _REDACTIONS:
            text = pattern.sub(replacement, text)
    if _known_secrets is not None:
        text = _known_secrets.sub("***", text)
    return text


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while handling it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in _DROPPED or key.startswith("_"):
                continue
            if key.lower() in SENSITIVE_FIELDS:
                value = "***"
            elif isinstance(value, str):
                value = redact(value)
            elif not isinstance(value, int | float | bool | type(None)):
                dumped = json.dumps(value, default=str, ensure_ascii=False)
                if redact(dumped) != dumped:
                    value = redact(dumped)
            entry[key] = value
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class _AlembicChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on stdout (or `stream`) for printhook and every library it runs on."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # printhook writes its own access line (`http.request`, token masked); uvicorn's would
    # show the raw path with the Printess callback token.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs full request URLs (callback tokens) at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters (raw bodies) at DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # Alembic announces each of its internal plugins on every run, and its dialect on every
    # schema check (each /readyz); only the migrations it runs are news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration = logging.getLogger("alembic.runtime.migration")
    migration.filters[:] = [_AlembicChatter()]
