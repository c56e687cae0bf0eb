"""`POST /webhooks/printmotor`: the ack path (verify, store, answer) and its applier.

The request does only this: read the body within the size limit and the deadline, check the
HMAC over the raw bytes, check the body is a JSON object naming its order, store the raw
bytes as `pending` and answer `200 {"ok":true,"eventId":<id>}`. The applier then parses the
event and applies it through `service.apply_observation`, the one transition.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.context import AppContext
from app.errors import Unauthorized
from app.inbound.ack import (
    DatabaseUnavailable,
    RequestTimeout,
    Unusable,
    ack_response,
    json_object,
    read_body,
)
from app.inbound.applier import Effect, PendingEvent, Reject
from app.inbound.ingest import Arrival, StoreUnavailable, body_digest
from app.inbound.models import REJECTED
from app.ops.metrics import INBOUND_EVENTS, VENDOR_ACK_SECONDS
from app.printmotor.parsing import order_number_of
from app.printmotor.service import (
    SOURCE,
    InvalidPayload,
    apply_observation,
    lock_orders,
    parse_webhook,
)
from app.printmotor.signature import SIGNATURE_HEADER, WebhookVerifier
from app.printmotor.transition import Observation

log = logging.getLogger("printhook.printmotor.webhook")

SIGNATURE_HEADER_BYTES = SIGNATURE_HEADER.encode()
_OUTCOMES = ("accepted", "duplicate", "rejected", "unauthorized", "timeout", "unavailable")
# Bound once: the webhook path should not look metric children up per request.
_COUNT = {outcome: INBOUND_EVENTS.labels(SOURCE, outcome) for outcome in _OUTCOMES}
_ACK = VENDOR_ACK_SECONDS.labels(SOURCE)
# session.info key: the orders `begin_batch` locked for the applier's batch transaction.
_LOCKED = "printmotor_locked_orders"


def _verifier(app: FastAPI, ctx: AppContext) -> WebhookVerifier:
    verifier: WebhookVerifier | None = getattr(app.state, "printmotor_verifier", None)
    if verifier is None:
        verifier = WebhookVerifier(ctx.settings.printmotor_webhook_secrets)
        app.state.printmotor_verifier = verifier
    return verifier


def arrival_for(body: bytes) -> Arrival:
    """What to store for a verified body: pending with its order number, or rejected."""
    payload = json_object(body)
    digest = body_digest(body)
    try:
        if isinstance(payload, str):
            raise Unusable(payload)
        user_order = payload.get("userOrder")
        if not isinstance(user_order, dict):
            raise Unusable("userOrder is missing or not an object")
        # The subject must be what the applier will call the order: a positive integer.
        subject = order_number_of(user_order.get("orderNumber"))
    except InvalidPayload as exc:
        return Arrival(SOURCE, digest, body, None, state=REJECTED, error=str(exc))
    except Unusable as exc:
        return Arrival(SOURCE, digest, body, None, state=REJECTED, error=exc.detail)
    event_type = payload.get("eventType")
    kind = event_type if isinstance(event_type, str) and event_type.isprintable() else None
    return Arrival(SOURCE, digest, body, subject, kind[:64] if kind else None)


async def printmotor_webhook(scope: Scope, receive: Receive) -> Response:
    """Verify and store one Printmotor webhook; `200 {"ok":true,"eventId":<id>}` once durable."""
    started = time.perf_counter()
    app = scope["app"]
    ctx: AppContext = app.state.ctx
    try:
        body = await read_body(receive, ctx.settings.body_timeout.total_seconds())
    except RequestTimeout:
        _COUNT["timeout"].inc()
        raise
    signatures = [
        value.decode("latin-1")
        for name, value in scope["headers"]
        if name == SIGNATURE_HEADER_BYTES
    ]
    # Exactly one signature: with two, a proxy and printhook could disagree on which counts.
    signature = signatures[0] if len(signatures) == 1 else None
    if not _verifier(app, ctx).verify(body, signature):
        _COUNT["unauthorized"].inc()
        log.info("printmotor.webhook.unauthorized", extra={"body_size": len(body)})
        raise Unauthorized("X-Printmotor-Hmac-SHA256 does not match the body for any key")
    arrival = arrival_for(body)
    try:
        stored = await ctx.inbound.store(arrival)
    except StoreUnavailable as exc:
        _COUNT["unavailable"].inc()
        log.warning("printmotor.webhook.db_unavailable", extra={"error_class": str(exc)})
        raise DatabaseUnavailable("retry later", headers={"Retry-After": "5"}) from None
    if stored.state == REJECTED:
        _COUNT["rejected"].inc()
        log.info(
            "printmotor.webhook.rejected",
            extra={"inbound_event_id": stored.event_id, "reason": arrival.error},
        )
        raise Unusable(
            f"signature valid but the body is unusable: {arrival.error or 'see the stored event'}",
            eventId=stored.event_id,
        )
    if stored.is_duplicate:
        _COUNT["duplicate"].inc()
    else:
        _COUNT["accepted"].inc()
        ctx.notify_arrival()
    _ACK.observe(time.perf_counter() - started)
    return ack_response(stored)


class _WebhookEndpoint:
    """The webhook as a bare ASGI endpoint: it is the hot path, and needs none of FastAPI's
    per-request work (dependency solving, body models, response models). Errors still go
    through the app's problem+json handlers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await printmotor_webhook(scope, receive)
        await response(scope, receive, send)


webhook_route = Route("/webhooks/printmotor", _WebhookEndpoint(), methods=["POST"])


class PrintmotorApplier:
    """Printmotor's part of the applier: parse a stored webhook, apply it to its order."""

    source = SOURCE

    def batch_limit(self, ctx: AppContext) -> int:
        return ctx.settings.apply_batch_size

    async def prepare(self, ctx: AppContext, event: PendingEvent) -> Observation:
        assert event.body is not None
        try:
            return parse_webhook(event.body, tz=ctx.settings.printmotor_timezone)
        except InvalidPayload as exc:
            raise Reject(str(exc)) from None

    async def begin_batch(
        self, ctx: AppContext, session: AsyncSession, prepared: list[Any]
    ) -> None:
        """Lock the batch's orders with one statement instead of one per event."""
        session.info[_LOCKED] = await lock_orders(session, (obs.order_number for obs in prepared))

    async def apply(
        self, ctx: AppContext, session: AsyncSession, event: PendingEvent, prepared: Any
    ) -> Effect:
        outcome = await apply_observation(
            session,
            prepared,
            stale_after=ctx.settings.printmotor_stale_after,
            inbound_event_id=event.id,
            received_at=event.received_at,
            locked=session.info.get(_LOCKED),
        )
        return Effect(outcome == "applied")
