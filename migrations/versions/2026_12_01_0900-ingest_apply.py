"""inbound events become the applier's work queue

Revision ID: 0004_ingest_apply
Revises: 0003_printmotor
Create Date: 2026-12-01 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0004_ingest_apply"
down_revision: str | None = "0003_printmotor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_ONLY = sa.text("state = 'pending'")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("inbound_events") as batch:
        batch.alter_column("outcome", new_column_name="state", existing_type=sa.String(16))
        batch.add_column(sa.Column("auth_context", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", utc(), nullable=True))
        batch.add_column(sa.Column("processed_at", utc(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("leased_until", utc(), nullable=True))
    with op.batch_alter_table("inbound_events") as batch:
        batch.alter_column("attempts", server_default=None, existing_type=sa.Integer())
    # Callbacks left for the reconciler ("deferred") or cut off mid-way ("received") are
    # simply pending now: the applier finishes them.
    op.execute(
        "UPDATE inbound_events SET state = 'pending' WHERE state IN ('deferred', 'received')"
    )
    op.execute("UPDATE inbound_events SET processed_at = received_at WHERE state <> 'pending'")
    op.create_index("ix_inbound_events_state", "inbound_events", ["state", "id"])
    op.create_index(
        "ix_inbound_events_pending",
        "inbound_events",
        ["source", "subject_id", "id"],
        postgresql_where=PENDING_ONLY,
        sqlite_where=PENDING_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_events_pending", table_name="inbound_events")
    op.drop_index("ix_inbound_events_state", table_name="inbound_events")
    op.execute("UPDATE inbound_events SET state = 'deferred' WHERE state = 'pending'")
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("lease_owner")
        batch.drop_column("processed_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
        batch.drop_column("auth_context")
        batch.alter_column("state", new_column_name="outcome", existing_type=sa.String(16))
