"""HTTP for Printmotor: the shop's order API (the signed webhook is in `webhook.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query

from app.deps import ContextDep, SessionDep, ShopKey
from app.hygiene import IDENTIFIER_PATTERN, path_segment
from app.openapi import problems
from app.pagination import PageQuery, check_status, page_query, status_filter
from app.printmotor import queries
from app.printmotor.placement import place_order, raise_for
from app.printmotor.schemas import OrderOut, OrderPage, OrderRequest
from app.printmotor.transition import STATUSES

router = APIRouter(tags=["printmotor"])


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
