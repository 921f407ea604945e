"""accounts: where the OAuth callback sends the browser back to"""

import sqlalchemy as sa
from alembic import op

revision = "accounts_0003"
down_revision = "accounts_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts_link_state", sa.Column("return_url", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("accounts_link_state", "return_url")
