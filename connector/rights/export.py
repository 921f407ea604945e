"""The owner's export: everything the connector holds about one account, as JSON, and the
access history as CSV. Pure functions over what the services already read (and recorded)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

EXPORT_TYPE = "connector.data_export.v1"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"  # the access history only, one row per audit event


# The access history's CSV columns, from the owner's view of an event (`event_json`).
HISTORY_COLUMNS = (
    "seq", "time", "actor_kind", "actor_id", "action", "phase", "purpose", "basis_kind",
    "basis_id", "decision", "outcome", "reasons", "resources", "access_id",
)  # fmt: skip


def export_document(
    account: Mapping[str, Any],
    consents: Sequence[Mapping[str, Any]],
    access_requests: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    *,
    sync_state: Mapping[str, Any] | None = None,
    change_feed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`sync_state`: cursor, watch expiry, last full sync, failures (None: never synced);
    `change_feed`: its entries by kind and first/last seq (`connector.rights.held`)."""
    return {
        "type": EXPORT_TYPE,
        "account": dict(account),
        "consents": list(consents),
        "access_requests": list(access_requests),
        "access_history": list(history),
        "sync_state": None if sync_state is None else dict(sync_state),
        "change_feed": dict(change_feed or {"entries": 0, "by_kind": {}, "first_seq": None,
                                            "last_seq": None}),
    }  # fmt: skip


def history_csv(history: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for e in history:
        basis = e.get("basis") or {}
        writer.writerow([
            e["seq"], e["time"], e["actor"]["kind"], e["actor"]["id"], e["action"], e["phase"],
            e["purpose"] or "", basis.get("kind", ""), basis.get("id", ""), e["decision"],
            e["outcome"], " ".join(e["reasons"]),
            " ".join(f"{r['kind']}:{r['id']}" for r in e["resources"]), e["access_id"],
        ])  # fmt: skip
    return out.getvalue()
