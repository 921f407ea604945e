"""inbox: Idempotency-Key records for sends (shared by every service process)"""

import sqlalchemy as sa
from alembic import op

revision = "inbox_0001"
down_revision = None
branch_labels = ("inbox",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_send_key",
        sa.Column("actor_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True, index=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbox_send_key")
