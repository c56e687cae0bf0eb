"""The shop API's JSON shapes for the change feed and outbound deliveries (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from app.feed.models import Delivery, Event, NotifyState


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Subject(ApiModel):
    """What an event is about: `printess_job` (id = jobId) or `printmotor_order` (orderNumber)."""

    type: str
    id: str


class EventOut(ApiModel):
    id: int
    type: str
    created_at: datetime
    subject: Subject
    # The subject's full state after the change, exactly as its GET shows it.
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            created_at=event.created_at,
            subject=Subject(type=event.subject_type, id=event.subject_id),
            data=event.data,
        )


class EventPage(ApiModel):
    items: list[EventOut]
    # Ask with `after=<next>` next time; present on every page, also an empty one.
    next: str


class DeliveryOut(ApiModel):
    id: int
    event_id: int
    event_type: str
    subject: Subject
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: Delivery, event_type: str) -> DeliveryOut:
        return cls(
            id=row.id,
            event_id=row.event_id,
            event_type=event_type,
            subject=Subject(type=row.subject_type, id=row.subject_id),
            state=row.state,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


class DeliveryPage(ApiModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class Redelivered(ApiModel):
    redelivered: int


class NotifyStatus(ApiModel):
    """Outbound delivery as a whole. The URL is not shown (it may carry a token)."""

    configured: bool
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    since: datetime | None
    pending: int
    delivered: int
    failed: int
    oldest_pending_at: datetime | None

    @classmethod
    def of(
        cls,
        configured: bool,
        state: NotifyState | None,
        by_state: dict[str, int],
        oldest: datetime | None,
    ) -> NotifyStatus:
        return cls(
            configured=configured,
            disabled=state is not None and state.disabled_at is not None,
            disabled_at=state.disabled_at if state else None,
            disabled_reason=state.disabled_reason if state else None,
            since=state.since if state else None,
            pending=by_state["pending"],
            delivered=by_state["delivered"],
            failed=by_state["failed"],
            oldest_pending_at=oldest,
        )
