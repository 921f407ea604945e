"""live: Gmail quota buckets and the slices (grants) instances reserve from them"""

import sqlalchemy as sa
from alembic import op

revision = "live_0002"
down_revision = "live_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gmail_quota_bucket",
        sa.Column("bucket", sa.String(160), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "gmail_quota_grant",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("bucket", sa.String(160), nullable=False, index=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gmail_quota_grant")
    op.drop_table("gmail_quota_bucket")
