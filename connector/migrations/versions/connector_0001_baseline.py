"""connector 0.1.0 baseline: every table of the connector database.

Before 0.1.0 each package kept its own alembic branch (accounts, delivery, inbox, live, policy,
webclient: ten revisions, six heads). They were folded into this one revision before the first
release; `connector.db` re-stamps a database those development builds brought to their heads
(LEGACY_HEADS), whose schema is exactly this one. Later changes are revisions on top of it:
one line of history, one head.
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "connector_0001"
down_revision = None


def _utc(name: str, *, nullable: bool = True, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def _accounts() -> None:
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
        _utc("access_expiry"),
        _utc("linked_at", nullable=False),
        _utc("updated_at", nullable=False),
    )
    op.create_table(
        "accounts_link_state",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True, index=True),
        sa.Column("code_verifier_sealed", sa.Text, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        _utc("created_at", nullable=False),
        _utc("expires_at", nullable=False, index=True),
        # The browser a pending link belongs to (SHA-256 of its link cookie); checked at the
        # OAuth callback.
        sa.Column("browser_hash", sa.String(64), nullable=True),
        # Where the OAuth callback sends the browser back to.
        sa.Column("return_url", sa.Text, nullable=True),
    )
    # Which browser first opened a disclosure ticket.
    op.create_table(
        "accounts_link_ticket",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        _utc("expires_at", nullable=False, index=True),
    )
    op.create_table(
        "accounts_sync_state",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("history_id", sa.String(32), nullable=True),
        _utc("updated_at", nullable=False),
        _utc("watch_expires_at"),
        _utc("last_full_sync_at"),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    )
    # The ordered per-account change feed: ids only, never content.
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


def _delivery() -> None:
    op.create_table(
        "delivery_cursor",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("delivered_seq", sa.Integer, nullable=False),
        sa.Column("head_seq", sa.Integer, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        _utc("first_attempt_at"),
        _utc("next_attempt_at"),
        sa.Column("last_error", sa.String(64), nullable=True),
        _utc("updated_at", nullable=False),
    )
    op.create_table(
        "delivery_dead_letter",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _utc("dead_at", nullable=False),
        _utc("redelivered_at"),
    )


def _inbox() -> None:
    # Idempotency-Key records for sends, shared by every service process.
    op.create_table(
        "inbox_send_key",
        sa.Column("actor_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True, index=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        _utc("created_at", nullable=False),
    )


def _live() -> None:
    # Leases of per-account background work, shared by every instance.
    op.create_table(
        "live_lease",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("token", sa.Integer, nullable=False),
        _utc("expires_at", nullable=False),
    )
    op.create_index("ix_live_lease_holder", "live_lease", ["kind", "holder"])
    # Gmail quota buckets and the slices (grants) instances reserve from them.
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
        _utc("expires_at", nullable=False),
    )


def _policy() -> None:
    op.create_table(
        "policy_consent",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False, index=True),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("grantee_kind", sa.String(32), nullable=False),
        sa.Column("grantee_id", sa.String(128), nullable=False),
        sa.Column("message_ids", sa.JSON, nullable=False),
        _utc("created_at", nullable=False),
        _utc("expires_at", nullable=False),
        _utc("revoked_at"),
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
        _utc("time_from"),
        _utc("time_to"),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("legal_hold", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _utc("created_at", nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        _utc("decided_at"),
        _utc("expires_at"),
    )
    op.create_table(
        "policy_usage",
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("operation", sa.String(32), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
    )


def _webclient() -> None:
    # Signed-out browser sessions, shared by every worker and instance.
    op.create_table(
        "webclient_ended_session",
        sa.Column("sid", sa.String(64), primary_key=True),
        _utc("expires_at", nullable=False, index=True),
    )


PACKAGES = (_accounts, _delivery, _inbox, _live, _policy, _webclient)


def upgrade() -> None:
    for create in PACKAGES:
        create()


def downgrade() -> None:
    # By name, never by inspection: the database may hold tables that are not ours.
    op.drop_index("ix_live_lease_holder", table_name="live_lease")
    for table in TABLES:
        op.drop_table(table)


TABLES = (
    "webclient_ended_session",
    "policy_usage",
    "policy_access_request",
    "policy_consent",
    "gmail_quota_grant",
    "gmail_quota_bucket",
    "live_lease",
    "inbox_send_key",
    "delivery_dead_letter",
    "delivery_cursor",
    "accounts_sync_quarantine",
    "accounts_change",
    "accounts_sync_state",
    "accounts_link_ticket",
    "accounts_link_state",
    "accounts_account",
)
