"""policy: consents, access requests, usage counters"""

import sqlalchemy as sa
from alembic import op

revision = "policy_0001"
down_revision = None
branch_labels = ("policy",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_consent",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False, index=True),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("grantee_kind", sa.String(32), nullable=False),
        sa.Column("grantee_id", sa.String(128), nullable=False),
        sa.Column("message_ids", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "policy_access_request",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False, index=True),
        sa.Column("requester_id", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("case_reference", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("message_ids", sa.JSON, nullable=False),
        sa.Column("time_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("legal_hold", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "policy_usage",
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("operation", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("policy_usage")
    op.drop_table("policy_access_request")
    op.drop_table("policy_consent")
