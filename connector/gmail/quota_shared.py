"""Gmail quota shared by every instance through the database: small slices of a bucket.

A bucket is a per-user or per-project limit (units per window). An instance does not ask the
database for every call: it reserves a slice (`slice_units`, or the call's cost if larger) as
a grant row, spends it locally for `slice_seconds`, then reserves again. A grant counts
against its bucket until one window after its last possible use, so what all instances
together spend inside any window stays within the limit, whatever their number.

Interactive requests come before background sync: a BACKGROUND reservation must leave
`reserve_units` of the bucket free, an INTERACTIVE one may use all of it, so a busy sync never
makes a user wait behind it.

Reservations are serialized per bucket by touching the bucket's row first (a row lock on
PostgreSQL, the write lock on SQLite) before summing its live grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connector.clock import Clock
from connector.gmail_facts import REGIME_LIMITS
from connector.settings import Settings

BUCKETS = sa.table(
    "gmail_quota_bucket",
    sa.column("bucket", sa.String),
    sa.column("version", sa.Integer),
)
GRANTS = sa.table(
    "gmail_quota_grant",
    sa.column("id", sa.String),
    sa.column("bucket", sa.String),
    sa.column("holder", sa.String),
    sa.column("units", sa.Integer),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


class Priority(StrEnum):
    INTERACTIVE = "interactive"  # a user is waiting for the answer
    BACKGROUND = "background"  # sync, watch renewal: may wait


_PRIORITY: ContextVar[Priority] = ContextVar("gmail_quota_priority", default=Priority.INTERACTIVE)


def current_priority() -> Priority:
    """The priority of Gmail calls made in this context: INTERACTIVE unless in `background`."""
    return _PRIORITY.get()


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Gmail calls made inside (sync, watch renewal) yield the quota to interactive ones."""
    token = _PRIORITY.set(Priority.BACKGROUND)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


