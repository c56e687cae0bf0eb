"""The only code that talks HTTP to Printmotor's order API.

PRINTHOOK_PRINTMOTOR_API_URL is the whole base (scheme, host and path, e.g.
`https://api.printmotor.io/api/v1`); the client appends `/order` and `/order/{orderNumber}`,
with every path segment escaped, so no value can reach another path.

`POST /order` is never retried here: an accepted order is printed, shipped and billed, so a
call whose outcome is unclear is reported as such (`OutcomeUnknown`) and never repeated.
`GET /order/{orderNumber}` is safe and retried once on transport errors and 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import httpx

from app.config import Settings
from app.ops.metrics import VENDOR_CALLS

log = logging.getLogger("printhook.printmotor.client")

VENDOR = "printmotor"
# Placing an order: connect fast; give Printmotor a while to accept, then call it unknown.
CREATE_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
READ_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
READ_ATTEMPTS = 2


class PrintmotorError(Exception):
    """Base of every failure of a Printmotor call. Messages never carry credentials."""


class NotConfigured(PrintmotorError):
    """Username, password or service id is missing."""


class Rejected(PrintmotorError):
    """Printmotor answered 4xx: it did not accept the request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Throttled(PrintmotorError):
    """429: nothing was done; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"throttled for {retry_after}s")
        self.retry_after = retry_after


class NotSent(PrintmotorError):
    """The request never reached Printmotor (no connection): nothing happened there."""


class OutcomeUnknown(PrintmotorError):
    """The request may have been processed (timeout after sending, 5xx, garbled answer)."""


def retry_after_seconds(value: str | None, default: float = 60.0) -> float:
    try:
        return max(1.0, float(value)) if value else default
    except ValueError:
        return default


def path_segment(value: str) -> str:
    """`value` as one escaped URL path segment: `/`, `?`, `#`, `%` and dot segments
    (which HTTP clients collapse) cannot move the request to another path."""
    quoted = quote(value, safe="")
    return {"": "%20", ".": "%2E", "..": "%2E%2E"}.get(quoted, quoted)


# Where Printmotor (and APIs like it) put the reason for a refusal. `technicalDescription`
# is the field one integration reads from a failed create (docs/VENDORS.md, M13).
_MESSAGE_KEYS = ("message", "error", "errorMessage", "detail", "m")


def _vendor_message(response: httpx.Response) -> str:
    """Printmotor's own explanation of a refusal, shortened; never our request."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if not isinstance(payload, dict):
        return str(payload)[:500]
    parts = [
        str(payload[key])
        for key in _MESSAGE_KEYS
        if isinstance(payload.get(key), str) and payload[key].strip()
    ]
    technical = payload.get("technicalDescription")
    if isinstance(technical, str) and technical.strip() and technical not in parts:
        parts.append(f"(technical: {technical})" if parts else technical)
    return (" ".join(parts) or str(payload))[:500]


class PrintmotorClient:
    """Order API calls through the shared `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._base = settings.printmotor_api_url
        self._username = settings.printmotor_username
        self._password = settings.printmotor_password
        self._service = settings.printmotor_service

    def _auth(self) -> tuple[httpx.BasicAuth, dict[str, str]]:
        if not self._username or self._password is None or not self._service:
            raise NotConfigured(
                "set PRINTHOOK_PRINTMOTOR_USERNAME, PRINTHOOK_PRINTMOTOR_PASSWORD and "
                "PRINTHOOK_PRINTMOTOR_SERVICE"
            )
        auth = httpx.BasicAuth(self._username, self._password.get_secret_value())
        return auth, {"X-Printmotor-Service": self._service}

    async def create_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """`POST /order` once. Returns Printmotor's answer (with `orderNumber`).

        Raises Rejected (4xx), Throttled (429), NotSent (no connection) or OutcomeUnknown.
        """
        auth, headers = self._auth()
        try:
            response = await self._http.post(
                f"{self._base}/order",
                json=order,
                auth=auth,
                headers=headers,
                timeout=CREATE_TIMEOUT,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            VENDOR_CALLS.labels(VENDOR, "create_order", "error").inc()
            raise NotSent(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            VENDOR_CALLS.labels(VENDOR, "create_order", "error").inc()
            raise OutcomeUnknown(type(exc).__name__) from exc
        VENDOR_CALLS.labels(VENDOR, "create_order", str(response.status_code)).inc()
        if response.status_code == 429:
            raise Throttled(retry_after_seconds(response.headers.get("retry-after")))
        if response.status_code in (408,) or response.status_code >= 500:
            raise OutcomeUnknown(f"Printmotor answered {response.status_code}")
        if response.status_code >= 400:
            raise Rejected(response.status_code, _vendor_message(response))
        try:
            payload = response.json()
        except ValueError as exc:
            raise OutcomeUnknown("Printmotor's answer is not JSON") from exc
        if not isinstance(payload, dict):
            raise OutcomeUnknown("Printmotor's answer is not a JSON object")
        return payload

    async def get_order(self, order_number: str) -> dict[str, Any]:
        """`GET /order/{orderNumber}`, retried once on transport errors and 5xx.

        Raises Rejected (4xx, e.g. 404), Throttled (429) or OutcomeUnknown (still failing).
        """
        auth, headers = self._auth()
        last: Exception | None = None
        for attempt in range(READ_ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.5 * attempt)
            try:
                response = await self._http.get(
                    f"{self._base}/order/{path_segment(order_number)}",
                    auth=auth,
                    headers=headers,
                    timeout=READ_TIMEOUT,
                )
            except httpx.HTTPError as exc:
                VENDOR_CALLS.labels(VENDOR, "get_order", "error").inc()
                last = exc
                continue
            VENDOR_CALLS.labels(VENDOR, "get_order", str(response.status_code)).inc()
            if response.status_code == 429:
                raise Throttled(retry_after_seconds(response.headers.get("retry-after")))
            if response.status_code >= 500:
                last = OutcomeUnknown(f"Printmotor answered {response.status_code}")
                continue
            if response.status_code >= 400:
                raise Rejected(response.status_code, _vendor_message(response))
            try:
                payload = response.json()
            except ValueError:
                last = OutcomeUnknown("Printmotor's answer is not JSON")
                continue
            if isinstance(payload, dict):
                # Printmotor answers the order itself, processingStatus at the top level
                # (docs/VENDORS.md, M16); a `userOrder` wrapper is accepted too.
                inner = payload.get("userOrder")
                return inner if isinstance(inner, dict) else payload
            last = OutcomeUnknown("Printmotor's answer is not a JSON object")
        raise OutcomeUnknown(type(last).__name__ if last else "no answer") from last
