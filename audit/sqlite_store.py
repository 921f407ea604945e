"""SQLite store: WAL, synchronous=FULL, BEGIN IMMEDIATE around every append batch.

sqlite3 is blocking, so each connection lives on its own single-thread executor: the writer's
whole transaction (lock, read head, link, executemany, commit) runs as one call on that thread,
which costs one thread hop per batch rather than one per statement.

Durability: in WAL mode `synchronous=FULL` fsyncs the WAL at every commit, so a committed batch
survives power loss, not only a process crash. Group commit pays that fsync once per batch.
Several processes may append to one file: BEGIN IMMEDIATE takes the database's write lock before
the head is read, so heads never fork; `busy_timeout` makes the others wait for it.

Identity: an open connection keeps writing to its file after the file (or its directory) is
deleted or replaced, and those commits vanish with the unlinked inode. So the writer remembers
the (st_dev, st_ino) of the file and its directory when it connects, and compares them before
every batch and after its commit, before the batch is acknowledged: a mismatch fails the batch
(`AuditStoreReplacedError`), and every later one, so the service fails closed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import TypeVar

from audit import store
from audit.chain import Linked, Pending, link, row_of
from audit.encoding import format_time
from audit.errors import AuditStoreReplacedError, NotAnAuditLogError, SchemaVersionError
from audit.hashing import GENESIS_HASH
from audit.records import Checkpoint, Row, RowQuery
from audit.schema import LATEST_VERSION, MARKER_KEY, MARKER_VALUE, SQLITE_MIGRATIONS

T = TypeVar("T")

_INSERT_HEAD = (
    "INSERT INTO audit_events (seq, time, account_id, actor_id, action, purpose, decision, body,"
    " prev_hash, hash) VALUES "
)
_ROW_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# One multi-row INSERT per chunk rather than executemany: sqlite3 releases and retakes the GIL
# around every statement step, and under a busy event loop each retake waits for the loop to
# let go, so a 25-row executemany cost ~12 ms of waiting in the service. SQLite >= 3.32 allows
# 32766 bound parameters per statement; 10 per row.
_ROWS_PER_INSERT = 3000
_INSERT_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, head_hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)"
)
_HEAD = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"


@lru_cache(maxsize=256)
def _insert_rows(count: int) -> str:
    return _INSERT_HEAD + ", ".join([_ROW_PLACEHOLDERS] * count)


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the database's write lock) ... COMMIT; ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


Identity = tuple[tuple[int, int], tuple[int, int]]  # (st_dev, st_ino) of the file, its directory


def _identity(path: str) -> Identity | None:
    """Which file and directory `path` names right now; None when either is gone."""
    try:
        file, directory = os.stat(path), os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return (file.st_dev, file.st_ino), (directory.st_dev, directory.st_ino)


def _params(linked: Sequence[Linked]) -> list[object]:
    return [value for item in linked for value in row_of(item)]


def _head(conn: sqlite3.Connection) -> tuple[int, bytes]:
    row = conn.execute(_HEAD).fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), bytes(row[1]))


def _insert_checkpoint(conn: sqlite3.Connection, cp: Checkpoint) -> None:
    conn.execute(_INSERT_CHECKPOINT, (cp.seq, cp.head_hash, cp.time, cp.key_id, cp.signature))


class SqliteStore:
    def __init__(self, url: str, path: str) -> None:
        if path in ("", ":memory:"):
            raise ValueError("an audit log needs a file; use audit.memory.MemoryAuditLog in memory")
        self.url = url
        self.path = path
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-w")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-r")
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # (seq, hash) of the last batch this store committed; None until known (see _write).
        self._known_head: tuple[int, bytes] | None = None
        self._opened: Identity | None = None  # what the writer connected to (see _check_identity)

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    def _w(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = _connect(self.path)
            if self._opened is None:  # never re-learnt: a reconnect must not adopt a new file
                self._opened = _identity(self.path)
        return self._writer

    def _check_identity(self) -> None:
        """Raise unless the path still names the file and directory the writer opened."""
        if self._opened is None or _identity(self.path) != self._opened:
            raise AuditStoreReplacedError(
                f"the audit database {self.path} (or its directory) was deleted or replaced "
                "since the service opened it; appends and queries are refused until it restarts"
            )

    def _r(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = _connect(self.path)
        return self._reader

    async def migrate(self, *, create: bool) -> int:
        return await self._on(self._writer_pool, partial(self._migrate, create))

    def _migrate(self, create: bool) -> int:
        if not create and not Path(self.path).exists():
            # sqlite3.connect would create an empty file; the CLI must not.
            raise NotAnAuditLogError(f"{self.path} does not exist")
        conn = self._w()
        with _immediate(conn):
            version = self._version(conn, create=create)
            now = format_time(datetime.now(UTC))
            for target in range(version + 1, LATEST_VERSION + 1):
                for statement in SQLITE_MIGRATIONS[target]:
                    conn.execute(statement)
                if target == 1:
                    conn.execute("INSERT INTO audit_meta VALUES (?, ?)", (MARKER_KEY, MARKER_VALUE))
                conn.execute("INSERT INTO audit_schema VALUES (?, ?)", (target, now))
        return LATEST_VERSION

    @staticmethod
    def _version(conn: sqlite3.Connection, *, create: bool) -> int:
        version = SqliteStore._stored_version(conn)
        if version == 0 and not create:
            raise NotAnAuditLogError("this database is not an audit log (no audit_meta marker)")
        if version > LATEST_VERSION:
            raise SchemaVersionError(f"schema version {version} > {LATEST_VERSION}")
        return version

    @staticmethod
    def _stored_version(conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'"
        ).fetchone()
        if exists is None:
            return 0
        marker = conn.execute(
            "SELECT value FROM audit_meta WHERE key = ?", (MARKER_KEY,)
        ).fetchone()
        if marker is None or marker[0] != MARKER_VALUE:
            raise NotAnAuditLogError("audit_meta exists but does not mark an audit log")
        return int(conn.execute("SELECT max(version) FROM audit_schema").fetchone()[0])

    def submit_batch(
        self, batch: Sequence[Pending], decide: store.CheckpointDecider, done: store.BatchDone
    ) -> None:
        loop = asyncio.get_running_loop()
        committed = self._writer_pool.submit(self._write, batch, decide)
        # straight from the writer thread to `done` on the loop: one event-loop turn
        committed.add_done_callback(
            lambda f: loop.call_soon_threadsafe(lambda: done(store.outcome_of(f)))
        )

    def _write(self, batch: Sequence[Pending], decide: store.CheckpointDecider) -> list[Linked]:
        """Link and commit `batch`; optimistic when this process wrote the head last.

        The fast path links onto the head this connection committed last and inserts the whole
        batch as ONE autocommit statement: one statement step, so one GIL release, instead of
        BEGIN, SELECT head, INSERT, COMMIT. Every time this thread retakes the GIL it waits for
        the busy event loop to let go; four waits per batch cost ~10 ms of append latency in the
        service. It is safe because seq is the primary key and seqs are consecutive: if any
        other writer appended since, our first seq already exists, the statement fails whole,
        and the locked path relinks onto the true head.
        """
        conn = self._w()
        self._check_identity()  # before too: do not even write into a replaced file
        known = self._known_head
        self._known_head = None  # set again only once this batch is known committed
        if known is not None and len(batch) <= _ROWS_PER_INSERT:
            linked = link(known[0], known[1], batch)
            checkpoint = decide(linked[0].seq, linked[-1].seq, linked[-1].hash)
            if checkpoint is None:
                try:
                    conn.execute(_insert_rows(len(linked)), _params(linked))
                except sqlite3.Error:
                    # Another writer moved the head (duplicate seq) or the upgrade to a write
                    # lock lost a race; nothing was written. Real faults recur below and raise.
                    pass
                else:
                    self._check_identity()
                    self._known_head = (linked[-1].seq, linked[-1].hash)
                    return linked
            else:
                # A checkpoint needs its own statement, so a transaction: take the locked
                # path, reusing the signature if the head is where we thought.
                decide = store.reusing(checkpoint, decide)
        linked = self._write_locked(conn, batch, decide)
        self._check_identity()
        self._known_head = (linked[-1].seq, linked[-1].hash)
        return linked

    def _write_locked(
        self, conn: sqlite3.Connection, batch: Sequence[Pending], decide: store.CheckpointDecider
    ) -> list[Linked]:
        with _immediate(conn):
            head_seq, head_hash = _head(conn)
            linked = link(head_seq, head_hash, batch)
            for start in range(0, len(linked), _ROWS_PER_INSERT):
                chunk = linked[start : start + _ROWS_PER_INSERT]
                conn.execute(_insert_rows(len(chunk)), _params(chunk))
            checkpoint = decide(linked[0].seq, linked[-1].seq, linked[-1].hash)
            if checkpoint is not None:
                _insert_checkpoint(conn, checkpoint)
        return linked

    async def checkpoint_head(self, sign: Callable[[int, bytes], Checkpoint]) -> Checkpoint | None:
        return await self._on(self._writer_pool, partial(self._checkpoint_head, sign))

    def _checkpoint_head(self, sign: Callable[[int, bytes], Checkpoint]) -> Checkpoint | None:
        conn = self._w()
        with _immediate(conn):
            head_seq, head_hash = _head(conn)
            last = conn.execute("SELECT max(seq) FROM audit_checkpoints").fetchone()[0]
            checkpoint = None
            if head_seq > (last or 0):
                checkpoint = sign(head_seq, head_hash)
                _insert_checkpoint(conn, checkpoint)
        self._check_identity()
        return checkpoint

    async def privilege_problems(self) -> list[str]:
        # A file has no roles: who may change it is the file system's (and the service's
        # user's) business, outside what a connection can check.
        return []

    async def add_key(self, key_id: str, public_pem: str) -> None:
        now = format_time(datetime.now(UTC))

        def add() -> None:
            self._w().execute(
                "INSERT OR IGNORE INTO audit_keys VALUES (?, ?, ?)", (key_id, public_pem, now)
            )

        await self._on(self._writer_pool, add)

    async def public_keys(self) -> dict[str, str]:
        def read() -> dict[str, str]:
            rows = self._r().execute("SELECT key_id, public_pem FROM audit_keys").fetchall()
            return {str(k): str(v) for k, v in rows}

        return await self._on(self._reader_pool, read)

    async def checkpoints(self) -> list[Checkpoint]:
        def read() -> list[Checkpoint]:
            rows = self._r().execute(store.SELECT_CHECKPOINTS)
            return [Checkpoint(*row) for row in rows]

        return await self._on(self._reader_pool, read)

    async def query_rows(self, query: RowQuery) -> list[Row]:
        sql, params = store.query_sql(query, placeholder=lambda _: "?", resource_operator="GLOB")

        def read() -> list[Row]:
            if self._opened is not None:  # a replaced file's rows are not the log we serve
                self._check_identity()
            rows: list[Row] = self._r().execute(sql, params).fetchall()
            return rows

        return await self._on(self._reader_pool, read)

    async def stream_rows(self, chunk: int) -> AsyncIterator[list[Row]]:
        """Every row in seq order, `chunk` at a time, from one read snapshot."""
        conn = await self._on(self._reader_pool, lambda: _connect(self.path))
        try:

            def start() -> sqlite3.Cursor:
                conn.execute("BEGIN")  # one snapshot for the whole scan
                return conn.execute(f"{store.SELECT_ROWS} ORDER BY seq")

            cursor = await self._on(self._reader_pool, start)
            # Prefetch: the thread reads the next chunk while the caller hashes this one.
            loop = asyncio.get_running_loop()
            ahead = loop.run_in_executor(self._reader_pool, cursor.fetchmany, chunk)
            while True:
                rows: list[Row] = await ahead
                if not rows:
                    return
                ahead = loop.run_in_executor(self._reader_pool, cursor.fetchmany, chunk)
                yield rows
        finally:
            await self._on(self._reader_pool, conn.close)

    async def close(self) -> None:
        def shut() -> None:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

        def shut_reader() -> None:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

        await self._on(self._writer_pool, shut)
        await self._on(self._reader_pool, shut_reader)
        self._writer_pool.shutdown()
        self._reader_pool.shutdown()
