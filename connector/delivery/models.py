"""Delivery tables (branch `delivery`): a cursor per account and the dead letters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def _utc_column(nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class DeadLetterStatus(StrEnum):
    DEAD = "dead"  # given up on after the horizon (or refused by the policy)
    REDELIVERED = "redelivered"  # delivered later through the API
    REDELIVERING = "redelivering"  # claimed by one redelivery right now (since `redelivered_at`)


class DeliveryCursorRow(SQLModel, table=True):
    """Where an account's delivery stands: every change up to `delivered_seq` is settled
    (delivered or dead-lettered); `head_seq` is being retried."""

    __tablename__ = "delivery_cursor"

    account_id: str = Field(primary_key=True, max_length=64)
    delivered_seq: int = 0
    head_seq: int | None = None
    attempts: int = 0  # attempts of `head_seq` so far
    first_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    last_error: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(sa_column=_utc_column())


class DeadLetterRow(SQLModel, table=True):
    """A change that could not be delivered; its payload (ids only) is kept for redelivery."""

    __tablename__ = "delivery_dead_letter"

    id: str = Field(primary_key=True, max_length=128)  # the event id (webhook-id)
    account_id: str = Field(index=True, max_length=64)
    seq: int
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    attempts: int
    last_error: str = Field(max_length=64)
    status: str = Field(max_length=16)
    dead_at: datetime = Field(sa_column=_utc_column())
    redelivered_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
