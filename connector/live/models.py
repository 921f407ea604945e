"""Live tables (branch `live`): one lease per (kind, key), shared by every instance."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class LeaseRow(SQLModel, table=True):
    """Who holds a piece of background work until when. `token` (the fencing token) grows by
    one each time the lease passes to another holder, so a stale holder's late write can be
    told apart from the current holder's; a released lease keeps its row (expired) for that."""

    __tablename__ = "live_lease"

    kind: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    holder: str = Field(max_length=128)
    token: int = 1
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
