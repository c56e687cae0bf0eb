"""The raw inbound-event log shared by both vendors: the applier's work queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UTCDateTime

# Where an event is in its life. `pending` is the only state the applier works on.
PENDING = "pending"
APPLIED = "applied"
UNCHANGED = "unchanged"
REJECTED = "rejected"
FAILED = "failed"

_PENDING_ONLY = text("state = 'pending'")


class InboundEvent(Base):
    """One vendor request that passed authentication, stored before it is acknowledged.

    `dedupe_key` is unique per source, so a redelivery of the same bytes is a no-op insert.
    The ack path stores the raw bytes as `pending`; the applier parses and applies them and
    moves the row to applied | unchanged | rejected | failed. `body` is purged by retention;
    the row itself stays as the audit trail.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("source", "dedupe_key"),
        Index("ix_inbound_events_received_at", "received_at"),
        Index("ix_inbound_events_subject", "source", "subject_id"),
        Index("ix_inbound_events_state", "state", "id"),
        # The applier's queue: small however large the log grows.
        Index(
            "ix_inbound_events_pending",
            "source",
            "subject_id",
            "id",
            postgresql_where=_PENDING_ONLY,
            sqlite_where=_PENDING_ONLY,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the event is about (Printess jobId, Printmotor orderNumber); events of one
    # subject are applied in arrival (id) order.
    subject_id: Mapped[str | None] = mapped_column(String(128))
    event_type: Mapped[str | None] = mapped_column(String(64))
    # How the request was authenticated, when the applier needs it (the Printess per-job
    # token's job or submission); never a secret.
    auth_context: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    body_size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
