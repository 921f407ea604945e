"""The engine's own limits on this machine, for the audit figures to be read against.

bench_audit.py measures the audit log; this measures what is left when the log's Python is
taken away, with the log's own schema, pragmas, rows and batch sizes:

* sqlite_insert: raw `sqlite3`, the rows already linked, one multi-row INSERT per batch in
  autocommit (the store's fast path), `synchronous=FULL` in WAL mode: with the log's four
  secondary indexes, and with none (what "raw group commit" usually means).
* verify_floor: one process reading (seq, body, prev_hash, hash) and recomputing each SHA-256,
  nothing else; the verifier also reads and checks the six index columns.

Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_audit import ACCOUNTS, templates

from audit import open_audit_log
from audit.chain import Pending, link, row_of
from audit.encoding import VERSION_PREFIX
from audit.hashing import GENESIS_HASH
from audit.records import Row
from audit.schema import LATEST_VERSION
from audit.sqlite_store import _insert_rows as insert_rows  # the store's very statement
from connector.testing.machine import CpuTimes, machine_load

_INDEXES = (
    "audit_events_account",
    "audit_events_actor",
    "audit_events_action",
    "audit_events_time",
)


def _schema(path: Path, indexes: bool) -> None:
    """An audit log created by the log itself, then (for the bare case) its indexes dropped."""

    async def create() -> None:
        log = await open_audit_log(f"sqlite:///{path}")
        await log.close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    version = conn.execute("SELECT max(version) FROM audit_schema").fetchone()[0]
    assert version == LATEST_VERSION, version
    if not indexes:
        for name in _INDEXES:
            conn.execute(f"DROP INDEX {name}")
    conn.close()


def insert_ceiling(rows: Sequence[Row], batch: int, indexes: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.db"
        _schema(path, indexes)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        sql = insert_rows(batch)
        # parameters flattened up front: only the statement is timed
        params = [
            [value for row in rows[i : i + batch] for value in row]
            for i in range(0, len(rows) - batch + 1, batch)
        ]
        since = CpuTimes.now()
        started, cpu = time.perf_counter(), time.process_time()
        for chunk in params:
            conn.execute(sql, chunk)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        conn.close()
        total = len(params) * batch
        return {
            "batch": batch,
            "indexes": len(_INDEXES) if indexes else 0,
            "rows_per_s": round(total / elapsed),
            "cpu_us_per_row": round(cpu / total * 1e6, 1),
            **machine_load(since),
        }


def verify_floor(rows: Sequence[Row], jobs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.db"
        _schema(path, indexes=True)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executemany(insert_rows(1), rows)
        since = CpuTimes.now()
        cpu = time.process_time()
        sha256, prefix, prev, count = hashlib.sha256, VERSION_PREFIX, GENESIS_HASH, 0
        cursor = conn.execute("SELECT seq, body, prev_hash, hash FROM audit_events ORDER BY seq")
        while chunk := cursor.fetchmany(20_000):
            for seq, body, stored_prev, stored in chunk:
                digest = sha256(stored_prev + prefix + seq.to_bytes(8, "big") + body.encode())
                if digest.digest() != stored or stored_prev != prev:
                    raise SystemExit(f"seq {seq} does not verify")
                prev = stored
                count += 1
        per_row = (time.process_time() - cpu) / count
        conn.close()
        return {
            "rows": count,
            "cpu_us_per_row": round(per_row * 1e6, 2),
            "rows_per_s_one_core": round(1 / per_row),
            f"rows_per_s_{jobs}_cores_ideal": round(jobs / per_row),
            **machine_load(since),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=96_000, help="rows inserted per case")
    parser.add_argument("--verify-rows", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.rows < 256 or args.verify_rows < 1:
        parser.error("--rows must be at least 256 and --verify-rows at least 1")
    # The bench's own events, one per account in turn as its 64 writers send them.
    pendings = [Pending.of(e) for e in templates(20_000)]
    count = max(args.rows, args.verify_rows)
    linked = link(0, GENESIS_HASH, [pendings[i % len(pendings)] for i in range(count)])
    rows = [row_of(item) for item in linked]
    since = CpuTimes.now()
    inserts = [
        insert_ceiling(rows[: args.rows], batch, indexes)
        for indexes in (True, False)
        for batch in (32, 64, 256)
    ]
    floor = verify_floor(rows[: args.verify_rows], args.jobs)
    print(
        json.dumps(
            {
                "accounts": ACCOUNTS,
                "sqlite_insert": inserts,
                "verify_floor": floor,
                **machine_load(since),
            }
        )
    )


if __name__ == "__main__":
    main()
