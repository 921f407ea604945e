"""Signed-out sessions, shared by every worker and instance through the connector database.

A session cookie is a signed token any worker accepts until it expires, so signing out must be
known everywhere: the id is written to `webclient_ended_session` (until the session would have
expired) and every process keeps the set in memory, refreshed every `refresh_seconds`, so a
request is checked without a database round trip. The worker that signs the session out knows at
once; the others within one refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.clock import Clock, system_clock
from connector.db import aware

REFRESH_SECONDS = 2.0
_TABLE = sa.table(
    "webclient_ended_session",
    sa.column("sid", sa.String),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


class EndedSessions:
    def __init__(self, engine: AsyncEngine | None = None, *, clock: Clock = system_clock) -> None:
        self._engine = engine  # None: this process only (tests that build pages alone)
        self._clock = clock
        self._ended: dict[str, int] = {}  # sid -> expiry (epoch seconds)

    def __contains__(self, sid: object) -> bool:
        return sid in self._ended

    def bind(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, sid: str, expires: int) -> None:
        self._ended[sid] = expires
        if self._engine is None:
            return
        row = {"sid": sid, "expires_at": datetime.fromtimestamp(expires, tz=UTC)}
        # One statement: two workers signing one session out at once both succeed (a lookup
        # then an insert let both look, then one fail on the primary key).
        postgres = self._engine.url.get_backend_name() == "postgresql"
        insert = (postgresql.insert if postgres else sqlite.insert)(_TABLE).values(**row)
        async with self._engine.begin() as conn:
            await conn.execute(insert.on_conflict_do_nothing(index_elements=["sid"]))

    async def refresh(self) -> None:
        """Reload the set from the database; drop what has expired (there and here)."""
        if self._engine is None:
            return
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(_TABLE).where(_TABLE.c.expires_at <= now))
            rows = (await conn.execute(sa.select(_TABLE.c.sid, _TABLE.c.expires_at))).all()
        self._ended = {sid: int(aware(at).timestamp()) for sid, at in rows}
