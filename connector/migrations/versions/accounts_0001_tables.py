"""accounts: linked accounts, link states, sync state"""

import sqlalchemy as sa
from alembic import op

revision = "accounts_0001"
down_revision = None
branch_labels = ("accounts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_account",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner_user_id", sa.String(128), nullable=False, index=True),
        sa.Column("email_hash", sa.String(64), nullable=True, index=True),
        sa.Column("email_sealed", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(64), nullable=True),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("refresh_token_sealed", sa.Text, nullable=False),
        sa.Column("access_token_sealed", sa.Text, nullable=True),
        sa.Column("access_expiry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "accounts_link_state",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True, index=True),
        sa.Column("code_verifier_sealed", sa.Text, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "accounts_sync_state",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("history_id", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts_sync_state")
    op.drop_table("accounts_link_state")
    op.drop_table("accounts_account")
