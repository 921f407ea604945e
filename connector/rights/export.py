"""The owner's export: everything the connector holds about one account, as JSON, and the
access history as CSV. The access history is read through `Oversight.history` (each page
decided and recorded); the rest are pure functions over what the services already read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from audit.event import Actor
from connector.policy.oversight import Oversight, event_json

EXPORT_TYPE = "connector.data_export.v1"
HISTORY_CHUNK = 1000  # events per `Oversight.history` page (one record per page)


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"  # the access history only, one row per audit event


# The access history's CSV columns, from the owner's view of an event (`event_json`).
HISTORY_COLUMNS = (
    "seq", "time", "actor_kind", "actor_id", "action", "phase", "purpose", "basis_kind",
    "basis_id", "decision", "outcome", "reasons", "resources", "access_id",
)  # fmt: skip


async def access_history(
    oversight: Oversight, actor: Actor, account_id: str, *, request_id: str | None
) -> list[dict[str, Any]]:
    """The account's whole access history, newest first, as the owner sees each event."""
    events: list[dict[str, Any]] = []
    cursor: int | None = None
    while True:
        page = await oversight.history(actor, account_id, limit=HISTORY_CHUNK, before_seq=cursor,
                                       request_id=request_id)  # fmt: skip
        events.extend(event_json(e, for_owner=True) for e in page.events)
        if page.next_after is None:
            return events
        cursor = page.next_after


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
