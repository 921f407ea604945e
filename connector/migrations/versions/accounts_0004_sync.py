"""accounts: durable sync state, the per-account change feed and quarantined history entries"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "accounts_0004"
down_revision = "accounts_0003"
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("accounts_sync_state") as table:
        table.add_column(_utc("watch_expires_at"))
        table.add_column(_utc("last_full_sync_at"))
        table.add_column(
            sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0")
        )
    op.create_table(
        "accounts_change",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("history_id", sa.String(32), nullable=True),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("thread_id", sa.String(32), nullable=True),
        sa.Column("label_ids", sa.JSON, nullable=False),
        sa.Column("message_ids", sa.JSON, nullable=False),
        _utc("created_at", nullable=False),
    )
    op.create_table(
        "accounts_sync_quarantine",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("entry_id", sa.String(32), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        _utc("quarantined_at"),
        _utc("updated_at", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts_sync_quarantine")
    op.drop_table("accounts_change")
    with op.batch_alter_table("accounts_sync_state") as table:
        table.drop_column("consecutive_failures")
        table.drop_column("last_full_sync_at")
        table.drop_column("watch_expires_at")
