"""Archiving the audit log into sealed segments, and dropping expired ones behind a tombstone.

`archive` copies the events after the last archived seq, up to the last checkpoint signed before
a date, into a segment (audit.segments), after checking that range like `verify` would. It does
not touch the live store, which stays append-only. `drop_expired` (run as the tables' owner)
removes archived segments older than the retention from the live store, oldest first, each
leaving a signed tombstone in the archive before its rows go.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.encoding import format_time, parse_time
from audit.hashing import GENESIS_HASH
from audit.log import AuditLog
from audit.records import Checkpoint, QueryFilter, Row, RowQuery
from audit.segment_verify import SegmentChecker
from audit.segments import (
    FORMAT_VERSION,
    ArchivePeriod,
    DocumentType,
    Entry,
    NothingToArchiveError,
    SegmentError,
    SegmentFile,
    archived_head,
    read_archive,
    row_line,
    segment_path,
    sign_document,
    write_document,
)
from audit.signing import checkpoint_is_valid, checkpoint_json, key_id
from audit.trust import checkpoint_keys
from audit.verify import ChainVerifier

PAGE = 10_000


async def _keys(log: AuditLog, key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    keys, _trust = checkpoint_keys(None, await log.store.public_keys())
    keys.setdefault(_key_id(key), key.public_key())
    return keys


def _key_id(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key())


def _covering(checkpoints: list[Checkpoint], start: int, before: datetime) -> Checkpoint:
    due = [c for c in checkpoints if c.seq >= start and parse_time(c.time) < before]
    if not due:
        raise NothingToArchiveError(
            f"no checkpoint signed before {format_time(before)} covers events from seq {start}: "
            "nothing to archive"
        )
    return max(due, key=lambda c: c.seq)


def _first_failure(verifier: ChainVerifier, what: str) -> None:
    first = verifier.finish().first
    if first is not None:
        raise SegmentError(f"{what}: seq {first.seq}: {first.damage.value}: {first.detail}")


async def archive(
    log: AuditLog, directory: Path, before: datetime, key: Ed25519PrivateKey, now: datetime
) -> Entry:
    """Seal the events after the archive's head, through the last checkpoint before `before`."""
    entries = read_archive(directory)
    head = archived_head(entries)
    start, prev = (1, GENESIS_HASH) if head is None else (head[0] + 1, bytes.fromhex(head[1]))
    keys = await _keys(log, key)
    checkpoint = _covering(await log.checkpoints(), start, before)
    if checkpoint.key_id not in keys or not checkpoint_is_valid(
        keys[checkpoint.key_id], checkpoint
    ):
        raise SegmentError(f"the checkpoint at seq {checkpoint.seq} does not verify")
    verifier = ChainVerifier([checkpoint], keys)
    verifier.adopt(start - 1, prev)
    rows_path = segment_path(directory, start, checkpoint.seq, SegmentFile.ROWS)
    tmp = rows_path.with_name(rows_path.name + ".tmp")
    digest, count, times = hashlib.sha256(), 0, ["", ""]
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            after = start - 1
            while after < checkpoint.seq:
                query = RowQuery(
                    QueryFilter(), PAGE, after_seq=after, before_seq=checkpoint.seq + 1
                )
                rows = await log.store.query_rows(query)
                if not rows:
                    break
                verifier.feed(rows)
                for row in rows:
                    line = row_line(row)
                    handle.write(line)
                    digest.update(line.encode("utf-8"))
                times[0] = times[0] or rows[0][1]
                times[1], count, after = rows[-1][1], count + len(rows), rows[-1][0]
            handle.flush()
            os.fsync(handle.fileno())
        _first_failure(verifier, f"events {start}..{checkpoint.seq} do not verify")
        if rows_path.exists():
            raise SegmentError(f"{rows_path} exists already")
        os.replace(tmp, rows_path)
    finally:
        tmp.unlink(missing_ok=True)
    manifest = sign_document(key, {
        "type": DocumentType.SEGMENT.value, "version": FORMAT_VERSION,
        "first_seq": start, "last_seq": checkpoint.seq, "count": count,
        "first_prev_hash": prev.hex(), "last_hash": checkpoint.head_hash,
        "first_time": times[0], "last_time": times[1],
        "rows_file": rows_path.name, "rows_sha256": digest.hexdigest(),
        "checkpoint": checkpoint_json(checkpoint), "sealed_at": format_time(now),
    })  # fmt: skip
    write_document(segment_path(directory, start, checkpoint.seq, SegmentFile.MANIFEST), manifest)
    return Entry(start, checkpoint.seq, manifest, None, rows_path)


async def archive_periods(
    log: AuditLog, directory: Path, key: Ed25519PrivateKey, *, period: ArchivePeriod, now: datetime
) -> list[Entry]:
    """One segment per `period` that ended by `now` and holds checkpointed events not yet
    archived, oldest first: each through the last checkpoint signed in its period."""
    head = archived_head(read_archive(directory))
    start = 1 if head is None else head[0] + 1
    ended = period.start(now)
    ends = sorted(
        {period.following(parse_time(c.time)) for c in await log.checkpoints() if c.seq >= start}
    )
    sealed: list[Entry] = []
    for end in (e for e in ends if e <= ended):
        try:
            sealed.append(await archive(log, directory, end, key, now))
        except NothingToArchiveError:
            continue  # its checkpoints were at the head already sealed
    return sealed


