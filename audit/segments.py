"""Sealed archive segments of the audit log, and the tombstones that replace dropped ones.

A segment is a range of the chain, `first..last` (`last` is always a signed checkpoint's seq),
kept in a directory as three kinds of file:

* `segment-F-L.jsonl`: the rows, one JSON array per line, hashes as hex;
* `segment-F-L.manifest.json`: first/last seq, count, the hash before `first`, the hash at
  `last`, the SHA-256 of the rows file and the covering checkpoint, signed with the checkpoint
  key (its own signing context, so it can never pass for a checkpoint);
* `segment-F-L.tombstone.json`, once the segment's retention ran out and it was dropped: the
  range, its boundary hashes, the rows file's digest, the reason and date, signed likewise.

`audit verify --segments DIR` (audit.segment_verify) reads the chain through them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import AuditError
from audit.records import Row
from audit.signing import key_id

SEGMENT_CONTEXT = b"audit-segment-v1\x00"
TOMBSTONE_CONTEXT = b"audit-tombstone-v1\x00"
FORMAT_VERSION = 1


class SegmentFile(StrEnum):
    ROWS = "jsonl"
    MANIFEST = "manifest.json"
    TOMBSTONE = "tombstone.json"


class DocumentType(StrEnum):
    SEGMENT = "audit.segment"
    TOMBSTONE = "audit.tombstone"


class SegmentError(AuditError):
    """A segment directory, manifest or tombstone that cannot be read or acted on."""


class NothingToArchiveError(SegmentError):
    """No signed checkpoint before the date covers events after the archive's head."""


class ArchivePeriod(StrEnum):
    """What one segment holds when the log is archived by period (UTC calendar)."""

    DAY = "day"
    MONTH = "month"

    def start(self, moment: datetime) -> datetime:
        """The start of the period `moment` falls in."""
        day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return day if self is ArchivePeriod.DAY else day.replace(day=1)

    def following(self, moment: datetime) -> datetime:
        """The start of the period after the one `moment` falls in."""
        start = self.start(moment)
        if self is ArchivePeriod.DAY:
            return start + timedelta(days=1)
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def stem(first: int, last: int) -> str:
    return f"segment-{first:012d}-{last:012d}"


def segment_path(directory: Path, first: int, last: int, kind: SegmentFile) -> Path:
    return directory / f"{stem(first, last)}.{kind.value}"


def canonical(document: Mapping[str, Any]) -> bytes:
    """The signed bytes: every field but `signature`, sorted, compact."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _context(document: Mapping[str, Any]) -> bytes:
    kind = document.get("type")
    if kind == DocumentType.SEGMENT:
        return SEGMENT_CONTEXT
    if kind == DocumentType.TOMBSTONE:
        return TOMBSTONE_CONTEXT
    raise SegmentError(f"not a segment manifest or tombstone (type {kind!r})")


def sign_document(key: Ed25519PrivateKey, document: dict[str, Any]) -> dict[str, Any]:
    signed = {**document, "key_id": key_id(key.public_key())}
    signed["signature"] = key.sign(_context(signed) + canonical(signed)).hex()
    return signed


def document_is_valid(keys: Mapping[str, Ed25519PublicKey], document: Mapping[str, Any]) -> bool:
    key = keys.get(str(document.get("key_id")))
    if key is None:
        return False
    try:
        key.verify(
            bytes.fromhex(str(document["signature"])), _context(document) + canonical(document)
        )
    except (InvalidSignature, ValueError, KeyError, SegmentError):
        return False
    return True


def row_line(row: Row) -> str:
    seq, time, account, actor, action, purpose, decision, body, prev, digest = row
    fields = [seq, time, account, actor, action, purpose, decision, body, prev.hex(), digest.hex()]
    return json.dumps(fields, separators=(",", ":")) + "\n"


def parse_row(line: str, where: str) -> Row:
    try:
        f = json.loads(line)
        return (
            int(f[0]), str(f[1]), f[2], str(f[3]), str(f[4]), f[5], str(f[6]), str(f[7]),
            bytes.fromhex(f[8]), bytes.fromhex(f[9]),
        )  # fmt: skip
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise SegmentError(f"{where}: not a segment row: {exc}") from None


def read_rows(path: Path, chunk: int = 10_000) -> Iterator[list[Row]]:
    """The rows of a segment file in chunks (a malformed line raises SegmentError)."""
    batch: list[Row] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            batch.append(parse_row(line, f"{path.name} line {number}"))
            if len(batch) >= chunk:
                yield batch
                batch = []
    if batch:
        yield batch


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename; refuses to overwrite."""
    if path.exists():
        raise SegmentError(f"{path} exists already")
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    write_atomically(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def read_document(path: Path, kind: DocumentType) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SegmentError(f"{path.name} cannot be read: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != kind.value:
        raise SegmentError(f"{path.name} is not an {kind.value} document")
    for name in ("first_seq", "last_seq", "first_prev_hash", "last_hash", "signature"):
        if name not in document:
            raise SegmentError(f"{path.name} has no {name}")
    return document


@dataclass(frozen=True, slots=True)
class Entry:
    """One range of the archive: its manifest, and its tombstone once it was dropped."""

    first: int
    last: int
    manifest: dict[str, Any] | None
    tombstone: dict[str, Any] | None
    rows: Path | None  # the rows file, None once dropped (or lost)


def read_archive(directory: Path) -> list[Entry]:
    """Every range in `directory`, in seq order."""
    if not directory.is_dir():
        raise SegmentError(f"{directory} is not a directory")
    ranges: dict[tuple[int, int], dict[SegmentFile, Path]] = {}
    for path in directory.iterdir():
        name = path.name
        if not name.startswith("segment-") or name.endswith(".tmp"):
            continue
        head, _, suffix = name.partition(".")
        parts = head.split("-")
        kinds = {k.value: k for k in SegmentFile}
        if len(parts) != 3 or suffix not in kinds or not (parts[1] + parts[2]).isdigit():
            raise SegmentError(f"{name} is not a segment file name")
        ranges.setdefault((int(parts[1]), int(parts[2])), {})[kinds[suffix]] = path
    entries: list[Entry] = []
    for (first, last), files in sorted(ranges.items()):
        manifest = files.get(SegmentFile.MANIFEST)
        tombstone = files.get(SegmentFile.TOMBSTONE)
        entries.append(
            Entry(
                first,
                last,
                None if manifest is None else read_document(manifest, DocumentType.SEGMENT),
                None if tombstone is None else read_document(tombstone, DocumentType.TOMBSTONE),
                files.get(SegmentFile.ROWS),
            )
        )
    return entries


def archived_head(entries: Iterable[Entry]) -> tuple[int, str] | None:
    """The last archived seq and its hash, or None for an empty archive."""
    last: tuple[int, str] | None = None
    for entry in entries:
        document = entry.tombstone or entry.manifest
        if document is not None:
            last = (entry.last, str(document["last_hash"]))
    return last
