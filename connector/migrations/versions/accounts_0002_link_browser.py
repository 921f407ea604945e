"""accounts: bind a link flow to the browser that opened its disclosure page"""

import sqlalchemy as sa
from alembic import op

revision = "accounts_0002"
down_revision = "accounts_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Which browser (SHA-256 of its link cookie) first opened a disclosure ticket.
    op.create_table(
        "accounts_link_ticket",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    # The browser a pending link belongs to; checked at the OAuth callback.
    op.add_column("accounts_link_state", sa.Column("browser_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts_link_state", "browser_hash")
    op.drop_table("accounts_link_ticket")
