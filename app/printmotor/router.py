"""HTTP for Printmotor: the signed webhook (a hot path) and the shop's order API."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.context import AppContext
from app.deps import ContextDep, SessionDep, ShopKey
from app.errors import BadRequest, ServiceUnavailable, Unauthorized
from app.hygiene import IDENTIFIER_PATTERN, path_segment
from app.openapi import problems
from app.ops.metrics import INBOUND_EVENTS, VENDOR_ACK_SECONDS
from app.pagination import PageQuery, check_status, page_query, status_filter
from app.printmotor import queries
from app.printmotor.fastpath import WebhookPool, handle_webhook_postgres
from app.printmotor.placement import place_order, raise_for
from app.printmotor.schemas import OrderOut, OrderPage, OrderRequest
from app.printmotor.service import SOURCE, handle_webhook
from app.printmotor.signature import SIGNATURE_HEADER, WebhookVerifier
from app.printmotor.transition import STATUSES

log = logging.getLogger("printhook.printmotor")

router = APIRouter(tags=["printmotor"])

OK = b'{"ok":true}'
SIGNATURE_HEADER_BYTES = SIGNATURE_HEADER.encode()
_OUTCOMES = ("applied", "unchanged", "duplicate", "rejected", "unauthorized")
# Bound once: the webhook path should not look metric children up per request.
_COUNT = {outcome: INBOUND_EVENTS.labels(SOURCE, outcome) for outcome in _OUTCOMES}
_ACK = VENDOR_ACK_SECONDS.labels(SOURCE)


class DatabaseUnavailable(ServiceUnavailable):
    slug, title = "database-unavailable", "Database unavailable"


def _verifier(app: FastAPI, ctx: AppContext) -> WebhookVerifier:
    verifier: WebhookVerifier | None = getattr(app.state, "printmotor_verifier", None)
    if verifier is None:
        verifier = WebhookVerifier(ctx.settings.printmotor_webhook_secrets)
        app.state.printmotor_verifier = verifier
    return verifier


def _webhook_pool(app: FastAPI, ctx: AppContext) -> WebhookPool:
    pool: WebhookPool | None = getattr(app.state, "printmotor_webhook_pool", None)
    if pool is None:
        pool = WebhookPool(ctx.settings)
        app.state.printmotor_webhook_pool = pool
    return pool


async def close_webhook_pool(app: FastAPI) -> None:
    """Close the hot path's connections (called from the app's lifespan on shutdown)."""
    pool: WebhookPool | None = getattr(app.state, "printmotor_webhook_pool", None)
    if pool is not None:
        await pool.aclose()


async def printmotor_webhook(scope: Scope, receive: Receive) -> Response:
    """Verify, record and apply one Printmotor webhook; `200 {"ok":true}` once durable."""
    started = time.perf_counter()
    app = scope["app"]
    ctx: AppContext = app.state.ctx
    chunks = []
    while True:  # through BodyLimitMiddleware's receive: 413 past the limit
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    signature = None
    for name, value in scope["headers"]:
        if name == SIGNATURE_HEADER_BYTES:
            signature = value.decode("latin-1")
            break
    if not _verifier(app, ctx).verify(body, signature):
        _COUNT["unauthorized"].inc()
        log.info("printmotor.webhook.unauthorized", extra={"body_size": len(body)})
        raise Unauthorized("X-Printmotor-Hmac-SHA256 does not match the body for any key")
    stale_after = ctx.settings.printmotor_stale_after
    if ctx.engine.dialect.name == "postgresql":
        try:
            outcome, error = await handle_webhook_postgres(
                _webhook_pool(app, ctx), body, stale_after=stale_after
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Straight from the driver, so not caught as a database outage by app.errors.
            # Not acknowledged either way: Printmotor delivers it again.
            log.error("printmotor.webhook.db_failed", extra={"error_class": type(exc).__name__})
            raise DatabaseUnavailable("retry later", headers={"Retry-After": "5"}) from exc
    else:
        async with ctx.session_factory() as session:
            outcome, error = await handle_webhook(session, body, stale_after=stale_after)
            if outcome != "duplicate":
                await session.commit()
    _COUNT[outcome].inc()
    if outcome == "rejected":
        log.info("printmotor.webhook.rejected", extra={"error": error})
        raise BadRequest(f"signature valid but the body is unusable: {error}")
    _ACK.observe(time.perf_counter() - started)
    return Response(OK, media_type="application/json")


class _WebhookEndpoint:
    """The webhook as a bare ASGI endpoint: it is the hot path, and needs none of FastAPI's
    per-request work (dependency solving, body models, response models). Errors still go
    through the app's problem+json handlers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await printmotor_webhook(scope, receive)
        await response(scope, receive, send)


webhook_route = Route("/webhooks/printmotor", _WebhookEndpoint(), methods=["POST"])
# Registered with the router too (405 for other methods, the same app without the fast lane).
router.routes.append(webhook_route)


OrderNumber = Annotated[str, Path(alias="orderNumber", **path_segment(128))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=IDENTIFIER_PATTERN,
        description="Repeats with the same key answer the first placement.",
    ),
]


@router.post(
    "/v1/printmotor/orders",
    status_code=201,
    response_model=OrderOut,
    response_model_by_alias=True,
    operation_id="placePrintmotorOrder",
    summary="Place an order at Printmotor, at most once per Idempotency-Key and meta.reference",
    responses={
        201: {
            "links": {
                "GetOrder": {
                    "operationId": "getPrintmotorOrder",
                    "parameters": {"orderNumber": "$response.body#/orderNumber"},
                }
            }
        },
        **problems(409, 502, 503),
    },
)
async def create_order(
    order: OrderRequest,
    ctx: ContextDep,
    _shop: ShopKey,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    placement = await place_order(ctx, order.model_dump(mode="json"), idempotency_key)
    raise_for(placement)
    assert placement.order_number is not None
    async with ctx.session_factory() as session:
        return await queries.get_order(session, placement.order_number)


@router.get(
    "/v1/printmotor/orders/{orderNumber}",
    response_model=OrderOut,
    response_model_by_alias=True,
    operation_id="getPrintmotorOrder",
    responses=problems(404, 503),
)
async def get_order(order_number: OrderNumber, session: SessionDep, _shop: ShopKey) -> OrderOut:
    return await queries.get_order(session, order_number)


@router.get(
    "/v1/printmotor/orders",
    response_model=OrderPage,
    response_model_by_alias=True,
    operation_id="listPrintmotorOrders",
    responses=problems(503),
)
async def list_orders(
    session: SessionDep,
    _shop: ShopKey,
    page: Annotated[PageQuery, Depends(page_query)],
    status: Annotated[str | None, status_filter(STATUSES, "Only orders in this status.")] = None,
    reference: Annotated[
        str | None, Query(min_length=1, max_length=255, pattern=IDENTIFIER_PATTERN)
    ] = None,
) -> OrderPage:
    """Orders by (updatedAt, orderNumber); follow `nextCursor` until it is null."""
    return await queries.list_orders(
        session,
        status=check_status(status, STATUSES),
        reference=reference,
        updated_after=page.updated_after,
        limit=page.limit,
        after=page.after,
    )