def check_segment(entry: Entry, keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """A segment whose manifest verifies and whose rows match it and chain, checked as
    `audit verify --segments` checks it; its manifest (else SegmentError with the damage)."""
    name = f"segment {entry.first}-{entry.last}"
    manifest, rows = entry.manifest, entry.rows
    if manifest is None or rows is None:
        raise SegmentError(f"{name} has no {'manifest' if manifest is None else 'rows file'}")
    verifier = ChainVerifier()
    try:
        verifier.adopt(entry.first - 1, bytes.fromhex(str(manifest["first_prev_hash"])))
    except ValueError:
        raise SegmentError(f"{name}: its manifest's first_prev_hash is not hex") from None
    checker = SegmentChecker(verifier, keys)
    checker.archived(entry, rows)
    problem = checker.failed or verifier.finish().first
    if problem is not None:
        raise SegmentError(f"{name}: seq {problem.seq}: {problem.damage.value}: {problem.detail}")
    return manifest


@dataclass(frozen=True, slots=True)
class Dropped:
    first: int
    last: int
    count: int


async def _live_row(log: AuditLog, seq: int) -> Row | None:
    rows = await log.store.query_rows(RowQuery(QueryFilter(), 1, after_seq=seq - 1))
    return rows[0] if rows and rows[0][0] == seq else None


async def drop_expired(
    log: AuditLog,
    directory: Path,
    key: Ed25519PrivateKey,
    *,
    now: datetime,
    retention: timedelta,
    reason: str,
    owner_url: str | None = None,
    strict: bool = True,
) -> list[Dropped]:
    """Drop every archived segment whose newest event is older than `retention`, oldest first,
    deleting its rows as the tables' owner (`owner_url`, else the log's own URL).

    `strict`: refuses (SegmentError) when the oldest segment still in the live store is
    younger; otherwise (the scheduled run) that only means nothing is due yet.
    """
    keys = await _keys(log, key)
    dropped: list[Dropped] = []
    for entry in read_archive(directory):
        if entry.rows is None:
            if entry.tombstone is None:
                raise SegmentError(
                    f"segment {entry.first}-{entry.last} has no rows and no tombstone"
                )
            continue  # dropped already
        manifest = check_segment(entry, keys)
        newest = parse_time(manifest["last_time"])
        if now - newest < retention:
            if dropped or not strict:
                break
            raise SegmentError(
                f"segment {entry.first}-{entry.last} holds events from {manifest['last_time']}, "
                f"younger than the retention of {retention.days} days: it may be dropped from "
                f"{format_time(newest + retention)}"
            )
        first_live = await log.store.query_rows(RowQuery(QueryFilter(), 1, after_seq=0))
        # An earlier, interrupted drop may have deleted the live rows already.
        if first_live and first_live[0][0] <= entry.last:
            await _delete_live(log, entry, manifest, first_live[0][0], owner_url or log.url)
        if entry.tombstone is None:
            path = segment_path(directory, entry.first, entry.last, SegmentFile.TOMBSTONE)
            write_document(path, _tombstone(key, manifest, reason, retention, now))
        entry.rows.unlink()
        dropped.append(Dropped(entry.first, entry.last, int(manifest["count"])))
    return dropped


async def _delete_live(
    log: AuditLog, entry: Entry, manifest: dict[str, Any], first: int, owner_url: str
) -> None:
    name = f"segment {entry.first}-{entry.last}"
    if first != entry.first:
        raise SegmentError(f"{name} is not the oldest range in the live log (it starts at {first})")
    boundary = await _live_row(log, entry.last)
    if boundary is None or boundary[9].hex() != manifest["last_hash"]:
        raise SegmentError(f"the live log's event {entry.last} differs from {name}")
    await delete_range(owner_url, entry.first, entry.last)


def _tombstone(
    key: Ed25519PrivateKey,
    manifest: dict[str, Any],
    reason: str,
    retention: timedelta,
    now: datetime,
) -> dict[str, Any]:
    return sign_document(key, {
        "type": DocumentType.TOMBSTONE.value, "version": FORMAT_VERSION,
        "first_seq": manifest["first_seq"], "last_seq": manifest["last_seq"],
        "count": manifest["count"], "first_prev_hash": manifest["first_prev_hash"],
        "last_hash": manifest["last_hash"], "last_time": manifest["last_time"],
        "rows_sha256": manifest["rows_sha256"], "manifest_signature": manifest["signature"],
        "reason": reason, "retention_days": retention.days, "dropped_at": format_time(now),
    })  # fmt: skip


async def delete_range(url: str, first: int, last: int) -> None:
    """Delete events first..last from the live store, as its owner: the append-only trigger is
    set aside for this one transaction only."""
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if scheme == "sqlite":
        await asyncio.to_thread(
            _delete_sqlite, url.split(":///", 1)[1].split("?", 1)[0], first, last
        )
        return
    conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
            await conn.execute("DELETE FROM audit_events WHERE seq BETWEEN $1 AND $2", first, last)
            await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
    finally:
        await conn.close()


def _delete_sqlite(path: str, first: int, last: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
            ("audit_events_no_delete",),
        ).fetchone()
        if found is None:
            _no_trigger(path)
        conn.execute("DROP TRIGGER audit_events_no_delete")
        conn.execute("DELETE FROM audit_events WHERE seq BETWEEN ? AND ?", (first, last))
        conn.execute(found[0])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _no_trigger(path: str) -> NoReturn:
    raise SegmentError(f"{path} has no append-only trigger on audit_events")
