"""The notifier: POSTs every settled event to the shop, signed with Standard Webhooks.

A background task (in the web process or `printhook worker`). Each pass creates deliveries
for new events, leases the due ones (one per subject, so a subject's events go out in order),
sends them concurrently and records each result in its own transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks.webhooks import Webhook

from app.background import PeriodicTask
from app.config import ConfigurationError, Settings
from app.configvalues import parse_duration
from app.context import AppContext
from app.db import utcnow
from app.feed import delivery
from app.feed.delivery import AttemptResult, Claimed
from app.feed.models import Event
from app.feed.service import event_json
from app.feed.wake import Waker
from app.ops.metrics import DELIVERY_ATTEMPTS

log = logging.getLogger("printhook.notify")

# How often a replica looks for new events and due retries.
POLL_SECONDS = 1.0
SEND_BATCH = 20
# A Retry-After longer than this is not believed.
MAX_RETRY_AFTER = timedelta(hours=24)
# Jitter: each wait is stretched or shrunk by up to this fraction.
JITTER = 0.2


def retry_schedule(settings: Settings) -> list[timedelta]:
    """PRINTHOOK_NOTIFY_SCHEDULE as waits (Settings has refused unreadable entries already)."""
    return [parse_duration(entry) for entry in settings.notify_schedule]


def notify_url(settings: Settings) -> str | None:
    """PRINTHOOK_NOTIFY_URL, checked at startup to be an absolute http(s) URL."""
    if not settings.notify_url:
        return None
    try:
        url = httpx.URL(settings.notify_url)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(["PRINTHOOK_NOTIFY_URL: must be an http:// or https:// URL"])
    return settings.notify_url


def signers(settings: Settings) -> list[Webhook]:
    """One Standard Webhooks signer per secret in PRINTHOOK_NOTIFY_SECRETS."""
    result = []
    for position, secret in enumerate(settings.notify_secrets, start=1):
        try:
            result.append(Webhook(secret.get_secret_value()))
        except Exception:
            # The secret itself is never shown, only which one it is.
            raise ConfigurationError(
                [f"PRINTHOOK_NOTIFY_SECRETS: secret #{position} is not a whsec_<base64> secret"]
            ) from None
    return result


def signed_request(
    event: Event, secrets: list[Webhook], now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and Standard Webhooks headers for one event (a signature per secret)."""
    body = json.dumps(event_json(event), separators=(",", ":"), ensure_ascii=False)
    message_id = f"evt_{event.id}"
    signatures = " ".join(secret.sign(message_id, now, body) for secret in secrets)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }
    return body.encode(), headers


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    try:
        wait = timedelta(seconds=max(float(value.strip()), 0.0))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


