"""printmotor print orders and order placements

Revision ID: 0003_printmotor
Revises: 0002_printess
Create Date: 2026-11-23 18:32:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db

revision: str = "0003_printmotor"
down_revision: str | None = "0002_printess"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "printmotor_orders",
        sa.Column("order_number", sa.String(length=128), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_rank", sa.Integer(), nullable=False),
        sa.Column("processing_status", sa.String(length=64), nullable=True),
        sa.Column("processing_status_description", sa.Text(), nullable=True),
        sa.Column("last_event_type", sa.String(length=64), nullable=True),
        sa.Column("tracking_code", sa.String(length=255), nullable=True),
        sa.Column("tracking_links", JSON, nullable=False),
        sa.Column("postal_class", sa.String(length=64), nullable=True),
        sa.Column("delivery_time", utc(), nullable=True),
        sa.Column("estimated_delivery_time", utc(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", utc(), nullable=True),
        sa.Column("poll_attempts", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", utc(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("leased_until", utc(), nullable=True),
        sa.PrimaryKeyConstraint("order_number", name=op.f("pk_printmotor_orders")),
    )
    op.create_index("ix_printmotor_orders_due", "printmotor_orders", ["status", "next_poll_at"])
    op.create_index(op.f("ix_printmotor_orders_reference"), "printmotor_orders", ["reference"])
    op.create_index(
        "ix_printmotor_orders_updated", "printmotor_orders", ["updated_at", "order_number"]
    )

    op.create_table(
        "printmotor_placements",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("order_number", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printmotor_placements")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_printmotor_placements_idempotency_key")
        ),
        sa.UniqueConstraint("reference", name=op.f("uq_printmotor_placements_reference")),
    )


def downgrade() -> None:
    op.drop_table("printmotor_placements")
    op.drop_index("ix_printmotor_orders_updated", table_name="printmotor_orders")
    op.drop_index(op.f("ix_printmotor_orders_reference"), table_name="printmotor_orders")
    op.drop_index("ix_printmotor_orders_due", table_name="printmotor_orders")
    op.drop_table("printmotor_orders")
