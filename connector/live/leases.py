"""Leases in the database: which instance owns a piece of per-account background work now.

Several `connector serve` processes on one PostgreSQL (or one SQLite file on one host) share
the work with no coordinator of their own. A lease is a row per (kind, key) naming its holder
and when it expires; it is taken by one conditional UPDATE (free, expired or already ours), or
an INSERT that does nothing on conflict when the row is new, so two instances never both win.
A holder keeps its leases by renewing them (`Heartbeat`) well inside the TTL; when it dies they
expire and another instance takes them over within a TTL. Every takeover adds one to the
lease's fencing token: a writer that remembers the token it took the lease with can detect,
with `current`, that it lost the lease while it was away.

Expiry is judged by the injected clock of the instance asking: hosts must keep their clocks
in step (NTP) to well within the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.selectable import NamedFromClause

from connector.background import cancelled_after
from connector.clock import Clock
from connector.db import aware, first_row, one_statement, without_flush_wait
from connector.live.models import LeaseRow
from connector.live.ports import LocalLocks, Work
from connector.logs import get_logger

log = get_logger(__name__)

_T = sa.table(
    LeaseRow.__tablename__,
    sa.column("kind", sa.String),
    sa.column("key", sa.String),
    sa.column("holder", sa.String),
    sa.column("token", sa.Integer),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


class Kind(StrEnum):
    """What a lease is held for. SYNC and WATCH carry the values of `ports.Work`."""

    SYNC = "sync"  # history.list and the feed commit of one account
    WATCH = "watch"  # users.watch renewal of one account
    DELIVERY = "delivery"  # webhook delivery of one account's feed
    RETENTION = "retention"  # a retention run (one key)


# Taken and let go for every sync run and delivery: built once, run with bind parameters.
_MINE = sa.and_(
    _T.c.kind == sa.bindparam("lease_kind"),
    _T.c.key == sa.bindparam("lease_key"),
)
_TAKE = (
    sa.update(_T)
    .where(_MINE, sa.or_(_T.c.holder == sa.bindparam("me"), _T.c.expires_at <= sa.bindparam("now")))
    .values(
        holder=sa.bindparam("me"),
        expires_at=sa.bindparam("until"),
        token=_T.c.token + sa.case((_T.c.holder == sa.bindparam("me"), 0), else_=1),
    )
)
# Every statement that locks several lease rows locks them in key order on PostgreSQL (a CTE
# that locks the matching rows, ordered, before the UPDATE touches them): two such statements
# of different instances, or of a claim and a heartbeat, then never deadlock; the later waits
# for the earlier, then re-reads each row. Not SKIP LOCKED: a row skipped because its holder
# was renewing it (or another instance was claiming it) was then taken by nobody's claim, and a
# dispatcher run left its change behind until the next full scan, a minute later.
Where = Callable[[NamedFromClause], sa.ColumnElement[bool]]


def _in_key_order(where: Where, postgres: bool) -> sa.ColumnElement[bool]:
    if not postgres:  # one writer at a time: nothing to order
        return where(_T)
    inner = _T.alias("ordered")  # not correlated with the updated row
    locked = (
        sa.select(inner.c.key).where(where(inner)).order_by(inner.c.key).with_for_update()
    ).cte("locked")  # evaluated once (a subquery under IN may be rescanned)
    return sa.and_(where(_T), _T.c.key.in_(sa.select(locked.c.key)))


def _kind(t: NamedFromClause) -> sa.ColumnElement[bool]:
    return t.c.kind == sa.bindparam("lease_kind")


def _batch(t: NamedFromClause) -> sa.ColumnElement[bool]:
    return sa.and_(_kind(t), t.c.key.in_(sa.bindparam("lease_keys", expanding=True)))


def _free(t: NamedFromClause) -> sa.ColumnElement[bool]:
    """Keys of a batch that are free, expired or already this holder's."""
    mine_or_expired = sa.or_(
        t.c.holder == sa.bindparam("me"), t.c.expires_at <= sa.bindparam("now")
    )
    return sa.and_(_batch(t), mine_or_expired)


def _batch_mine(t: NamedFromClause) -> sa.ColumnElement[bool]:
    return sa.and_(_batch(t), t.c.holder == sa.bindparam("me"))


def _all_mine(t: NamedFromClause) -> sa.ColumnElement[bool]:
    return sa.and_(_kind(t), t.c.holder == sa.bindparam("me"))


