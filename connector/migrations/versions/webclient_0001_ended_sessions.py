"""webclient: signed-out browser sessions, shared by every worker and instance"""

import sqlalchemy as sa
from alembic import op

revision = "webclient_0001"
down_revision = None
branch_labels = ("webclient",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webclient_ended_session",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("webclient_ended_session")
