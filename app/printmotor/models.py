"""Printmotor print orders and the placements printhook made on the shop's behalf."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONType, UTCDateTime


class PrintmotorOrder(Base):
    __tablename__ = "printmotor_orders"
    __table_args__ = (
        Index("ix_printmotor_orders_updated", "updated_at", "order_number"),
        Index("ix_printmotor_orders_due", "status", "next_poll_at"),
    )

    order_number: Mapped[str] = mapped_column(String(128), primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(255), index=True)
    # received | in_production | delivered | cancelled
    status: Mapped[str] = mapped_column(String(32))
    status_rank: Mapped[int] = mapped_column(Integer)
    # Printmotor's own words, stored verbatim.
    processing_status: Mapped[str | None] = mapped_column(String(64))
    processing_status_description: Mapped[str | None] = mapped_column(Text)
    last_event_type: Mapped[str | None] = mapped_column(String(64))
    tracking_code: Mapped[str | None] = mapped_column(String(255))
    tracking_links: Mapped[list[str]] = mapped_column(JSONType, default=list)
    postal_class: Mapped[str | None] = mapped_column(String(64))
    # deliveryTime of the DELIVERED event whose tracking is kept (see transition.tracking_key),
    # read in PRINTHOOK_PRINTMOTOR_TIMEZONE; the *_raw columns keep Printmotor's own strings.
    delivery_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    estimated_delivery_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_time_raw: Mapped[str | None] = mapped_column(String(64))
    estimated_delivery_time_raw: Mapped[str | None] = mapped_column(String(64))
    # When the event whose tracking is kept was received: with equal deliveryTimes the one
    # received later wins, and a replay of an older event does not.
    tracking_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A read-back showed a processingStatus other than RECEIVED / IN_PRODUCTION: Printmotor is
    # done with the order (raw value kept); it is not read back any more.
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_processing_status: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped by every transition write: how many times the order changed.
    version: Mapped[int] = mapped_column(Integer, default=0)

    # Stale-order read-back bookkeeping
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PrintmotorPlacement(Base):
    """One `POST /order` printhook makes (or made) for the shop, claimed before the call.

    The unique `idempotency_key` and `reference` make a second claim for the same order
    impossible, so Printmotor is called at most once per key and per reference.
    state: pending (call in flight) | placed | unknown (the call may or may not have created
    an order; never resent, resolved by a webhook carrying the reference or by an operator).
    """

    __tablename__ = "printmotor_placements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16))
    order_number: Mapped[str | None] = mapped_column(String(128))
    # Why the outcome is unknown (timeout, 5xx status), never vendor credentials.
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
