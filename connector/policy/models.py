"""Tables of the policy layer. Free text (case references, reasons) stays here, never in audit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from connector.db import utc_column


class _AccountRecord(SQLModel):
    """A consent or an access request: its own id, and the account whose mail it opens."""

    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(index=True, max_length=128)


class ConsentRow(_AccountRecord, table=True):
    __tablename__ = "policy_consent"

    granted_by: str = Field(max_length=128)
    grantee_kind: str = Field(max_length=32)
    grantee_id: str = Field(max_length=128)
    message_ids: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(True))


class AccessRequestRow(_AccountRecord, table=True):
    __tablename__ = "policy_access_request"

    requester_id: str = Field(max_length=128)
    purpose: str = Field(max_length=32)
    case_reference: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    message_ids: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    time_from: datetime | None = Field(default=None, sa_column=utc_column(True))
    time_to: datetime | None = Field(default=None, sa_column=utc_column(True))
    duration_seconds: int
    legal_hold: bool = False
    status: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=utc_column())
    decided_by: str | None = Field(default=None, max_length=128)
    decided_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    expires_at: datetime | None = Field(default=None, sa_column=utc_column(True))


class UsageRow(SQLModel, table=True):
    """Per account, day and operation: how many accesses and how many failed. No content."""

    __tablename__ = "policy_usage"

    account_id: str = Field(primary_key=True, max_length=128)
    day: date = Field(primary_key=True)
    operation: str = Field(primary_key=True, max_length=32)
    count: int = 0
    error_count: int = 0


def table(model: type[SQLModel]) -> sa.Table:
    """The SQLAlchemy table behind a SQLModel class (typed for mypy)."""
    value: Any = model.__table__  # type: ignore[attr-defined]
    assert isinstance(value, sa.Table)
    return value
