"""PostgreSQL store (asyncpg): advisory-locked appends on a dedicated connection, one prepared
multi-row INSERT per batch, a writer-only role.

Chain head serialisation: every append transaction first takes `pg_advisory_xact_lock(CHAIN_LOCK)`
and only then reads the head, in a new statement (READ COMMITTED gives each statement a fresh
snapshot, and the previous holder's commit is visible before its lock is released). So any number
of processes produce one chain without forks or gaps.

Privileges: a store has exactly its login's rights. Migrations run as the owner (an
administrator's URL, `audit migrate` or `open_audit_log(admin_url=...)`); the service logs in as
`audit_writer`, which holds SELECT and INSERT only, and checks that before writing
(`privilege_problems`, `audit.pg_roles`). There is no `SET ROLE`: `RESET ROLE` would undo it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import asyncpg  # type: ignore[import-untyped]

from audit import store
from audit.chain import Linked, Pending, link, row_of
from audit.encoding import format_time
from audit.errors import MigrationRefusedError, NotAnAuditLogError, SchemaVersionError
from audit.hashing import GENESIS_HASH
from audit.pg_roles import privilege_problems
from audit.records import Checkpoint, Row, RowQuery
from audit.schema import LATEST_VERSION, MARKER_KEY, MARKER_VALUE, POSTGRES_MIGRATIONS

CHAIN_LOCK = 0x61756469745F636E  # "audit_cn": serialises appends to this database's chain
MIGRATION_LOCK = 0x61756469745F6D67  # "audit_mg"
_HEAD = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
_INSERT_CHECKPOINT = "INSERT INTO audit_checkpoints VALUES ($1, $2, $3, $4, $5)"


_BEGIN_LOCKED = f"BEGIN; SELECT pg_advisory_xact_lock({CHAIN_LOCK})"

# A batch's rows go as one multi-row VALUES of plain parameters, padded with NULL rows up to a
# power of two (dropped by the WHERE): so at most a dozen statements are ever prepared per
# connection, each once. Arrays through unnest() cost ~5 us more per event here: asyncpg checks
# every array element against collections.abc (a Python-level isinstance) while encoding.
# The statement takes the chain lock itself (a row of the INSERT needs the CTE's row, so the
# lock is held before any is inserted, until the commit), which makes it one autocommit
# round trip on the fast path; inside the locked path's transaction the session already holds
# the lock and taking it again returns at once. Needs only INSERT rights, like COPY.
_ROWS_PER_INSERT = 2048  # asyncpg allows 32767 parameters a statement; 10 per row
_TYPES = ("bigint", "text", "text", "text", "text", "text", "text", "text", "bytea", "bytea")
_NULL_ROW = (None,) * len(_TYPES)


@lru_cache(maxsize=16)
def _insert_rows(rows: int) -> str:
    """The INSERT for `rows` (a power of two) parameter rows."""
    values = ", ".join(
        "(" + ", ".join(f"${r * 10 + i}::{t}" for i, t in enumerate(_TYPES, 1)) + ")"
        for r in range(rows)
    )
    return (
        f"WITH chain_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({CHAIN_LOCK}))"  # noqa: S608
        f" INSERT INTO audit_events ({', '.join(store.ROW_COLUMNS)}) SELECT batch.*"
        f" FROM chain_lock, (VALUES {values}) AS batch WHERE batch.column1 IS NOT NULL"
    )


def _inserts(linked: Sequence[Linked]) -> Iterator[tuple[str, list[object]]]:
    """The statements (and their parameters) that insert `linked`, in seq order."""
    for start in range(0, len(linked), _ROWS_PER_INSERT):
        chunk = linked[start : start + _ROWS_PER_INSERT]
        rows = 1 << (len(chunk) - 1).bit_length()
        params: list[object] = [value for item in chunk for value in row_of(item)]
        params += _NULL_ROW * (rows - len(chunk))
        yield _insert_rows(rows), params


async def _head(conn: asyncpg.Connection) -> tuple[int, bytes]:
    row = await conn.fetchrow(_HEAD)
    return (0, GENESIS_HASH) if row is None else (int(row[0]), bytes(row[1]))


async def _insert_checkpoint(conn: asyncpg.Connection, cp: Checkpoint) -> None:
    await conn.execute(_INSERT_CHECKPOINT, cp.seq, cp.head_hash, cp.time, cp.key_id, cp.signature)


class PostgresStore:
    def __init__(self, url: str, dsn: str, *, pool_size: int = 4) -> None:
        self.url = url
        self.dsn = dsn
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._writes: set[asyncio.Task[list[Linked]]] = set()
        self._writer_conn: asyncpg.Connection | None = None
        # Batches in flight take turns on the writer connection, in submission order (an
        # asyncio.Lock wakes its waiters first come, first served), so each links onto the head
        # the one before it committed.
        self._writing = asyncio.Lock()
        # (seq, hash) of the last batch this store committed; None until known (_write_batch)
        self._known_head: tuple[int, bytes] | None = None

    async def migrate(self, *, create: bool) -> int:
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                version = await self._version(conn)
                if version == 0 and not create:
                    raise NotAnAuditLogError("this database is not an audit log (no audit_meta)")
                if version > LATEST_VERSION:
                    raise SchemaVersionError(f"schema version {version} > {LATEST_VERSION}")
                now = format_time(datetime.now(UTC))
                if version < LATEST_VERSION:
                    await self._may_migrate(conn, version)
                for target in range(version + 1, LATEST_VERSION + 1):
                    for statement in POSTGRES_MIGRATIONS[target]:
                        await conn.execute(statement)
                    if target == 1:
                        await conn.execute(
                            "INSERT INTO audit_meta VALUES ($1, $2)", MARKER_KEY, MARKER_VALUE
                        )
                    await conn.execute("INSERT INTO audit_schema VALUES ($1, $2)", target, now)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self._pool_size)
        return LATEST_VERSION

    @staticmethod
    async def _may_migrate(conn: asyncpg.Connection, version: int) -> None:
        """Say so plainly when a login without the owner's rights (audit_writer) finds the
        schema missing or old, rather than failing on the first CREATE."""
        can = await conn.fetchval(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = session_user"
        )
        if not can and version == 0:
            login = await conn.fetchval("SELECT session_user")
            raise MigrationRefusedError(
                f"the audit schema is not created yet and login {login} may not create it: run "
                "`audit migrate --db OWNER_URL` (or give the service the owner's URL for "
                "migrations) first"
            )

    async def privilege_problems(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return await privilege_problems(conn)

    @staticmethod
    async def _version(conn: asyncpg.Connection) -> int:
        if await conn.fetchval("SELECT to_regclass('audit_meta')") is None:
            return 0
        marker = await conn.fetchval("SELECT value FROM audit_meta WHERE key = $1", MARKER_KEY)
        if marker != MARKER_VALUE:
            raise NotAnAuditLogError("audit_meta exists but does not mark an audit log")
        return int(await conn.fetchval("SELECT max(version) FROM audit_schema"))

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore.migrate() must run first")
        return self._pool

    def submit_batch(
        self, batch: Sequence[Pending], decide: store.CheckpointDecider, done: store.BatchDone
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._write_in_turn(batch, decide))
        self._writes.add(task)  # keep a reference until it is done
        task.add_done_callback(self._writes.discard)
        task.add_done_callback(lambda t: done(store.outcome_of(t)))

    async def _writer(self) -> asyncpg.Connection:
        """The append path's own connection (batches commit one at a time): no pool acquire,
        no reset on release; replaced when it broke."""
        if self._writer_conn is None or self._writer_conn.is_closed():
            self._writer_conn = await asyncpg.connect(self.dsn)
        return self._writer_conn

    async def _write_in_turn(
        self, batch: Sequence[Pending], decide: store.CheckpointDecider
    ) -> list[Linked]:
        async with self._writing:
            return await self._write_batch(batch, decide)

    async def _write_batch(
        self, batch: Sequence[Pending], decide: store.CheckpointDecider
    ) -> list[Linked]:
        """Link and commit `batch`; optimistic when this store wrote the head last.

        The fast path links onto the head this store committed last and sends the batch as
        ONE autocommit INSERT that takes the chain lock itself: one round trip instead of four
        (BEGIN with the lock, the head, the INSERT, COMMIT), and each round trip costs
        event-loop turns shared with every caller. It is safe for the reason SQLite's is
        (SqliteStore._write): seq is the primary key and seqs are consecutive, so if any other
        writer appended since, our first seq exists, the statement fails whole (a unique
        violation), and the locked path relinks onto the true head. The lock keeps the other
        writers' locked path from linking onto a head this statement is about to move.
        """
        conn = await self._writer()
        known = self._known_head
        self._known_head = None  # set again only once this batch is known committed
        if known is not None and len(batch) <= _ROWS_PER_INSERT:  # else: several statements
            linked = link(known[0], known[1], batch)
            checkpoint = decide(linked[0].seq, linked[-1].seq, linked[-1].hash)
            if checkpoint is None:
                [(sql, params)] = _inserts(linked)
                try:
                    await conn.execute(sql, *params)
                except asyncpg.UniqueViolationError:
                    pass  # another writer moved the head; nothing of ours was written
                else:
                    self._known_head = (linked[-1].seq, linked[-1].hash)
                    return linked
            else:  # the checkpoint's INSERT needs a transaction: the locked path
                decide = store.reusing(checkpoint, decide)
        linked = await self._write_locked(conn, batch, decide)
        self._known_head = (linked[-1].seq, linked[-1].hash)
        return linked

    async def _write_locked(
        self, conn: asyncpg.Connection, batch: Sequence[Pending], decide: store.CheckpointDecider
    ) -> list[Linked]:
        """Four round trips: BEGIN with the chain lock, the head (a new statement, so a fresh
        snapshot taken after the lock), one prepared multi-row INSERT (one per 2,048 rows of a
        larger batch), COMMIT."""
        await conn.execute(_BEGIN_LOCKED)
        try:
            head_seq, head_hash = await _head(conn)
            linked = link(head_seq, head_hash, batch)
            for sql, params in _inserts(linked):
                await conn.execute(sql, *params)
            checkpoint = decide(linked[0].seq, linked[-1].seq, linked[-1].hash)
            if checkpoint is not None:
                await _insert_checkpoint(conn, checkpoint)
            await conn.execute("COMMIT")
        except BaseException:
            if not conn.is_closed():
                try:
                    await conn.execute("ROLLBACK")
                except Exception:  # the connection is unusable: drop it, the next batch reconnects
                    conn.terminate()
            raise
        return linked

    async def checkpoint_head(self, sign: Callable[[int, bytes], Checkpoint]) -> Checkpoint | None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            head_seq, head_hash = await _head(conn)
            last = await conn.fetchval("SELECT max(seq) FROM audit_checkpoints")
            if head_seq <= (last or 0):
                return None
            checkpoint = sign(head_seq, head_hash)
            await _insert_checkpoint(conn, checkpoint)
            return checkpoint

    async def add_key(self, key_id: str, public_pem: str) -> None:
        now = format_time(datetime.now(UTC))
        await self.pool.execute(
            "INSERT INTO audit_keys VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
            key_id,
            public_pem,
            now,
        )

    async def public_keys(self) -> dict[str, str]:
        rows = await self.pool.fetch("SELECT key_id, public_pem FROM audit_keys")
        return {str(r[0]): str(r[1]) for r in rows}

    async def checkpoints(self) -> list[Checkpoint]:
        rows = await self.pool.fetch(store.SELECT_CHECKPOINTS)
        return [Checkpoint(*row) for row in rows]

    async def query_rows(self, query: RowQuery) -> list[Row]:
        sql, params = store.query_sql(
            query, placeholder=lambda i: f"${i}", resource_operator="LIKE"
        )
        return [tuple(r) for r in await self.pool.fetch(sql, *params)]

    async def stream_rows(self, chunk: int) -> AsyncIterator[list[Row]]:
        """Every row in seq order from one REPEATABLE READ snapshot, through a server cursor."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            cursor = await conn.cursor(f"{store.SELECT_ROWS} ORDER BY seq")
            while True:
                records = await cursor.fetch(chunk)
                if not records:
                    return
                # asyncpg Records index and unpack like tuples: no per-row copy.
                yield records

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._writer_conn is not None:
            await self._writer_conn.close()
            self._writer_conn = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
