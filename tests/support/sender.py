"""A load sender that behaves like the vendors: same bytes again until a 2xx comes back.

Every loop is bounded in attempts and time, and only talks to the loopback servers it is given.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from app.simulator.printmotor import signed_headers, webhook_body
from tests.support.serve import CALLBACK_SECRET, SHOP_AUTH, WEBHOOK_SECRET

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One logical request; a retry sends exactly the same method, path, bytes and headers."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def printmotor_webhook(order_number: int, event_type: str, **fields: str) -> Request:
    body = webhook_body(order_number, event_type, **fields)  # type: ignore[arg-type]
    return Request("POST", "/webhooks/printmotor", body, signed_headers(body, WEBHOOK_SECRET))


def printess_callback(job_id: str) -> Request:
    body = json.dumps(
        {"jobId": job_id, "isFinalStatus": True, "isFailure": False, "result": {"r": {}}}
    ).encode()
    return Request(
        "POST",
        f"/callbacks/printess/{CALLBACK_SECRET}",
        body,
        {"Content-Type": "application/json"},
    )


def track_job(job_id: str) -> Request:
    return Request("PUT", f"/v1/printess/jobs/{job_id}", b"", SHOP_AUTH)


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    status: int | None  # None: no answer (connection refused or dropped)


@dataclass
class LoadStats:
    """What the sender saw; the figures published in docs/RELIABILITY.md."""

    attempts: list[Attempt] = field(default_factory=list)
    # eventId of every acknowledged vendor request, by request body.
    acked_events: dict[bytes, int] = field(default_factory=dict)
    acknowledged: int = 0
    gave_up: int = 0

    @property
    def sent(self) -> int:
        return len(self.attempts)

    @property
    def answers_2xx(self) -> int:
        return sum(1 for a in self.attempts if a.status is not None and 200 <= a.status < 300)

    def statuses(self) -> Counter[str]:
        return Counter("no answer" if a.status is None else str(a.status) for a in self.attempts)


class Sender:
    """Delivers requests to one or more base URLs (round robin per attempt, like a load
    balancer), retrying each until it is answered 2xx, within `max_attempts` and `deadline`
    (a `time.monotonic()` value)."""

    def __init__(
        self,
        base_urls: Iterable[str],
        *,
        deadline: float,
        max_attempts: int = 500,
        concurrency: int = 64,
        timeout: float = 5.0,
    ) -> None:
        self._urls = itertools.cycle(list(base_urls))
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.stats = LoadStats()
        self.client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def deliver(self, request: Request) -> httpx.Response:
        """Send until 2xx; the final answer. Fails the test if it never gets one in time."""
        delay = 0.02
        for _ in range(self.max_attempts):
            started = time.monotonic()
            url = next(self._urls) + request.path
            try:
                answer = await self.client.request(
                    request.method, url, content=request.body, headers=request.headers
                )
            except httpx.TransportError:
                self.stats.attempts.append(Attempt(started, time.monotonic(), None))
            else:
                self.stats.attempts.append(Attempt(started, time.monotonic(), answer.status_code))
                if 200 <= answer.status_code < 300:
                    self.stats.acknowledged += 1
                    if request.method == "POST":
                        self.stats.acked_events[request.body] = answer.json()["eventId"]
                    return answer
            if time.monotonic() > self.deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        self.stats.gave_up += 1
        raise AssertionError(f"{request.method} {request.path} never acknowledged")


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[object]], concurrency: int
) -> None:
    """Run `work` on every item with at most `concurrency` in flight; first error wins."""
    queue = list(items)
    queue.reverse()

    async def worker() -> None:
        while queue:
            await work(queue.pop())

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