class _BatchStatements:
    """The statements over several leases at once (a pull's accounts, a dispatcher run's, a
    heartbeat), built once per engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        postgres = engine.url.get_backend_name() == "postgresql"
        self.claim = (
            sa.update(_T)
            .where(_in_key_order(_free, postgres))
            .values(
                holder=sa.bindparam("me"),
                expires_at=sa.bindparam("until"),
                token=_T.c.token + sa.case((_T.c.holder == sa.bindparam("me"), 0), else_=1),
            )
            .returning(_T.c.key)
        )
        until: dict[str, Any] = {"expires_at": sa.bindparam("until")}
        self.renew = (
            sa.update(_T).where(_in_key_order(_batch_mine, postgres)).values(until)
        ).returning(_T.c.key)
        self.renew_all = (
            sa.update(_T).where(_in_key_order(_all_mine, postgres)).values(until)
        ).returning(_T.c.key)
        release = sa.update(_T).where(_in_key_order(_batch_mine, postgres))
        self.release = without_flush_wait(release.values(expires_at=sa.bindparam("now")), engine)


@dataclass(frozen=True, slots=True)
class Lease:
    kind: Kind
    key: str
    holder: str
    token: int
    expires_at: datetime


def holder_id() -> str:
    """A name for this process that no other process, here or on another host, shares."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Leases:
    """Take, renew and release leases as `holder`, on `engine`, judging expiry by `clock`."""

    def __init__(self, engine: AsyncEngine, holder: str, clock: Clock) -> None:
        self._engine = engine
        self._statement = one_statement(engine)  # one round trip a statement on PostgreSQL
        self.holder = holder
        self._clock = clock
        self._postgres = engine.url.get_backend_name() == "postgresql"
        self._batches = _BatchStatements(engine)

    def _mine(self, kind: Kind, key: str) -> dict[str, str]:
        """The parameters naming this holder's lease of `key` in `_TAKE`."""
        return {"lease_kind": kind.value, "lease_key": key, "me": self.holder}

    def _insert(self) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert if self._postgres else sqlite.insert)(_T)

    async def acquire(self, kind: Kind, key: str, ttl: timedelta) -> bool:
        """True when this holder holds the lease for `ttl` from now (taken or renewed)."""
        now = self._clock()
        # Each statement decides on its own (the take is one conditional UPDATE, the first
        # lease of a key one INSERT that does nothing on conflict): no transaction around them.
        async with self._statement() as conn:
            if await self._take(conn, kind, key, now, now + ttl):
                return True
        async with self._statement() as conn:
            inserted = await conn.execute(
                self._insert()
                .values(kind=kind.value, key=key, holder=self.holder, token=1, expires_at=now + ttl)
                .on_conflict_do_nothing(index_elements=["kind", "key"])
            )
            return inserted.rowcount == 1

    async def _take(
        self, conn: AsyncConnection, kind: Kind, key: str, now: datetime, until: datetime
    ) -> bool:
        # One statement: the database serializes concurrent updaters of the row and re-checks
        # the condition for the later one, so at most one of two competing instances wins.
        mine = self._mine(kind, key)
        result = await conn.execute(_TAKE, {**mine, "now": now, "until": until})
        return result.rowcount == 1

    async def renew(self, kind: Kind, key: str, ttl: timedelta) -> bool:
        """Extend a lease this holder still holds; False when another has taken it over."""
        return key in await self.renew_many(kind, [key], ttl)

    async def renew_all(self, kind: Kind, ttl: timedelta) -> set[str]:
        """Extend every lease of `kind` this holder holds; the keys it still holds."""
        params = {"lease_kind": kind.value, "me": self.holder, "until": self._clock() + ttl}
        async with self._statement() as conn:
            return {row.key for row in await conn.execute(self._batches.renew_all, params)}

    async def claim_many(self, kind: Kind, keys: Collection[str], ttl: timedelta) -> set[str]:
        """Take every lease of `keys` that is free, expired or already ours; the keys taken.
        One statement when each key has been leased before (the usual case: a released lease
        keeps its row); a second inserts, already taken, the keys never leased. Two instances
        claiming at once split the keys."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        now = self._clock()
        until = now + ttl
        params = {"lease_kind": kind.value, "lease_keys": wanted, "me": self.holder,
                  "now": now, "until": until}  # fmt: skip
        async with self._statement() as conn:
            taken = {row.key for row in await conn.execute(self._batches.claim, params)}
        missing = [key for key in wanted if key not in taken]
        if missing:  # held elsewhere, or never leased: a new row is ours, a held one is not
            async with self._statement() as conn:
                born = await conn.execute(
                    self._insert()
                    .values([{"kind": kind.value, "key": key, "holder": self.holder,
                              "token": 1, "expires_at": until} for key in missing])
                    .on_conflict_do_nothing(index_elements=["kind", "key"])
                    .returning(_T.c.key)
                )  # fmt: skip
                taken |= {row.key for row in born}
        return taken

    async def renew_many(self, kind: Kind, keys: Collection[str], ttl: timedelta) -> set[str]:
        """Extend the leases of `keys` this holder still holds; the keys it still holds."""
        if not keys:
            return set()
        params = {"lease_kind": kind.value, "lease_keys": sorted(keys), "me": self.holder,
                  "until": self._clock() + ttl}  # fmt: skip
        async with self._statement() as conn:
            return {row.key for row in await conn.execute(self._batches.renew, params)}

    async def release_many(self, kind: Kind, keys: Collection[str]) -> None:
        """`release` of each of `keys` this holder holds, in one statement."""
        if not keys:
            return
        params = {"lease_kind": kind.value, "lease_keys": sorted(keys), "me": self.holder,
                  "now": self._clock()}  # fmt: skip
        async with self._statement() as conn:
            await conn.execute(self._batches.release, params)

    async def release(self, kind: Kind, key: str) -> None:
        """Let the lease go now. The row stays (expired) so its fencing token keeps growing.
        Not flushed before returning: lost at a database crash, the lease just runs out."""
        await self.release_many(kind, [key])

    async def held(self, kind: Kind) -> set[str]:
        """The keys of `kind` this holder holds now (unexpired)."""
        async with self._statement() as conn:
            rows = await conn.execute(
                sa.select(_T.c.key).where(
                    _T.c.kind == kind.value,
                    _T.c.holder == self.holder,
                    _T.c.expires_at > self._clock(),
                )
            )
            return {row.key for row in rows}

    async def current(self, kind: Kind, key: str) -> Lease | None:
        """The lease as it stands (whoever holds it), None when never leased."""
        row = await first_row(
            self._statement, sa.select(_T).where(_T.c.kind == kind.value, _T.c.key == key)
        )
        if row is None:
            return None
        return Lease(kind, row.key, row.holder, row.token, aware(row.expires_at))

    async def fenced(self, kind: Kind, key: str, token: int) -> bool:
        """True while this holder still holds the lease it took with fencing `token`."""
        lease = await self.current(kind, key)
        return (
            lease is not None
            and lease.holder == self.holder
            and lease.token == token
            and lease.expires_at > self._clock()
        )


class Heartbeat:
    """Renews every lease of `kinds` this holder holds, every `interval` (a third of the TTL
    or less, so one missed beat loses nothing). Run it as a task; cancel it to stop."""

    def __init__(
        self, leases: Leases, kinds: Iterable[Kind], ttl: timedelta, interval: timedelta
    ) -> None:
        self._leases = leases
        self._kinds = tuple(kinds)
        self._ttl = ttl
        self._interval = interval

    async def beat(self) -> None:
        for kind in self._kinds:
            await self._leases.renew_all(kind, self._ttl)

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # a database hiccup: the next beat is still inside the TTL
                log.warning("lease heartbeat failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval.total_seconds())

    async def run_after_interval(self) -> None:
        """`run`, from one interval from now (the leases were just taken)."""
        await asyncio.sleep(self._interval.total_seconds())
        await self.run()


class LeaseOwnership:
    """The delivery dispatcher's port: "which of these accounts do I own now?". Takes or
    renews their leases of `kind` in one claim, so an account whose owner died is picked up on
    the next ask; leases are kept between asks (an account stays with its instance)."""

    def __init__(self, leases: Leases, kind: Kind, ttl: timedelta) -> None:
        self._leases = leases
        self._kind = kind
        self._ttl = ttl

    async def __call__(self, account_ids: Sequence[str]) -> set[str]:
        return await self._leases.claim_many(self._kind, account_ids, self._ttl)

    @contextlib.asynccontextmanager
    async def keeping(self) -> AsyncIterator[None]:
        """Renew every lease of the kind this holder holds, every third of the TTL, while the
        block runs (a dispatcher run may outlast one TTL when the machine is loaded)."""
        beat = Heartbeat(self._leases, [self._kind], self._ttl, self._ttl / 3)
        async with cancelled_after(beat.run_after_interval(), f"lease-keep-{self._kind}"):
            yield


class LeaseLocks:
    """`ports.AccountLocks` across instances: the in-process lock first (two tasks of one
    process never contend through the database), then the database lease, renewed while held
    and released on exit."""

    def __init__(self, leases: Leases, ttl: timedelta) -> None:
        self._leases = leases
        self._ttl = ttl
        self._local = LocalLocks()

    @contextlib.asynccontextmanager
    async def hold(self, work: Work, account_id: str) -> AsyncIterator[bool]:
        async with self.hold_many(work, [account_id]) as mine:
            yield account_id in mine

    @contextlib.asynccontextmanager
    async def hold_many(self, work: Work, account_ids: Collection[str]) -> AsyncIterator[set[str]]:
        """`hold` for a batch: the in-process locks, then one claim of the free leases, renewed
        together while held and let go in one statement on exit."""
        kind = Kind(work.value)
        async with self._local.hold_many(work, account_ids) as local:
            mine = await self._leases.claim_many(kind, local, self._ttl)
            if not mine:
                yield mine
                return
            renewer = asyncio.create_task(self._renew_many(kind, frozenset(mine)))
            try:
                yield mine
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                await self._leases.release_many(kind, mine)

    async def _renew_many(self, kind: Kind, keys: frozenset[str]) -> None:
        while True:
            await asyncio.sleep(self._ttl.total_seconds() / 3)
            if len(await self._leases.renew_many(kind, keys, self._ttl)) < len(keys):
                log.warning("lease lost while held", kind=kind.value)
