"""printmotor fidelity: raw timestamps, when the kept tracking was received, the done flag

Revision ID: 0007_printmotor_fidelity
Revises: 0006_printess_fidelity
Create Date: 2026-12-01 08:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0007_printmotor_fidelity"
down_revision: str | None = "0006_printess_fidelity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STRINGS = ("delivery_time_raw", "estimated_delivery_time_raw", "done_processing_status")
TIMES = ("tracking_received_at", "done_at")


def upgrade() -> None:
    # Nullable columns only: SQLite adds them in place, and rows written before stay valid.
    for name in STRINGS:
        op.add_column("printmotor_orders", sa.Column(name, sa.String(length=64), nullable=True))
    for name in TIMES:
        op.add_column(
            "printmotor_orders",
            sa.Column(name, app.db.UTCDateTime(timezone=True), nullable=True),
        )


def downgrade() -> None:
    with op.batch_alter_table("printmotor_orders") as batch:
        for name in (*TIMES, *STRINGS):
            batch.drop_column(name)
