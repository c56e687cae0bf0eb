"""HTTP for Printmotor: the shop's order API (the signed webhook is in `webhook.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query

from app.deps import ContextDep, SessionDep, ShopKey
from app.printmotor import queries
from app.printmotor.placement import place_order, raise_for
from app.printmotor.schemas import OrderOut, OrderPage, OrderRequest

router = APIRouter(tags=["printmotor"])


@router.post(
    "/v1/printmotor/orders",
    status_code=201,
    response_model=OrderOut,
    response_model_by_alias=True,
    summary="Place an order at Printmotor, at most once per Idempotency-Key and meta.reference",
)
async def create_order(
    order: OrderRequest,
    ctx: ContextDep,
    _shop: ShopKey,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> OrderOut:
    placement = await place_order(ctx, order.model_dump(mode="json"), idempotency_key)
    raise_for(placement)
    assert placement.order_number is not None
    async with ctx.session_factory() as session:
        return await queries.get_order(session, placement.order_number)


@router.get(
    "/v1/printmotor/orders/{order_number}",
    response_model=OrderOut,
    response_model_by_alias=True,
)
async def get_order(order_number: str, session: SessionDep, _shop: ShopKey) -> OrderOut:
    return await queries.get_order(session, order_number)


@router.get("/v1/printmotor/orders", response_model=OrderPage, response_model_by_alias=True)
async def list_orders(
    session: SessionDep,
    _shop: ShopKey,
    status: str | None = None,
    reference: str | None = None,
    updated_after: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> OrderPage:
    return await queries.list_orders(
        session,
        status=status,
        reference=reference,
        updated_after=updated_after,
        limit=limit,
        cursor=cursor,
    )
