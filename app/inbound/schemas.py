"""The operator API's view of inbound events."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.inbound.models import InboundEvent

State = Literal["pending", "applied", "unchanged", "rejected", "failed"]
Source = Literal["printess", "printmotor"]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class InboundEventOut(ApiModel):
    id: int
    source: str
    type: str | None = Field(description="The vendor's event type, when it names one")
    subject: str | None = Field(description="Printess jobId or Printmotor orderNumber")
    state: State
    error: str | None = Field(description="Why it was rejected or failed (never the body)")
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None = None
    body_size: int
    body_purged_at: datetime | None = None
    body: str | None = Field(
        default=None, description="The raw bytes, base64; only with ?include=body"
    )

    @classmethod
    def of(cls, event: InboundEvent, *, include_body: bool = False) -> InboundEventOut:
        body = None
        if include_body and event.body is not None:
            body = base64.b64encode(event.body).decode("ascii")
        return cls(
            id=event.id,
            source=event.source,
            type=event.event_type,
            subject=event.subject_id,
            state=event.state,
            error=event.error,
            attempts=event.attempts,
            received_at=event.received_at,
            processed_at=event.processed_at,
            next_attempt_at=event.next_attempt_at if event.state == "pending" else None,
            body_size=event.body_size,
            body_purged_at=event.body_purged_at,
            body=body,
        )


class InboundEventPage(ApiModel):
    items: list[InboundEventOut]
    next_cursor: str | None = Field(description="Ask again with ?cursor= for the next page")


# A cursor is the id of the last event of the page: any well-formed one is just a position.
CURSOR_PATTERN = r"^[0-9]{1,18}$"


def encode_cursor(event_id: int) -> str:
    return str(event_id)


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after; ValueError for anything not shaped like one."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise ValueError("not a cursor")
    return int(cursor)
