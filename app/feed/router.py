"""The shop's change feed, outbound delivery inspection and redelivery (bearer key)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import SessionDep, SettingsDep, ShopKey
from app.errors import BadRequest, Conflict, NotFound
from app.feed import delivery
from app.feed.models import Event
from app.feed.schemas import (
    DeliveryOut,
    DeliveryPage,
    EventOut,
    EventPage,
    NotifyStatus,
    Redelivered,
)
from app.feed.service import CURSOR_PATTERN, START, SUBJECT_TYPES, Position, read_events
from app.openapi import problems
from app.pagination import parse_time, time_query

router = APIRouter(tags=["feed"])

MAX_LIMIT = 1000


def _subject(value: str) -> tuple[str, str]:
    kind, colon, subject_id = value.partition(":")
    if not colon or kind not in SUBJECT_TYPES or not subject_id:
        raise BadRequest(
            "subject must be <type>:<id> with type printess_job or printmotor_order, "
            "e.g. printmotor_order:6912"
        )
    return kind, subject_id


SUBJECT_PATTERN = r"^(printess_job|printmotor_order):[^\u0000-\u001F\u007F]{1,128}$"


@router.get("/v1/events", response_model=EventPage, response_model_by_alias=True)
async def list_events(
    _: ShopKey,
    session: SessionDep,
    after: Annotated[
        str | None,
        Query(
            description="The `next` of the previous page (opaque); omit it to start at the start",
            json_schema_extra={"pattern": CURSOR_PATTERN, "maxLength": 37},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    type: Annotated[
        str | None,
        Query(
            max_length=1000,
            pattern=r"^[^\u0000-\u001F\u007F]*$",
            description="Only these event types (comma-separated)",
        ),
    ] = None,
    subject: Annotated[
        str | None,
        Query(
            description="Only events of one job or order: `printess_job:<jobId>` or "
            "`printmotor_order:<orderNumber>`",
            json_schema_extra={"pattern": SUBJECT_PATTERN, "maxLength": 200},
        ),
    ] = None,
) -> EventPage:
    """Events in commit order after the cursor `after` (from the start without it). Always
    continue with `next`: a consumer that does never misses an event nor sees one twice."""
    try:
        position = Position.decode(after) if after is not None else START
    except ValueError:
        raise BadRequest("after is not a cursor printhook handed out") from None
    types = [part.strip() for part in type.split(",") if part.strip()] if type else None
    events, last = await read_events(
        session,
        after=position,
        limit=limit,
        types=types,
        subject=_subject(subject) if subject is not None else None,
    )
    return EventPage(items=[EventOut.of(event) for event in events], next=last.encode())


def _require_delivery(settings: Settings) -> None:
    if not delivery.delivery_configured(settings):
        raise Conflict("outbound delivery is off: set PRINTHOOK_NOTIFY_URL and _SECRETS")


@router.post(
    "/v1/events/{event_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    response_model_by_alias=True,
    responses=problems(404, 409),
)
async def redeliver_event(
    _: ShopKey,
    session: SessionDep,
    settings: SettingsDep,
    event_id: Annotated[int, Path(ge=1, lt=2**63)],
) -> DeliveryOut:
    """Send one event again, from the first attempt of the schedule."""
    _require_delivery(settings)
    event = await session.get(Event, event_id)
    if event is None:
        raise NotFound(f"no event {event_id}")
    row = await delivery.redeliver_event(session, event)
    await session.commit()
    return DeliveryOut.of(row, event.type)


@router.get("/v1/deliveries", response_model=DeliveryPage, response_model_by_alias=True)
async def list_deliveries(
    _: ShopKey,
    session: SessionDep,
    state: Literal["pending", "delivered", "failed"] | None = None,
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> DeliveryPage:
    """Outbound deliveries in creation order; `state=failed` lists the ones given up."""
    rows = await delivery.list_deliveries(
        session, state=state, after_id=int(cursor) if cursor else None, limit=limit + 1
    )
    items = [DeliveryOut.of(row, event_type) for row, event_type in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return DeliveryPage(items=items, next_cursor=next_cursor)


@router.post(
    "/v1/deliveries/redeliver",
    status_code=202,
    response_model=Redelivered,
    response_model_by_alias=True,
    responses=problems(409),
)
async def redeliver_since(
    _: ShopKey,
    session: SessionDep,
    settings: SettingsDep,
    since: Annotated[str, time_query("Events created at or after this instant")],
) -> Redelivered:
    """Send every event created at or after `since` again (delivered and failed ones too)."""
    _require_delivery(settings)
    count = await delivery.redeliver_since(session, parse_time(since, "since"))
    await session.commit()
    return Redelivered(redelivered=count)


async def notify_status(session: AsyncSession, settings: Settings) -> NotifyStatus:
    by_state, oldest = await delivery.counts(session)
    state = await delivery.get_state(session)
    return NotifyStatus.of(delivery.delivery_configured(settings), state, by_state, oldest)


@router.get("/v1/notify", response_model=NotifyStatus, response_model_by_alias=True)
async def get_notify(_: ShopKey, session: SessionDep, settings: SettingsDep) -> NotifyStatus:
    """Whether outbound delivery is configured and running, and its backlog."""
    return await notify_status(session, settings)


@router.post("/v1/notify/enable", response_model=NotifyStatus, response_model_by_alias=True)
async def enable_notify(_: ShopKey, session: SessionDep, settings: SettingsDep) -> NotifyStatus:
    """Resume delivery after the shop answered 410 Gone (all replicas)."""
    await delivery.enable(session)
    await session.commit()
    return await notify_status(session, settings)
