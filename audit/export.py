"""Export shapes: JSON Lines (our record), CSV (flat), OCSF API Activity (what SIEMs ingest)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator
from enum import StrEnum
from typing import Any

from audit.encoding import to_record
from audit.records import StoredEvent
from audit.vocab import Action, Outcome, Severity

# Pinned so that consumers can validate against one published schema.
OCSF_VERSION = "1.3.0"
OCSF_CLASS_UID = 6003  # API Activity
OCSF_CATEGORY_UID = 6  # Application Activity
PRODUCT = {
    "name": "gmail-limited-use-connector audit log",
    "vendor_name": "gmail-limited-use-connector",
}


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    OCSF = "ocsf"


class OcsfActivity:
    CREATE = 1
    READ = 2
    UPDATE = 3
    DELETE = 4
    OTHER = 99


_ACTIVITY_NAMES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
_VERB_ACTIVITY = {
    "read": OcsfActivity.READ,
    "list": OcsfActivity.READ,
    "sync": OcsfActivity.READ,
    "queried": OcsfActivity.READ,
    "exported": OcsfActivity.READ,
    "verified": OcsfActivity.READ,
    "create": OcsfActivity.CREATE,
    "created": OcsfActivity.CREATE,
    "send": OcsfActivity.CREATE,
    "granted": OcsfActivity.CREATE,
    "linked": OcsfActivity.CREATE,
    "started": OcsfActivity.CREATE,
    "update": OcsfActivity.UPDATE,
    "modify": OcsfActivity.UPDATE,
    "approved": OcsfActivity.UPDATE,
    "refreshed": OcsfActivity.UPDATE,
    "rotated": OcsfActivity.UPDATE,
    "delete": OcsfActivity.DELETE,
    "revoked": OcsfActivity.DELETE,
    "unlinked": OcsfActivity.DELETE,
    "dismissed": OcsfActivity.DELETE,
}
_SEVERITY_ID = {Severity.INFO: 1, Severity.WARNING: 3, Severity.HIGH: 4}
_STATUS_ID = {Outcome.OK: 1, Outcome.DENIED: 2, Outcome.ERROR: 2, Outcome.PENDING: 0}
_STATUS_NAME = {0: "Unknown", 1: "Success", 2: "Failure"}


def activity_id(action: Action) -> int:
    return _VERB_ACTIVITY.get(action.value.rsplit(".", 1)[-1], OcsfActivity.OTHER)


def jsonl_record(stored: StoredEvent) -> dict[str, Any]:
    return {
        "seq": stored.seq,
        "prev_hash": stored.prev_hash,
        "hash": stored.hash,
        "event": to_record(stored.event),
    }


def ocsf_record(stored: StoredEvent) -> dict[str, Any]:
    """One OCSF 1.3.0 API Activity event; fields OCSF has no place for go to `unmapped`."""
    event = stored.event
    activity = activity_id(event.action)
    status = _STATUS_ID[event.outcome]
    record: dict[str, Any] = {
        "class_uid": OCSF_CLASS_UID,
        "class_name": "API Activity",
        "category_uid": OCSF_CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity,
        "activity_name": _ACTIVITY_NAMES[activity],
        "type_uid": OCSF_CLASS_UID * 100 + activity,
        "time": int(event.time.timestamp() * 1000),
        "severity_id": _SEVERITY_ID[event.severity],
        "status_id": status,
        "status": _STATUS_NAME[status],
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "uid": event.event_id,
            "correlation_uid": event.access_id,
            "sequence": stored.seq,
        },
        "actor": {"user": {"uid": event.actor.id, "type": event.actor.kind.value}},
        "api": {"operation": event.action.value},
        # Source addresses are keyed hashes, so they cannot fill OCSF's `ip` field.
        "src_endpoint": {"uid": event.source.ip_hash} if event.source.ip_hash else {},
        "resources": [{"uid": r.id, "type": r.kind.value} for r in event.resources],
        "unmapped": {
            "account_id": event.account_id,
            "purpose": None if event.purpose is None else event.purpose.value,
            "basis": None
            if event.basis is None
            else {"kind": event.basis.kind.value, "id": event.basis.id},
            "decision": event.decision.value,
            "reasons": list(event.reasons),
            "phase": event.phase.value,
            "outcome": event.outcome.value,
            "legal_hold": event.legal_hold,
            "user_agent_hash": event.source.user_agent_hash,
            "prev_hash": stored.prev_hash,
            "hash": stored.hash,
        },
    }
    if event.request_id is not None:
        record["api"]["request"] = {"uid": event.request_id}
    if event.error_code is not None:
        record["status_code"] = event.error_code
    return record


CSV_COLUMNS = (
    "seq",
    "time",
    "event_id",
    "account_id",
    "actor_kind",
    "actor_id",
    "action",
    "purpose",
    "basis",
    "decision",
    "reasons",
    "outcome",
    "phase",
    "severity",
    "resources",
    "error_code",
    "access_id",
    "request_id",
    "legal_hold",
    "hash",
)


def csv_row(stored: StoredEvent) -> list[str]:
    record = to_record(stored.event)
    event = stored.event
    return [
        str(stored.seq),
        record["time"],
        event.event_id,
        event.account_id or "",
        event.actor.kind.value,
        event.actor.id,
        event.action.value,
        "" if event.purpose is None else event.purpose.value,
        "" if event.basis is None else f"{event.basis.kind.value}:{event.basis.id}",
        event.decision.value,
        ";".join(event.reasons),
        event.outcome.value,
        event.phase.value,
        event.severity.value,
        ";".join(f"{r.kind.value}:{r.id}" for r in event.resources),
        event.error_code or "",
        event.access_id,
        event.request_id or "",
        "true" if event.legal_hold else "false",
        stored.hash,
    ]


async def export_lines(events: AsyncIterable[StoredEvent], fmt: ExportFormat) -> AsyncIterator[str]:
    """Text lines (each ending in a newline) of `events` in `fmt`."""
    if fmt is ExportFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        yield buffer.getvalue()
        async for stored in events:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(csv_row(stored))
            yield buffer.getvalue()
        return
    shape = jsonl_record if fmt is ExportFormat.JSONL else ocsf_record
    async for stored in events:
        yield json.dumps(shape(stored), sort_keys=True, separators=(",", ":")) + "\n"
