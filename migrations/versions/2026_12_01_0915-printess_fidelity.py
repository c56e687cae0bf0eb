"""printess fidelity: raw result, vanished jobs, produce outcome unknown

Revision ID: 0006_printess_fidelity
Revises: 0005_feed
Create Date: 2026-12-01 08:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db

revision: str = "0006_printess_fidelity"
down_revision: str | None = "0005_feed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utc() -> app.db.UTCDateTime:
    return app.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("printess_jobs") as batch:
        batch.add_column(sa.Column("result", JSON, nullable=True))
        batch.add_column(
            sa.Column("unknown_answers", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("vanished_at", utc(), nullable=True))
    with op.batch_alter_table("printess_submissions") as batch:
        batch.add_column(sa.Column("outcome_unknown_at", utc(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("printess_submissions") as batch:
        batch.drop_column("outcome_unknown_at")
    with op.batch_alter_table("printess_jobs") as batch:
        batch.drop_column("vanished_at")
        batch.drop_column("unknown_answers")
        batch.drop_column("result")
