"""The only code that talks HTTP to the Printess backend API.

Every call is `POST` JSON with `Authorization: Bearer <service token>` through the shared
`httpx.AsyncClient`. status/get is a read: 429, 5xx and transport errors are retried with
exponential backoff and jitter, honouring `Retry-After`, for a bounded number of attempts.

produce is billed and not idempotent, so it is sent once. It is retried only when the request
certainly never reached Printess (connection refused, DNS failure, connect timeout) or on 429.
A timeout, a 5xx or a connection lost after sending raises `PrintessOutcomeUnknown`: Printess
may have enqueued the job, and only its callback can tell. The service token never appears in
logs or exception messages.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.config import Settings
from app.ops.metrics import VENDOR_CALLS
from app.printess.schemas import JOB_ID_MAX, ORDER_ID_MAX, has_bad_characters

log = logging.getLogger("printhook.printess.client")

# Longest Retry-After we sleep through inside one call; beyond it the caller decides.
MAX_INLINE_RETRY_AFTER = 10.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


class PrintessError(Exception):
    """A Printess call failed. Messages never contain the service token."""


class PrintessNotConfigured(PrintessError):
    """No service token: printhook cannot call Printess."""


class PrintessRejected(PrintessError):
    """Printess refused the request (402 insufficient funds, 406 not accepted, other 4xx)."""

    def __init__(self, status: int, code: int | None, message: str | None) -> None:
        super().__init__(f"Printess answered {status}: {message or 'no message'}")
        self.status = status
        self.code = code
        self.message = message


class PrintessThrottled(PrintessError):
    """Printess answered 429; `retry_after` is how long it asked us to wait (seconds)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Printess is throttling; retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class PrintessUnavailable(PrintessError):
    """Printess answered 5xx, timed out or could not be reached."""


class PrintessOutcomeUnknown(PrintessError):
    """A non-idempotent call (produce) may or may not have been carried out: it timed out,
    got a 5xx or lost its connection after the request was sent, or its answer was unusable."""


# Transport errors raised before any byte of the request was sent: safe to send again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class ProduceResult:
    job_id: str
    order_id: str | None


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Read `Retry-After` as delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


def _server_message(response: httpx.Response) -> tuple[int | None, str | None]:
    """Printess's `{c, m}` error body, when there is one."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    code = body.get("c") if isinstance(body.get("c"), int) else None
    message = body.get("m") if isinstance(body.get("m"), str) else None
    return code, message


class PrintessClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._base = settings.printess_api_url
        token = settings.printess_service_token
        self._token = token.get_secret_value() if token is not None else None

    @property
    def is_configured(self) -> bool:
        return bool(self._token)

    async def _post(
        self,
        operation: str,
        path: str,
        body: dict[str, Any],
        attempts: int,
        *,
        idempotent: bool = True,
    ) -> Any:
        if not self._token:
            raise PrintessNotConfigured("PRINTHOOK_PRINTESS_SERVICE_TOKEN is not set")
        headers = {"Authorization": f"Bearer {self._token}"}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.post(self._base + path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                VENDOR_CALLS.labels("printess", operation, "error").inc()
                log.warning(
                    "printess.call.failed",
                    extra={"operation": operation, "error_class": type(exc).__name__},
                )
                if not idempotent and not isinstance(exc, NOT_SENT):
                    raise PrintessOutcomeUnknown(
                        f"Printess {operation} failed after sending: {type(exc).__name__}"
                    ) from None
                if attempt >= attempts:
                    raise PrintessUnavailable(
                        f"Printess {operation} failed: {type(exc).__name__}"
                    ) from None
                await asyncio.sleep(_backoff(attempt))
                continue
            status = response.status_code
            VENDOR_CALLS.labels("printess", operation, str(status)).inc()
            if status == 429:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if attempt >= attempts or wait > MAX_INLINE_RETRY_AFTER:
                    raise PrintessThrottled(wait)
                await asyncio.sleep(wait + random.uniform(0, 0.1))
                continue
            if status >= 500:
                log.warning(
                    "printess.call.failed", extra={"operation": operation, "status": status}
                )
                if not idempotent:
                    raise PrintessOutcomeUnknown(f"Printess {operation} answered {status}")
                if attempt >= attempts:
                    raise PrintessUnavailable(f"Printess {operation} answered {status}")
                wait = retry_after_seconds(response.headers.get("retry-after"), 0.0)
                await asyncio.sleep(max(wait, _backoff(attempt)))
                continue
            if status >= 400:
                code, message = _server_message(response)
                raise PrintessRejected(status, code, message)
            try:
                return response.json()
            except (ValueError, RecursionError):
                failure = PrintessUnavailable if idempotent else PrintessOutcomeUnknown
                raise failure(f"Printess {operation} answered non-JSON") from None

    async def produce(self, request: dict[str, Any], *, attempts: int = 3) -> ProduceResult:
        """Enqueue a render job (`/production/produce`); return its jobId and orderId.

        Sent once; see the module docstring for what is retried. Raises
        `PrintessOutcomeUnknown` when Printess may have enqueued the job anyway.
        """
        answer = await self._post(
            "produce", "/production/produce", request, attempts, idempotent=False
        )
        job_id = answer.get("jobId") if isinstance(answer, dict) else None
        if (
            not isinstance(job_id, str)
            or not job_id.strip()
            or len(job_id) > JOB_ID_MAX
            or has_bad_characters(job_id)
        ):
            # A 2xx: Printess most likely enqueued the job, but printhook cannot track it.
            raise PrintessOutcomeUnknown("Printess produce answered without a usable jobId")
        order_id = answer.get("orderId")
        usable = (
            isinstance(order_id, str)
            and 0 < len(order_id) <= ORDER_ID_MAX
            and not has_bad_characters(order_id)
        )
        return ProduceResult(job_id.strip(), order_id if usable else None)

    async def get_status(self, job_id: str, *, attempts: int = 1) -> dict[str, Any]:
        """Read a job's status (`/production/status/get`). The endpoint is throttled, so by
        default a 429 surfaces at once as `PrintessThrottled` for the caller to pause on."""
        answer = await self._post(
            "status_get", "/production/status/get", {"jobId": job_id}, attempts
        )
        if not isinstance(answer, dict):
            raise PrintessUnavailable("Printess status/get answered an unexpected shape")
        if answer.get("jobId") in (None, ""):
            # The answer is about the job asked for, even when it does not repeat its id.
            answer["jobId"] = job_id
        return answer
