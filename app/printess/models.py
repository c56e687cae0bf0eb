"""Printess render jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONType, UTCDateTime

FINAL_STATUSES = frozenset({"succeeded", "failed"})


class PrintessJob(Base):
    __tablename__ = "printess_jobs"
    __table_args__ = (
        Index("ix_printess_jobs_updated", "updated_at", "job_id"),
        Index("ix_printess_jobs_due", "status", "next_poll_at"),
    )

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(255), index=True)
    printess_order_id: Mapped[str | None] = mapped_column(String(128))
    template_name: Mapped[str | None] = mapped_column(String(255))
    # pending | succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    documents: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    pictures: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error_text: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[str | None] = mapped_column(Text)
    # The raw `result` object of the callback or status/get answer that finalised the job.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # callback | reconcile | replay
    finalized_by: Mapped[str | None] = mapped_column(String(16))
    # sha256 of the per-job callback token; the token itself is never stored.
    callback_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    # Reconciler bookkeeping
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the job passed PRINTHOOK_RECONCILE_MAX_AGE without a final status.
    reconcile_abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Consecutive status/get answers saying Printess does not know the job.
    unknown_answers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set after PRINTHOOK_PRINTESS_VANISHED_AFTER such answers; the job is no longer polled.
    vanished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class PrintessSubmission(Base):
    """A produce request printhook makes on the shop's behalf.

    The row is inserted (claiming `idempotency_key` atomically) before produce is called, so a
    concurrent repeat sees the claim and never calls produce a second time. It also holds the
    callback token hash, so a callback that races the produce response is still recognised.
    """

    __tablename__ = "printess_submissions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # NULL when the shop sent no Idempotency-Key, or after a failed produce freed the key.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # sha256 of the canonical JSON request, to refuse a key reused with another body.
    request_hash: Mapped[str] = mapped_column(String(64))
    callback_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str | None] = mapped_column(String(255))
    template_name: Mapped[str | None] = mapped_column(String(255))
    # in_flight (no jobId known yet) | done | failed (Printess certainly has no job)
    state: Mapped[str] = mapped_column(String(16))
    # Produce's answer was lost (timeout, 5xx, reset after send): Printess may have the job.
    # The submission stays in_flight; the callback for its token settles it.
    outcome_unknown_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    job_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
