"""inbound event log, change feed and rate budgets

Revision ID: 0001_core
Revises:
Create Date: 2026-11-23 18:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("received_at", utc(), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("body_purged_at", utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint(
            "source", "dedupe_key", name=op.f("uq_inbound_events_source_dedupe_key")
        ),
    )
    op.create_index("ix_inbound_events_received_at", "inbound_events", ["received_at"])
    op.create_index("ix_inbound_events_subject", "inbound_events", ["source", "subject_id"])

    op.create_table(
        "events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("inbound_event_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["inbound_event_id"],
            ["inbound_events.id"],
            name=op.f("fk_events_inbound_event_id_inbound_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_subject", "events", ["subject_type", "subject_id", "id"])

    op.create_table(
        "rate_budgets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_slot_at", utc(), nullable=False),
        sa.Column("paused_until", utc(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_budgets")),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
    op.drop_index("ix_events_subject", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_inbound_events_subject", table_name="inbound_events")
    op.drop_index("ix_inbound_events_received_at", table_name="inbound_events")
    op.drop_table("inbound_events")
