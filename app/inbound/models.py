"""The raw inbound-event log shared by both vendors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UTCDateTime


class InboundEvent(Base):
    """One vendor request that passed authentication, stored before it is acknowledged.

    `dedupe_key` is unique per source, so a redelivery of the same bytes is a no-op insert.
    `body` is purged by retention; the row itself stays as the audit trail.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_inbound_events_received_at", "received_at"),
        Index("ix_inbound_events_subject", "source", "subject_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the event was about (Printess jobId, Printmotor orderNumber), when known.
    subject_id: Mapped[str | None] = mapped_column(String(128))
    event_type: Mapped[str | None] = mapped_column(String(64))
    # applied | unchanged | rejected | deferred
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
