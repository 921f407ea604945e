"""Gmail v1 `users.drafts` handlers."""

from __future__ import annotations

from typing import Any

from connector.emulator import errors, sending
from connector.emulator.gmail_call import Call, paginate
from connector.emulator.query import parse_query
from connector.emulator.render import parse_format, render_message
from connector.emulator.state import Draft
from connector.emulator.upload import parse_upload


def _draft(call: Call, draft_id: str | None = None) -> str:
    value = draft_id if draft_id is not None else call.params["id"]
    if value not in call.box.drafts:
        raise errors.not_found()
    return value


def _draft_resource(call: Call, draft_id: str) -> dict[str, Any]:
    msg = call.box.drafts[draft_id].message
    return {
        "id": draft_id,
        "message": {"id": msg.id, "threadId": msg.thread_id, "labelIds": list(msg.label_ids)},
    }


def _store_draft(call: Call, draft_id: str | None) -> dict[str, Any]:
    raw, thread_id, _labels = call.message_source("message")
    if len(raw) > sending.SEND_SIZE_LIMIT:
        raise errors.invalid_argument(
            f"Request payload size exceeds the limit: {sending.SEND_SIZE_LIMIT} bytes."
        )
    box = call.box
    if thread_id is not None and thread_id not in box.threads:
        raise errors.not_found()
    if draft_id is not None:
        old = box.drafts[draft_id].message
        thread_id = thread_id or (old.thread_id if old.thread_id != old.id else None)
        box.delete_message(old)
    msg = box.add_message(raw, ["DRAFT"], thread_id=thread_id)
    new_id = draft_id or box.new_draft_id()
    box.drafts[new_id] = Draft(new_id, msg)
    return _draft_resource(call, new_id)


def drafts_create(call: Call) -> dict[str, Any]:
    return _store_draft(call, None)


def drafts_update(call: Call) -> dict[str, Any]:
    return _store_draft(call, _draft(call))


def drafts_get(call: Call) -> dict[str, Any]:
    draft_id = _draft(call)
    msg = call.box.drafts[draft_id].message
    fmt = parse_format(call.arg("format"))
    return {"id": draft_id, "message": render_message(msg, fmt, box=call.box)}


def drafts_list(call: Call) -> dict[str, Any]:
    start, size = call.page()
    box = call.box
    query = parse_query(call.arg("q"))
    drafts = [d for d in reversed(box.drafts.values()) if query.matches(d.message, box)]
    return paginate(
        drafts,
        start,
        size,
        "drafts",
        lambda d: {"id": d.id, "message": d.message.stub()},
    )


def drafts_delete(call: Call) -> None:
    draft_id = _draft(call)
    draft = call.box.drafts.pop(draft_id)
    call.box.delete_message(draft.message)


def drafts_send(call: Call) -> dict[str, Any]:
    box = call.box
    if call.upload:
        metadata, _raw = parse_upload(call.arg("uploadType"), call.content_type, call.body)
        draft_id = metadata.get("id")
        if isinstance(draft_id, str) and draft_id in box.drafts:
            _store_draft(call, draft_id)
    else:
        data = call.json()
        draft_id = data.get("id")
        if not isinstance(draft_id, str) or not draft_id:
            if isinstance(data.get("message"), dict) and data["message"].get("raw"):
                created = _store_draft(call, None)
                draft_id = created["id"]
            else:
                raise errors.invalid_argument("Invalid draft")
        elif isinstance(data.get("message"), dict) and data["message"].get("raw"):
            _store_draft(call, _draft(call, draft_id))
    if not isinstance(draft_id, str):
        raise errors.invalid_argument("Invalid draft")
    draft = box.drafts.pop(_draft(call, draft_id))
    msg = draft.message
    thread_id = msg.thread_id if msg.thread_id != msg.id else None
    box.delete_message(msg)
    sent = sending.send(call.state, box, msg.raw, thread_id)
    return {"id": sent.id, "threadId": sent.thread_id, "labelIds": list(sent.label_ids)}
