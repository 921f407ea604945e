"""A witness: every signed checkpoint copied, as it commits, somewhere outside the audit database.

Checkpoints in the database only protect what the database still holds: whoever can delete the
tail of the chain can delete the checkpoints that cover it too, and the shorter log verifies.
A copy the database's writer cannot take back closes that gap: `audit verify --witness` checks
that every witnessed checkpoint is in the log with the same head hash and that the log is not
shorter than the latest one.

`WitnessFile` is a JSON-lines file, one `{seq, hash, signature, key_id, time}` object per
checkpoint, opened with O_APPEND (every write goes to the end, whatever the offset) and fsynced
after each line. Make it append-only for the service's user outside the service: `chattr +a` on
Linux, a file on another host's share the service may only append to, or a log shipper that
forwards each line. A checkpoint is published only after its transaction committed, so the
witness never names a checkpoint the database does not have; if the process dies in between,
the next checkpoint covers the same events.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from audit.errors import AuditError
from audit.records import Checkpoint

_FIELDS = ("seq", "hash", "signature", "key_id", "time")


class WitnessFormatError(AuditError):
    """A witness line that is not a checkpoint record (other than a torn last line)."""


class Witness(Protocol):
    """Where `AuditLog` publishes each checkpoint once it has committed."""

    async def publish(self, checkpoint: Checkpoint) -> None: ...

    def close(self) -> None: ...


def witness_line(checkpoint: Checkpoint) -> bytes:
    record = {
        "seq": checkpoint.seq,
        "hash": checkpoint.head_hash,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
        "time": checkpoint.time,
    }
    return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


class WitnessFile:
    """Append-only JSON lines; opened once (so a missing directory or a refused open fails at
    start-up, not at the first checkpoint), one write and one fsync per checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def publish_now(self, checkpoint: Checkpoint) -> None:
        if self._fd is None:
            raise AuditError("the witness file is closed")
        line = witness_line(checkpoint)
        # One write of one short line: appends from several processes never interleave.
        if os.write(self._fd, line) != len(line):
            raise OSError(f"short write to the witness file {self.path}")
        os.fsync(self._fd)

    async def publish(self, checkpoint: Checkpoint) -> None:
        await asyncio.to_thread(self.publish_now, checkpoint)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(slots=True)
class WitnessRecord:
    """What a witness file holds: its checkpoints, and anything worth saying about it."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_witness(text: str, source: str) -> WitnessRecord:
    record = WitnessRecord()
    lines = text.split("\n")
    torn = lines.pop() if lines else ""  # text after the last newline: an unfinished write
    for number, line in enumerate(lines, start=1):
        if line.strip():
            record.checkpoints.append(_checkpoint(line, f"{source} line {number}"))
    if torn.strip():
        record.notes.append(
            f"ignored an unfinished last line in the witness {source} (a write cut short)"
        )
    if record.checkpoints:
        latest = max(c.seq for c in record.checkpoints)
        record.notes.append(
            f"witness {source}: {len(record.checkpoints)} checkpoints, the latest at seq {latest}"
        )
    else:
        record.notes.append(f"witness {source} holds no checkpoint yet")
    return record


def _checkpoint(line: str, where: str) -> Checkpoint:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        raise WitnessFormatError(f"{where} is not JSON") from None
    if not isinstance(data, dict) or any(name not in data for name in _FIELDS):
        raise WitnessFormatError(f"{where} lacks one of {', '.join(_FIELDS)}")
    seq, texts = data["seq"], [data[name] for name in _FIELDS[1:]]
    if type(seq) is not int or seq < 1 or not all(isinstance(t, str) for t in texts):
        raise WitnessFormatError(f"{where} has a malformed value")
    return Checkpoint(seq, data["hash"], data["time"], data["key_id"], data["signature"])


def read_witness(path: Path) -> WitnessRecord:
    return parse_witness(path.read_text(encoding="ascii", errors="replace"), str(path))
