"""Printmotor print orders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime


class PrintmotorOrder(Base):
    __tablename__ = "printmotor_orders"
    __table_args__ = (
        Index("ix_printmotor_orders_updated", "updated_at", "order_number"),
        Index("ix_printmotor_orders_due", "status", "next_poll_at"),
    )

    order_number: Mapped[str] = mapped_column(String(128), primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(255), index=True)
    # received | in_production | delivered | cancelled | unknown
    status: Mapped[str] = mapped_column(String(32))
    status_rank: Mapped[int] = mapped_column(Integer)
    # Printmotor's own words, stored verbatim.
    processing_status: Mapped[str | None] = mapped_column(String(64))
    processing_status_description: Mapped[str | None] = mapped_column(Text)
    last_event_type: Mapped[str | None] = mapped_column(String(64))
    tracking_code: Mapped[str | None] = mapped_column(String(255))
    tracking_links: Mapped[list[str]] = mapped_column(JSONType, default=list)
    postal_class: Mapped[str | None] = mapped_column(String(64))
    delivery_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    estimated_delivery_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Stale-order read-back bookkeeping
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
