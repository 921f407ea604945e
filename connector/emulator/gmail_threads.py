"""Gmail v1 `users.threads` and `users.history` handlers."""

from __future__ import annotations

from typing import Any

from connector.emulator import errors
from connector.emulator.gmail_call import Call, label_changes, paginate
from connector.emulator.render import Format, parse_format, render_thread
from connector.emulator.state import HistoryType


def threads_list(call: Call) -> dict[str, Any]:
    start, size = call.page()
    seen: dict[str, None] = {}
    for msg in call.matching():
        seen.setdefault(msg.thread_id, None)
    box = call.box

    def stub(thread_id: str) -> dict[str, Any]:
        last = box.threads[thread_id][-1]
        return {
            "id": thread_id,
            "snippet": last.parsed.snippet,
            "historyId": str(box.thread_history_id(thread_id)),
        }

    return paginate(list(seen), start, size, "threads", stub)


def threads_get(call: Call) -> dict[str, Any]:
    thread_id = call.thread_id()
    fmt = parse_format(call.arg("format"))
    if fmt is Format.RAW:
        raise errors.invalid_argument("Invalid format: RAW is not supported for threads")
    return render_thread(call.box, thread_id, fmt, call.args("metadataHeaders"))


def _thread_modify(call: Call, add: list[str], remove: list[str]) -> dict[str, Any]:
    thread_id = call.thread_id()
    call.check_labels(add + remove)
    for msg in list(call.box.threads[thread_id]):
        call.box.modify(msg, add, remove)
    return render_thread(call.box, thread_id, Format.MINIMAL)


def threads_modify(call: Call) -> dict[str, Any]:
    return _thread_modify(call, *label_changes(call.json()))


def threads_trash(call: Call) -> dict[str, Any]:
    return _thread_modify(call, ["TRASH"], [])


def threads_untrash(call: Call) -> dict[str, Any]:
    return _thread_modify(call, [], ["TRASH"])


def threads_delete(call: Call) -> None:
    thread_id = call.thread_id()
    for msg in list(call.box.threads[thread_id]):
        call.box.delete_message(msg)


def history_list(call: Call) -> dict[str, Any]:
    box = call.box
    start_raw = call.arg("startHistoryId")
    if start_raw is None or not start_raw.isdigit():
        raise errors.invalid_argument("Missing/invalid parameter: startHistoryId")
    start = int(start_raw)
    if start < box.history_floor:
        raise errors.not_found()
    types = {
        HistoryType(t) for t in call.args("historyTypes") if t in HistoryType._value2member_map_
    }
    label_filter = call.arg("labelId")
    first, size = call.page()
    records = [
        r
        for r in box.history
        if r.id > start
        and (not types or r.type in types)
        and (
            label_filter is None
            or label_filter in r.message.label_ids
            or label_filter in r.label_ids
        )
    ]
    out: dict[str, Any] = {}
    window = records[first : first + size]
    if window:
        out["history"] = [r.resource() for r in window]
    if first + size < len(records):
        out["nextPageToken"] = str(first + size)
    out["historyId"] = str(box.history_id)
    return out
