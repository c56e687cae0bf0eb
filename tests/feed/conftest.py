"""A real shop receiver on loopback (verifying with `standardwebhooks`) and event factories."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.config import Settings
from app.feed import notifier
from app.printmotor.service import apply_observation
from app.printmotor.transition import Observation
from tests.support.helpers import db_session, make_settings, serve_in_thread


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Received:
    """One request the receiver got, and whether its signature verified."""

    webhook_id: str
    verified: bool
    payload: dict[str, Any] | None
    headers: dict[str, str]
    status: int
    body: bytes
    # When the request arrived (time.monotonic()).
    at: float


# Decides the answer to the n-th request (1-based) for one webhook-id:
# (status, extra headers, seconds to wait before answering).
Script = Callable[[str, int], tuple[int, dict[str, str], float]]


def always_ok(webhook_id: str, n: int) -> tuple[int, dict[str, str], float]:
    return 200, {}, 0.0


@dataclass
class Receiver:
    secret: str
    url: str = ""
    script: Script = always_ok
    received: list[Received] = field(default_factory=list)
    elsewhere_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Requests per webhook-id counted on arrival (a slow answer is recorded only at its end).
    _arrivals: dict[str, int] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            arrived = time.monotonic()
            body = await request.body()
            headers = dict(request.headers)
            webhook_id = headers.get("webhook-id", "")
            try:
                payload = Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                payload, verified = None, False
            with self._lock:
                n = self._arrivals[webhook_id] = self._arrivals.get(webhook_id, 0) + 1
            status, extra, delay = self.script(webhook_id, n) if verified else (401, {}, 0.0)
            if delay:
                await asyncio.sleep(delay)
            with self._lock:
                self.received.append(
                    Received(webhook_id, verified, payload, headers, status, body, arrived)
                )
            return Response(status_code=status, headers=extra)

        async def elsewhere(request: Request) -> Response:
            with self._lock:
                self.elsewhere_hits += 1
            return Response(status_code=200)

        return Starlette(
            routes=[
                Route("/hook", hook, methods=["POST"]),
                Route("/elsewhere", elsewhere, methods=["POST", "GET"]),
            ]
        )

    def ids(self, *, status: int | None = None) -> list[str]:
        with self._lock:
            return [r.webhook_id for r in self.received if status is None or r.status == status]

    def delivered_payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.payload for r in self.received if r.status == 200 and r.payload]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(secret=new_secret())
    with serve_in_thread(rec.app()) as base:
        rec.url = f"{base}/hook"
        yield rec


@pytest.fixture
def fast_notifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notifier passes every 50 ms instead of every second, so tests run quickly."""
    monkeypatch.setattr(notifier, "POLL_SECONDS", 0.05)


def notify_settings(database_url: str, receiver: Receiver, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "notify_url": receiver.url,
        "notify_secrets": receiver.secret,
        "notify_schedule": "0.05,0.05,0.05,0.05,0.05",
        "notify_timeout": "2",
        "run_workers": True,
        # Reconcilers are not configured; they skip their passes.
        "reconcile_interval": 3600,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


async def observe(database_url: str, order_number: str, status: str, **fields: Any) -> str:
    """Apply one Printmotor observation through the service, in its own transaction."""
    obs = Observation(order_number=order_number, status=status, **fields)
    async with db_session(database_url) as session:
        outcome = await apply_observation(session, obs, stale_after=timedelta(hours=24))
        await session.commit()
    return outcome
