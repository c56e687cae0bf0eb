"""printess render jobs

Revision ID: 0002_printess
Revises: 0001_core
Create Date: 2026-11-23 18:31:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db

revision: str = "0002_printess"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "printess_jobs",
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("printess_order_id", sa.String(length=128), nullable=True),
        sa.Column("template_name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("documents", JSON, nullable=False),
        sa.Column("pictures", JSON, nullable=False),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("meta", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("finalized_by", sa.String(length=16), nullable=True),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=True),
        sa.Column("next_poll_at", utc(), nullable=True),
        sa.Column("poll_attempts", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", utc(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("leased_until", utc(), nullable=True),
        sa.Column("reconcile_abandoned_at", utc(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_printess_jobs")),
        sa.UniqueConstraint(
            "callback_token_hash", name=op.f("uq_printess_jobs_callback_token_hash")
        ),
    )
    op.create_index("ix_printess_jobs_due", "printess_jobs", ["status", "next_poll_at"])
    op.create_index(op.f("ix_printess_jobs_reference"), "printess_jobs", ["reference"])
    op.create_index("ix_printess_jobs_updated", "printess_jobs", ["updated_at", "job_id"])

    op.create_table(
        "printess_submissions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("template_name", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printess_submissions")),
        sa.UniqueConstraint(
            "callback_token_hash", name=op.f("uq_printess_submissions_callback_token_hash")
        ),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_printess_submissions_idempotency_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("printess_submissions")
    op.drop_index("ix_printess_jobs_updated", table_name="printess_jobs")
    op.drop_index(op.f("ix_printess_jobs_reference"), table_name="printess_jobs")
    op.drop_index("ix_printess_jobs_due", table_name="printess_jobs")
    op.drop_table("printess_jobs")
