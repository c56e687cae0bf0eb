"""Pieces shared by the vendors' ack endpoints: read the body within a deadline, answer.

An ack endpoint authenticates, reads the body (within the size limit and the deadline),
checks only that it is a JSON object naming its subject, stores the raw bytes and answers
`200 {"ok":true,"eventId":<id>}`. Everything else happens in the applier.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.responses import Response
from starlette.types import Receive

from app.errors import BadRequest, ProblemError, ServiceUnavailable
from app.inbound.ingest import Stored


class RequestTimeout(ProblemError):
    status, slug, title = 408, "request-timeout", "Request body too slow"


class DatabaseUnavailable(ServiceUnavailable):
    slug, title = "database-unavailable", "Database unavailable"


class Unusable(BadRequest):
    """Authenticated, but not a JSON object naming its subject (stored as rejected)."""

    slug, title = "unusable-event", "Event cannot be used"


async def read_body(receive: Receive, timeout: float) -> bytes:
    """The whole body, or RequestTimeout once `timeout` seconds have passed without it.

    The deadline covers the whole body, so a sender trickling bytes cannot hold the request
    (and nothing else is held meanwhile: no transaction is open while reading).
    """
    chunks: list[bytes] = []

    async def _read() -> None:
        while True:  # through BodyLimitMiddleware's receive: 413 past the limit
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestTimeout("the client went away before sending the whole body")
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return

    try:
        async with asyncio.timeout(timeout):
            await _read()
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {timeout:g} seconds",
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


def json_object(body: bytes) -> dict[str, Any] | str:
    """The parsed object, or the reason it is not one (never raises)."""
    try:
        payload = json.loads(body)
    except RecursionError:
        return "JSON nested too deeply"
    except (UnicodeDecodeError, ValueError):
        return "body is not JSON"
    if not isinstance(payload, dict):
        return "body is not a JSON object"
    return payload


def subject_text(value: object, name: str, *, limit: int = 128, numbers: bool = True) -> str:
    """A subject id as stored (str of an int, or a clean string), or Unusable."""
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        kinds = "a string or number" if numbers else "a string"
        raise Unusable(f"{name} is missing or not {kinds}")
    if not text:
        raise Unusable(f"{name} is empty")
    if len(text) > limit:
        raise Unusable(f"{name} is longer than {limit} characters")
    if not text.isprintable():
        raise Unusable(f"{name} holds control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Unusable(f"{name} is not valid Unicode") from None
    return text


def ack_response(stored: Stored) -> Response:
    """`200 {"ok":true,"eventId":<id>}`; a duplicate gets the first copy's id."""
    body = b'{"ok":true,"eventId":%d}' % stored.event_id
    return Response(body, media_type="application/json")