async def attempt(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> AttemptResult:
    """POST once; never follows a redirect. Errors name their kind, never the URL."""
    try:
        # The answer's body is never read: only its status and headers matter.
        async with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
            retry_after = response.headers.get("retry-after")
    except httpx.TimeoutException:
        return AttemptResult("timeout", error="no answer within PRINTHOOK_NOTIFY_TIMEOUT")
    except httpx.HTTPError as exc:
        return AttemptResult("network_error", error=f"could not connect ({type(exc).__name__})")
    if 200 <= status < 300:
        return AttemptResult("delivered", status=status)
    if status == 410:
        return AttemptResult("gone", status=status, error="410 Gone: delivery disabled")
    if status in (429, 503):
        wait = _retry_after(retry_after, utcnow())
        return AttemptResult("throttled", status=status, error=f"HTTP {status}", retry_after=wait)
    if 300 <= status < 400:
        return AttemptResult(
            "redirect", status=status, error=f"HTTP {status}: redirect not followed"
        )
    return AttemptResult("http_error", status=status, error=f"HTTP {status}")


@dataclass
class NotifySummary:
    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: bool = False


class Notifier:
    """One replica's notifier. Construct it at startup: `since` is when delivery may begin."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.since = utcnow()
        self.url = notify_url(settings)
        self.configured = delivery.delivery_configured(settings)
        self.schedule = retry_schedule(settings)
        self.secrets = signers(settings) if self.configured else []
        timeout = settings.notify_timeout.total_seconds()
        self.timeout = httpx.Timeout(timeout)
        # A send is abandoned after `timeout`; the lease outlives it comfortably.
        self.lease = timedelta(seconds=timeout) + settings.lease_grace
        self._waker: Waker | None = None
        if settings.notify_url and not settings.notify_secrets:
            log.error("notify.unsigned", extra={"hint": "set PRINTHOOK_NOTIFY_SECRETS"})

    async def _between_passes(self) -> None:
        # The first pass starts at once; later ones wait for a commit of new events in this
        # process, a second at most (other replicas' events and due retries).
        if self._waker is None:
            self._waker = Waker()
            return
        await self._waker.sleep(POLL_SECONDS)

    def next_attempt_at(self, attempts_made: int, result: AttemptResult) -> datetime | None:
        """When to try again after `attempts_made` attempts (None: give up)."""
        now = utcnow()
        if result.outcome == "gone":
            return now
        if attempts_made > len(self.schedule):
            return None
        wait = self.schedule[attempts_made - 1] * (1 + random.uniform(-JITTER, JITTER))
        if result.retry_after is not None:
            wait = max(wait, result.retry_after)
        return now + wait

    async def run_once(self, ctx: AppContext) -> NotifySummary:
        """One pass: create deliveries for new events, then send what is due (until none is)."""
        summary = NotifySummary()
        if not self.configured:
            return summary
        await self._between_passes()
        summary.enqueued = await delivery.enqueue(ctx, self.since)
        for _ in range(50):
            async with ctx.session_factory() as session:
                state = await delivery.get_state(session)
            if state is not None and state.disabled_at is not None:
                summary.disabled = True
                break
            claimed = await delivery.claim_due(ctx, limit=SEND_BATCH, lease=self.lease)
            if not claimed:
                break
            await self._send_all(ctx, claimed, summary)
        async with ctx.session_factory() as session:
            await delivery.refresh_gauges(session)
        return summary

    async def _send_all(
        self, ctx: AppContext, claimed: list[Claimed], summary: NotifySummary
    ) -> None:
        assert self.url is not None
        url = self.url
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, headers={"user-agent": "printhook"}
        ) as client:
            try:
                await asyncio.gather(
                    *(self._send(ctx, client, url, item, summary) for item in claimed)
                )
            except asyncio.CancelledError:
                ids = [item.delivery_id for item in claimed]
                await asyncio.shield(delivery.release_leases(ctx, ids))
                raise

    async def _send(
        self,
        ctx: AppContext,
        client: httpx.AsyncClient,
        url: str,
        item: Claimed,
        summary: NotifySummary,
    ) -> None:
        event = item.event
        body, headers = signed_request(event, self.secrets, utcnow())
        result = await attempt(client, url, body, headers)
        DELIVERY_ATTEMPTS.labels(result.outcome).inc()
        attempts_made = item.attempts + 1
        next_at = (
            None if result.outcome == "delivered" else self.next_attempt_at(attempts_made, result)
        )
        state = await delivery.record_attempt(
            ctx, item.delivery_id, result, next_attempt_at=next_at
        )
        fields = {
            "event_id": event.id,
            "event_type": event.type,
            "attempts": attempts_made,
            "outcome": result.outcome,
            "status": result.status,
        }
        if state is None:
            log.warning("notify.delivery.lease_lost", extra=fields)
        elif state == "delivered":
            summary.delivered += 1
            log.info("notify.delivery.delivered", extra=fields)
        elif state == "failed":
            summary.failed += 1
            log.warning("notify.delivery.failed", extra=fields)
        else:
            summary.retried += 1
            log.info("notify.delivery.retry", extra={**fields, "next_attempt_at": next_at})
        if result.outcome == "gone":
            log.error(
                "notify.disabled",
                extra={**fields, "hint": "run `printhook notify enable` once the shop is ready"},
            )


def notifier_task(ctx: AppContext) -> PeriodicTask:
    """The notifier as background work (does nothing without PRINTHOOK_NOTIFY_URL)."""
    notifier = Notifier(ctx.settings)
    # The pass itself waits between passes (see `_between_passes`); without delivery
    # configured it only ever waits here.
    interval = 0.0 if notifier.configured else 3600.0
    return PeriodicTask("notifier", interval, notifier.run_once)