@dataclass(frozen=True, slots=True)
class SharePolicy:
    """One bucket's limit and how instances take slices of it."""

    limit_units: int
    window: timedelta
    slice_units: int
    slice_seconds: timedelta
    reserve_units: int  # left free for interactive requests

    def __post_init__(self) -> None:
        if self.limit_units < 1 or self.slice_units < 1:
            raise ValueError("limit_units and slice_units must be positive")
        if not 0 <= self.reserve_units < self.limit_units:
            raise ValueError("reserve_units must be below limit_units")

    @classmethod
    def of_limit(
        cls, limit_units: int, window: timedelta, *, slices: int, reserve_percent: int
    ) -> SharePolicy:
        """A bucket of `limit_units` per `window` taken in `slices` slices per window, each
        usable for a quarter window, with `reserve_percent` kept for interactive calls."""
        return cls(
            limit_units=limit_units,
            window=window,
            slice_units=max(1, limit_units // slices),
            slice_seconds=window / 4,
            reserve_units=min(limit_units - 1, limit_units * reserve_percent // 100),
        )

    def ceiling(self, priority: Priority) -> int:
        if priority is Priority.BACKGROUND:
            return self.limit_units - self.reserve_units
        return self.limit_units


@dataclass(slots=True)
class _Slice:
    units: int
    usable_until: datetime


@dataclass(slots=True)
class _Local:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    slice: _Slice | None = None


class SharedQuota:
    """Spend units of shared buckets as `holder` (one per instance), on `engine`."""

    def __init__(self, engine: AsyncEngine, holder: str, policy: SharePolicy, clock: Clock) -> None:
        self._engine = engine
        self.holder = holder
        self.policy = policy
        self._clock = clock
        self._postgres = engine.url.get_backend_name() == "postgresql"
        self._local: dict[str, _Local] = {}

    async def take(
        self, bucket: str, units: int, priority: Priority, *, poll: float = 0.05
    ) -> None:
        """Wait until `units` of `bucket` are this instance's to spend now, then spend them."""
        local = self._local.setdefault(bucket, _Local())
        async with local.lock:
            while True:
                now = self._clock()
                current = local.slice
                if current is not None and current.usable_until > now and current.units >= units:
                    current.units -= units
                    return
                size = max(units, self.policy.slice_units)
                won_at = await self.reserve(bucket, size, priority)
                if won_at is None:
                    await asyncio.sleep(poll)
                    continue
                usable_until = won_at + self.policy.slice_seconds
                # The commit may have taken time: a slice whose last use has passed is not
                # spent (its grant would stop counting less than a window after the spend).
                if self._clock() < usable_until:
                    local.slice = _Slice(size - units, usable_until)
                    return

    async def reserve(self, bucket: str, units: int, priority: Priority) -> datetime | None:
        """One grant of `units` for this holder if the bucket's live grants leave room under
        the ceiling of `priority`: the time it was won at; None (nothing written) otherwise."""
        async with self._engine.begin() as conn:
            await self._lock_bucket(conn, bucket)
            # Read the clock only once the lock is held: a reservation that waited behind
            # another is dated from when it could decide, or its grant would expire early.
            now = self._clock()
            expires_at = now + self.policy.slice_seconds + self.policy.window
            await conn.execute(
                sa.delete(GRANTS).where(GRANTS.c.bucket == bucket, GRANTS.c.expires_at <= now)
            )
            live = await conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(GRANTS.c.units), 0)).where(
                    GRANTS.c.bucket == bucket
                )
            )
            # A call costing more than the ceiling still goes when the bucket is empty.
            if int(live or 0) + units > self.policy.ceiling(priority) and live:
                return None
            await conn.execute(
                sa.insert(GRANTS).values(
                    id=uuid.uuid4().hex,
                    bucket=bucket,
                    holder=self.holder,
                    units=units,
                    expires_at=expires_at,
                )
            )
            return now

    async def _lock_bucket(self, conn: AsyncConnection, bucket: str) -> None:
        insert = (postgresql.insert if self._postgres else sqlite.insert)(BUCKETS)
        await conn.execute(
            insert.values(bucket=bucket, version=0).on_conflict_do_nothing(
                index_elements=["bucket"]
            )
        )
        # The write takes the bucket's row lock (PostgreSQL) or the database's write lock
        # (SQLite) until commit: reservations of one bucket run one after the other.
        await conn.execute(
            sa.update(BUCKETS)
            .where(BUCKETS.c.bucket == bucket)
            .values(version=BUCKETS.c.version + 1)
        )

    async def granted(self, bucket: str) -> int:
        """Units of `bucket` granted to all holders and still counted now."""
        async with self._engine.connect() as conn:
            live = await conn.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(GRANTS.c.units), 0)).where(
                    GRANTS.c.bucket == bucket, GRANTS.c.expires_at > self._clock()
                )
            )
        return int(live or 0)


def shared_quotas(
    engine: AsyncEngine, settings: Settings, clock: Clock
) -> list[tuple[SharedQuota, Callable[[str], str]]]:
    """The per-user and per-project buckets of `settings` (for `QuotaBudget.share`), empty
    unless GMAIL_QUOTA_SHARED is on."""
    if not settings.gmail_quota_shared:
        return []
    holder = f"{socket.gethostname()[:64]}:{os.getpid()}"
    slices, reserve = settings.gmail_quota_slices, settings.gmail_quota_interactive_reserve_percent
    limit, window = REGIME_LIMITS[settings.gmail_quota_regime]
    per_user = SharePolicy.of_limit(
        limit, timedelta(seconds=window), slices=slices, reserve_percent=reserve
    )
    per_project = SharePolicy.of_limit(
        settings.gmail_project_units_per_minute,
        timedelta(minutes=1),
        slices=slices * 100,  # one project bucket, many users: small slices
        reserve_percent=reserve,
    )
    return [
        (SharedQuota(engine, holder, per_user, clock), lambda user: f"user:{user}"),
        (SharedQuota(engine, holder, per_project, clock), lambda _user: "project"),
    ]
