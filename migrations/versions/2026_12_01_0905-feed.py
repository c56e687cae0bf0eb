"""change feed order (events.tx_id), outbound deliveries and the notifier's state

Revision ID: 0005_feed
Revises: 0004_ingest_apply
Create Date: 2026-12-01 08:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0005_feed"
down_revision: str | None = "0004_ingest_apply"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The writing transaction's id (xid8 as bigint). app/feed/service.py sets it explicitly; the
# default covers any other writer. SQLite has one writer at a time, so id order is commit order.
PG_TX_ID = sa.text("(pg_current_xact_id()::text)::bigint")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    is_postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "events",
        sa.Column(
            "tx_id",
            sa.BigInteger(),
            nullable=False,
            server_default=PG_TX_ID if is_postgres else sa.text("0"),
        ),
    )
    op.create_index("ix_events_feed", "events", ["tx_id", "id"])

    op.create_table(
        "deliveries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=True),
        sa.Column("last_attempt_at", utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("delivered_at", utc(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("leased_until", utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("event_id", name=op.f("uq_deliveries_event_id")),
    )
    op.create_index(
        "ix_deliveries_state_next_attempt_at", "deliveries", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_deliveries_subject", "deliveries", ["subject_type", "subject_id", "event_id"]
    )

    op.create_table(
        "notify_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("since", utc(), nullable=False),
        sa.Column("cursor_tx_id", sa.BigInteger(), nullable=False),
        sa.Column("cursor_event_id", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at", utc(), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_state")),
    )


def downgrade() -> None:
    op.drop_table("notify_state")
    op.drop_index("ix_deliveries_subject", table_name="deliveries")
    op.drop_index("ix_deliveries_state_next_attempt_at", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_events_feed", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("tx_id")
