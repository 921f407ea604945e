"""Gmail v1 method ids → handlers (`api.GmailApi` dispatches through `HANDLERS`).

Each handler takes a `Call` and returns the JSON resource (None → 204); see `gmail_call`.
"""

from __future__ import annotations

from connector.emulator.gmail_call import Handler
from connector.emulator.gmail_drafts import (
    drafts_create,
    drafts_delete,
    drafts_get,
    drafts_list,
    drafts_send,
    drafts_update,
)
from connector.emulator.gmail_labels import (
    get_profile,
    labels_create,
    labels_delete,
    labels_get,
    labels_list,
    labels_update,
)
from connector.emulator.gmail_messages import (
    attachments_get,
    messages_batch_delete,
    messages_batch_modify,
    messages_delete,
    messages_get,
    messages_import,
    messages_insert,
    messages_list,
    messages_modify,
    messages_send,
    messages_trash,
    messages_untrash,
)
from connector.emulator.gmail_threads import (
    history_list,
    threads_delete,
    threads_get,
    threads_list,
    threads_modify,
    threads_trash,
    threads_untrash,
)
from connector.emulator.gmail_users import (
    get_vacation,
    send_as_get,
    send_as_list,
    update_vacation,
    users_stop,
    users_watch,
)

HANDLERS: dict[str, Handler] = {
    "watch": users_watch,
    "stop": users_stop,
    "settings.sendAs.list": send_as_list,
    "settings.sendAs.get": send_as_get,
    "settings.getVacation": get_vacation,
    "settings.updateVacation": update_vacation,
    "getProfile": get_profile,
    "labels.list": labels_list,
    "labels.get": labels_get,
    "labels.create": labels_create,
    "labels.update": labels_update,
    "labels.patch": labels_update,
    "labels.delete": labels_delete,
    "messages.list": messages_list,
    "messages.get": messages_get,
    "messages.send": messages_send,
    "messages.insert": messages_insert,
    "messages.import": messages_import,
    "messages.modify": messages_modify,
    "messages.batchModify": messages_batch_modify,
    "messages.trash": messages_trash,
    "messages.untrash": messages_untrash,
    "messages.delete": messages_delete,
    "messages.batchDelete": messages_batch_delete,
    "messages.attachments.get": attachments_get,
    "threads.list": threads_list,
    "threads.get": threads_get,
    "threads.modify": threads_modify,
    "threads.trash": threads_trash,
    "threads.untrash": threads_untrash,
    "threads.delete": threads_delete,
    "drafts.create": drafts_create,
    "drafts.update": drafts_update,
    "drafts.get": drafts_get,
    "drafts.list": drafts_list,
    "drafts.delete": drafts_delete,
    "drafts.send": drafts_send,
    "history.list": history_list,
}
