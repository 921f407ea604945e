"""Gmail v1 `users.messages` handlers (and `messages.attachments.get`)."""

from __future__ import annotations

from typing import Any

from connector.emulator import errors, sending
from connector.emulator.gmail_call import Call, label_changes, paginate
from connector.emulator.mime_parse import b64url
from connector.emulator.render import parse_format, render_message
from connector.emulator.state import Message


def messages_list(call: Call) -> dict[str, Any]:
    start, size = call.page()
    return paginate(call.matching(), start, size, "messages", Message.stub)


def messages_get(call: Call) -> dict[str, Any]:
    msg = call.message()
    return render_message(msg, parse_format(call.arg("format")), call.args("metadataHeaders"))


def messages_send(call: Call) -> dict[str, Any]:
    raw, thread_id, _labels = call.message_source(None)
    sent = sending.send(call.state, call.box, raw, thread_id)
    return {"id": sent.id, "threadId": sent.thread_id, "labelIds": ["SENT"]}


def messages_insert(call: Call) -> dict[str, Any]:
    """messages.insert and messages.import: store the message as given, no sending."""
    raw, thread_id, labels = call.message_source(None)
    call.check_labels(labels)
    msg = call.box.add_message(raw, labels, thread_id=thread_id)
    return msg.minimal()


def messages_modify(call: Call) -> dict[str, Any]:
    msg = call.message()
    add, remove = label_changes(call.json())
    call.check_labels(add + remove)
    call.box.modify(msg, add, remove)
    return msg.minimal()


def messages_batch_modify(call: Call) -> None:
    data = call.json()
    add, remove = label_changes(data)
    call.check_labels(add + remove)
    for mid in data.get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.modify(msg, add, remove)


def messages_trash(call: Call) -> dict[str, Any]:
    msg = call.message()
    call.box.modify(msg, ["TRASH"], [])
    return msg.minimal()


def messages_untrash(call: Call) -> dict[str, Any]:
    msg = call.message()
    call.box.modify(msg, [], ["TRASH"])
    return msg.minimal()


def messages_delete(call: Call) -> None:
    call.box.delete_message(call.message())


def messages_batch_delete(call: Call) -> None:
    for mid in call.json().get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.delete_message(msg)


def attachments_get(call: Call) -> dict[str, Any]:
    msg = call.message("messageId")
    data = msg.parsed.attachments.get(call.params["id"])
    if data is None:
        raise errors.invalid_argument("Invalid attachment token")
    return {"attachmentId": call.params["id"], "size": len(data), "data": b64url(data)}
