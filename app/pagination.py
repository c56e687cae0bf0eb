"""The rules both list endpoints share: `updated_after`, `cursor`, `limit` and `status`.

Printess jobs and Printmotor orders are paged the same way, by (updatedAt, id) ascending, and
refuse the same inputs with the same answer: 400 problem+json for a time without a zone or
outside what can be stored, a cursor that does not have a cursor's form, or an unknown status.

A cursor is not signed: it is only a position, and any position is a legitimate place to start
a page. What is refused (400) is a string that does not have a cursor's form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query

from app.errors import BadRequest

MAX_LIMIT = 200
# A cursor names the last (updatedAt, id) seen; the id is at most 128 characters, which is at
# most 512 bytes of UTF-8.
CURSOR_PATTERN = r"^[0-9]{1,18}\.([0-9a-f]{2}){0,512}$"
CURSOR_MAX_LENGTH = 18 + 1 + 1024
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LAST_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
# RFC 3339 `date-time` (the offset is required), read strictly.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# On the first and the last day of the calendar some offsets leave the range a UTC time can be
# stored in; refusing those two days whole keeps the rule one a schema can state.
UPDATED_AFTER_PATTERN = r"^(?!0001-01-01|9999-12-31)"


def _bad_time(name: str) -> BadRequest:
    return BadRequest(
        f"{name} must be an RFC 3339 date-time with a time zone (e.g. 2026-11-23T18:00:00Z) "
        "between 0001-01-02 and 9999-12-30"
    )


def parse_time(value: str, name: str = "updated_after") -> datetime:
    """An RFC 3339 date-time as aware UTC; BadRequest when naive, malformed or out of range."""
    match = _RFC3339.fullmatch(value)
    if match is None or value.startswith(("0001-01-01", "9999-12-31")):
        raise _bad_time(name)
    fraction = (match.group(7) or "")[:7]  # Python reads at most microseconds
    offset = match.group(8).upper().replace("Z", "+00:00")
    text = value[: match.start(7) if match.group(7) else match.start(8)] + fraction + offset
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad_time(name) from None


def encode_cursor(updated_at: datetime, key: str) -> str:
    """`<microseconds since 0001-01-01T00:00Z>.<hex of the key's UTF-8>`."""
    micros = (updated_at.astimezone(UTC) - _EPOCH) // _MICROSECOND
    return f"{micros}.{key.encode().hex()}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; BadRequest when it does not have a cursor's form.

    Every string of that form is a position (a time past the last storable one is the last
    one; key bytes that are not UTF-8 or NUL read as U+FFFD), so no cursor can reach the
    database as something it refuses."""
    if len(cursor) > CURSOR_MAX_LENGTH or not _CURSOR.fullmatch(cursor):
        raise BadRequest("cursor is not valid; use a nextCursor from this API")
    micros, _, key_hex = cursor.partition(".")
    position = _EPOCH + min(int(micros), _LAST_MICROS) * _MICROSECOND
    key = bytes.fromhex(key_hex).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return position, key


@dataclass(frozen=True)
class PageQuery:
    updated_after: datetime | None
    after: tuple[datetime, str] | None
    limit: int


def time_query(what: str) -> Any:
    """A query parameter holding an instant, documented as `parse_time` reads it."""
    return Query(
        description=f"{what}: an RFC 3339 date-time with a time zone, between 0001-01-02 "
        "and 9999-12-30.",
        json_schema_extra={"format": "date-time", "pattern": UPDATED_AFTER_PATTERN},
    )


def page_query(
    updated_after: Annotated[
        str | None, time_query("Only items changed after this instant")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="`nextCursor` of the previous page (opaque).",
            json_schema_extra={"pattern": CURSOR_PATTERN, "maxLength": CURSOR_MAX_LENGTH},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 50,
) -> PageQuery:
    """`updated_after`, `cursor` and `limit`, checked the same way for every list endpoint."""
    return PageQuery(
        updated_after=parse_time(updated_after) if updated_after is not None else None,
        after=decode_cursor(cursor) if cursor is not None else None,
        limit=limit,
    )


def status_filter(statuses: Sequence[str], description: str) -> Any:
    """A `status` query parameter documented as an enum and refused (400) outside it."""
    return Query(description=description, json_schema_extra={"enum": list(statuses)})


def check_status(status: str | None, statuses: Sequence[str]) -> str | None:
    if status is not None and status not in statuses:
        raise BadRequest(f"status must be one of {', '.join(statuses)}")
    return status
