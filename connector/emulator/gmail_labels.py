"""Gmail v1 `users.getProfile` and `users.labels` handlers."""

from __future__ import annotations

from typing import Any

from connector.emulator import errors
from connector.emulator.gmail_call import Call
from connector.emulator.state import Mailbox


def get_profile(call: Call) -> dict[str, Any]:
    box = call.box
    return {
        "emailAddress": box.email,
        "messagesTotal": len(box.messages),
        "threadsTotal": len(box.threads),
        "historyId": str(box.history_id),
    }


def labels_list(call: Call) -> dict[str, Any]:
    return {"labels": [label.resource() for label in call.box.labels.values()]}


def _label_counts(box: Mailbox, label_id: str) -> dict[str, Any]:
    messages = [m for m in box.messages.values() if label_id in m.label_ids]
    unread = [m for m in messages if "UNREAD" in m.label_ids]
    return {
        "messagesTotal": len(messages),
        "messagesUnread": len(unread),
        "threadsTotal": len({m.thread_id for m in messages}),
        "threadsUnread": len({m.thread_id for m in unread}),
    }


def labels_get(call: Call) -> dict[str, Any]:
    label = call.box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    return {**label.resource(), **_label_counts(call.box, label.id)}


def labels_create(call: Call) -> dict[str, Any]:
    data = call.json()
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid_argument("Invalid label name")
    if call.box.label_by_name(name) is not None:
        raise errors.GmailError(409, "Label name exists or conflicts", errors.Reason.DUPLICATE)
    label = call.box.create_label(
        name.strip(),
        messageListVisibility=data.get("messageListVisibility"),
        labelListVisibility=data.get("labelListVisibility"),
    )
    return label.resource()


def labels_update(call: Call) -> dict[str, Any]:
    label = call.box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    if label.type == "system":
        raise errors.invalid_argument("Invalid label: cannot modify system label")
    data = call.json()
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        label.name = name.strip()
        call.box.search_cache.clear()  # label: queries match by name
    if isinstance(data.get("messageListVisibility"), str):
        label.message_list_visibility = data["messageListVisibility"]
    if isinstance(data.get("labelListVisibility"), str):
        label.label_list_visibility = data["labelListVisibility"]
    return label.resource()


def labels_delete(call: Call) -> None:
    box = call.box
    label = box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    if label.type == "system":
        raise errors.invalid_argument("Invalid label: cannot delete system label")
    for msg in list(box.messages.values()):
        if label.id in msg.label_ids:
            box.modify(msg, [], [label.id])
    del box.labels[label.id]
