"""live: leases of per-account background work, shared by every instance"""

import sqlalchemy as sa
from alembic import op

revision = "live_0001"
down_revision = None
branch_labels = ("live",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_lease",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("token", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_live_lease_holder", "live_lease", ["kind", "holder"])


def downgrade() -> None:
    op.drop_index("ix_live_lease_holder", table_name="live_lease")
    op.drop_table("live_lease")
