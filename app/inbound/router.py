"""The operator API over the inbound log: inspect events, replay one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from app.deps import SessionDep, ShopKey
from app.errors import BadRequest, Conflict, NotFound
from app.inbound.applier import Applier, ReplayError
from app.inbound.models import InboundEvent
from app.inbound.schemas import (
    CURSOR_PATTERN,
    InboundEventOut,
    InboundEventPage,
    Source,
    State,
    decode_cursor,
    encode_cursor,
)
from app.openapi import problems
from app.pagination import parse_time, time_query

router = APIRouter(prefix="/v1/inbound-events", tags=["operator"])

EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_LIMIT = 200


@router.get("", response_model=InboundEventPage, response_model_by_alias=True)
async def list_inbound_events(
    _: ShopKey,
    session: SessionDep,
    source: Source | None = None,
    state: State | None = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    received_after: Annotated[
        str | None, time_query("Only events received after this instant")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="`nextCursor` of the previous page (opaque).",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> InboundEventPage:
    """Stored vendor events, oldest first; follow `nextCursor` until it is null."""
    query = select(InboundEvent)
    if source is not None:
        query = query.where(InboundEvent.source == source)
    if state is not None:
        query = query.where(InboundEvent.state == state)
    if subject is not None:
        if "\x00" in subject:
            raise BadRequest("subject must not contain NUL characters")
        query = query.where(InboundEvent.subject_id == subject)
    if received_after is not None:
        since = parse_time(received_after, "received_after")
        query = query.where(InboundEvent.received_at > since)
    if cursor is not None:
        try:
            query = query.where(InboundEvent.id > decode_cursor(cursor))
        except ValueError:
            raise BadRequest("cursor is not valid; use a nextCursor from this API") from None
    rows = list((await session.scalars(query.order_by(InboundEvent.id).limit(limit))).all())
    await session.commit()
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit else None
    return InboundEventPage(
        items=[InboundEventOut.of(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{event_id}",
    response_model=InboundEventOut,
    response_model_by_alias=True,
    responses=problems(404),
)
async def get_inbound_event(
    _: ShopKey,
    session: SessionDep,
    event_id: EventId,
    include: Literal["body"] | None = None,
) -> InboundEventOut:
    """One stored event; `?include=body` adds the raw bytes (base64)."""
    event = await session.get(InboundEvent, event_id)
    await session.commit()
    if event is None:
        raise NotFound("no such inbound event")
    return InboundEventOut.of(event, include_body=include == "body")


@router.post(
    "/{event_id}/replay",
    response_model=InboundEventOut,
    response_model_by_alias=True,
    responses=problems(404, 409, 503),
)
async def replay_inbound_event(_: ShopKey, request: Request, event_id: EventId) -> InboundEventOut:
    """Apply the stored event again through the same transition (after a fix or an outage).

    An event whose effect is already there changes nothing."""
    applier: Applier = request.app.state.applier
    try:
        event = await applier.replay(event_id)
    except ReplayError as exc:
        if str(exc).startswith("no inbound event"):
            raise NotFound(str(exc)) from None
        raise Conflict(str(exc)) from None
    return InboundEventOut.of(event)
