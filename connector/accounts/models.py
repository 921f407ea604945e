"""Tables of linked accounts (migrations: `connector/migrations/versions/accounts_*.py`).

Secrets and the Google address are stored sealed by `connector.accounts.vault`
(`<kid>$<ciphertext>`);
the address is also kept as a keyed hash so a second link of the same mailbox by the same user
finds the existing account without decrypting every row. Every table here is keyed by
`account_id`, and unlinking deletes the account's rows from each of them (`ACCOUNT_TABLES`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from connector.db import utc_column


class AccountStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_RELINK = "needs_relink"  # the refresh token died (invalid_grant); link again
    UNLINKED = "unlinked"  # reported in deletion receipts; unlinked rows are deleted


class AccountRow(SQLModel, table=True):
    __tablename__ = "accounts_account"

    id: str = Field(primary_key=True, max_length=64)
    owner_user_id: str = Field(index=True, max_length=128)
    email_hash: str | None = Field(default=None, index=True, max_length=64)
    email_sealed: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    status: str = Field(max_length=16)
    status_reason: str | None = Field(default=None, max_length=64)
    scopes: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    refresh_token_sealed: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    access_token_sealed: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text, nullable=True)
    )
    access_expiry: datetime | None = Field(default=None, sa_column=utc_column(True))
    linked_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())


class LinkStateRow(SQLModel, table=True):
    """A link in progress: created when the user confirms the disclosure, used once."""

    __tablename__ = "accounts_link_state"

    # SHA-256 of the `state` parameter: the row cannot be looked up from a database dump alone.
    state_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=128)
    account_id: str | None = Field(default=None, index=True, max_length=64)  # relink target
    code_verifier_sealed: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    scopes: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    redirect_uri: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    # SHA-256 of the link cookie of the browser that pressed Continue; None: not bound.
    browser_hash: str | None = Field(default=None, max_length=64)
    # The allow-listed platform URL the callback sends the browser back to; None: a plain page.
    return_url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class LinkTicketRow(SQLModel, table=True):
    """The browser that first opened a disclosure ticket: no other browser may use it."""

    __tablename__ = "accounts_link_ticket"

    ticket_hash: str = Field(primary_key=True, max_length=64)
    browser_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=utc_column())


class SyncStateRow(SQLModel, table=True):
    """Cached per-account mail state the connector keeps between calls (the sync cursor)."""

    __tablename__ = "accounts_sync_state"

    account_id: str = Field(primary_key=True, max_length=64)
    history_id: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(sa_column=utc_column())
    watch_expires_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    last_full_sync_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    consecutive_failures: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )


class ChangeRow(SQLModel, table=True):
    """One entry of an account's change feed: Gmail ids only, never content; `seq` orders it."""

    __tablename__ = "accounts_change"

    seq: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    )
    account_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=32)
    history_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=32)
    thread_id: str | None = Field(default=None, max_length=32)
    label_ids: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    message_ids: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))  # resync
    created_at: datetime = Field(sa_column=utc_column())


class QuarantineRow(SQLModel, table=True):
    """A history entry that failed to turn into changes: counted, then quarantined."""

    __tablename__ = "accounts_sync_quarantine"

    account_id: str = Field(primary_key=True, max_length=64)
    entry_id: str = Field(primary_key=True, max_length=32)
    attempts: int
    reason: str = Field(max_length=64)
    quarantined_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    updated_at: datetime = Field(sa_column=utc_column())


# Tables holding per-account data, and their account-id column: what unlink purges.
ACCOUNT_TABLES: tuple[tuple[type[SQLModel], str], ...] = (
    (ChangeRow, "account_id"),
    (QuarantineRow, "account_id"),
    (SyncStateRow, "account_id"),
    (LinkStateRow, "account_id"),
    (AccountRow, "id"),
)
