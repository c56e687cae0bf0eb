"""The change feed (`events`) and its delivery to the shop (`deliveries`, `notify_state`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, FetchedValue, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONType, UTCDateTime


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject_type", "subject_id", "id"),
        Index("ix_events_feed", "tx_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Feed order is (tx_id, id). On PostgreSQL tx_id is the writing transaction's id, raised to
    # the subject's previous event's tx_id (see app/feed/service.py); on SQLite it is 0 and id
    # order is commit order. The default is dialect-specific, so it lives in the migration.
    tx_id: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # printess_job | printmotor_order
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(128))
    # e.g. printess.job.succeeded, printmotor.order.status_changed
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The inbound event that caused the change, when one did.
    inbound_event_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("inbound_events.id", ondelete="SET NULL")
    )


class Delivery(Base):
    """One event's outbound webhook: pending until delivered or given up (failed)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_deliveries_subject", "subject_type", "subject_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("events.id", ondelete="CASCADE"), unique=True
    )
    # Copied from the event: a subject's deliveries go out one at a time, in event id order.
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(128))
    # pending | delivered | failed
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The receiver's HTTP status of the last attempt (None: no answer) and what went wrong.
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NotifyState(Base):
    """Outbound delivery as a whole (one row, shared by every replica)."""

    __tablename__ = "notify_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Events created before delivery first started are not pushed (the feed has them).
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    # How far through the feed deliveries have been created.
    cursor_tx_id: Mapped[int] = mapped_column(BigInteger)
    cursor_event_id: Mapped[int] = mapped_column(BigInteger)
    # Set when the receiver answered 410 Gone: nothing is sent until re-enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
