"""Plans for organizing the owner's mail and reading/writing his mail settings (issue #14).

Label changes (archive = remove INBOX, read = remove UNREAD, star, important, spam), trash and
untrash of messages and threads, the owner's labels, thread listing, send-as identities and the
vacation responder. Each is a `Plan` the gate runs like any other: decided, recorded, called,
recorded. A label change records which labels it adds and removes as `add:<id>` / `remove:<id>`
label refs next to the messages or thread it touches, so the trail says "archived", not only
"changed". Permanent deletion has no plan: it needs https://mail.google.com/.

The grants (`rules.user.own_mailbox`) give these operations to the owner alone; a human with a
consent or an approval may read, never modify.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar, Unpack

from audit.event import MAX_RESOURCES, ResourceRef
from audit.vocab import Action, ResourceKind
from connector.policy.plans import Call, Plan, Refs, refs
from connector.policy.vocab import Operation
from connector.ports import GmailJson, ListOptions, MailboxPort

T = TypeVar("T")
BATCH_MODIFY_MAX = 1000  # Gmail's cap on ids in one messages.batchModify


def _none(_result: object) -> tuple[ResourceRef, ...]:
    return ()


def label_changes(add: Sequence[str], remove: Sequence[str]) -> tuple[ResourceRef, ...]:
    """What a modify does to labels, as refs the audit trail can show."""
    return refs(ResourceKind.LABEL, [f"add:{label}" for label in add]) + refs(
        ResourceKind.LABEL, [f"remove:{label}" for label in remove]
    )


def _owner(
    action: Action,
    operation: Operation,
    account_id: str,
    call: Call[T],
    resources: tuple[ResourceRef, ...] = (),
    *,
    message_ids: Sequence[str] = (),
    result_refs: Refs[T] = _none,
    query: str | None = None,
) -> Plan[T]:
    """An owner-only plan; mailbox-wide unless it names messages or a thread."""
    names = any(r.kind in (ResourceKind.MESSAGE, ResourceKind.THREAD) for r in resources)
    return Plan(
        action, operation, account_id, call, resources=resources,
        message_ids=frozenset(message_ids), mailbox_wide=not names, query=query,
        result_refs=result_refs,
    )  # fmt: skip


def _label_ref(result: GmailJson) -> tuple[ResourceRef, ...]:
    return refs(ResourceKind.LABEL, [result["id"]] if "id" in result else [])


# -- labels ---------------------------------------------------------------------------------


def label_create(account_id: str, label: Mapping[str, Any]) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_LABEL_CREATE, Operation.LABEL_WRITE, account_id,
        lambda m, _q: m.create_label(account_id, label), result_refs=_label_ref,
    )  # fmt: skip


def label_update(account_id: str, label_id: str, changes: Mapping[str, Any]) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_LABEL_UPDATE, Operation.LABEL_WRITE, account_id,
        lambda m, _q: m.update_label(account_id, label_id, changes),
        refs(ResourceKind.LABEL, [label_id]),
    )  # fmt: skip


def label_delete(account_id: str, label_id: str) -> Plan[None]:
    return _owner(
        Action.GMAIL_LABEL_DELETE, Operation.LABEL_WRITE, account_id,
        lambda m, _q: m.delete_label(account_id, label_id), refs(ResourceKind.LABEL, [label_id]),
    )  # fmt: skip


# -- messages -------------------------------------------------------------------------------


def message_modify(
    account_id: str, message_id: str, add: Sequence[str], remove: Sequence[str]
) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_MESSAGE_MODIFY, Operation.MESSAGE_MODIFY, account_id,
        lambda m, _q: m.modify_message(account_id, message_id, add, remove),
        refs(ResourceKind.MESSAGE, [message_id]) + label_changes(add, remove),
        message_ids=[message_id],
    )  # fmt: skip


def batch_modify(
    account_id: str, message_ids: Sequence[str], add: Sequence[str], remove: Sequence[str]
) -> list[Plan[None]]:
    """One plan per Gmail call; usually one. An audit event holds at most MAX_RESOURCES refs and
    every touched message must be named, so ids beyond what fits next to the label refs go in a
    second call with its own decision and outcome instead of being left out of the record."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        raise ValueError("batch_modify needs at least one message id")
    if len(ids) > BATCH_MODIFY_MAX:
        raise ValueError(f"at most {BATCH_MODIFY_MAX} ids per batchModify")
    labels = label_changes(add, remove)
    room = MAX_RESOURCES - len(labels)
    if room < 1:
        raise ValueError("too many label changes to record")

    def plan(chunk: list[str]) -> Plan[None]:
        def call(m: MailboxPort, _q: str | None) -> Awaitable[None]:
            return m.batch_modify(account_id, chunk, add, remove)

        return _owner(
            Action.GMAIL_MESSAGE_BATCH_MODIFY, Operation.MESSAGE_MODIFY, account_id, call,
            refs(ResourceKind.MESSAGE, chunk) + labels, message_ids=chunk,
        )  # fmt: skip

    return [plan(ids[i : i + room]) for i in range(0, len(ids), room)]


def message_trash(account_id: str, message_id: str, *, undo: bool = False) -> Plan[GmailJson]:
    action = Action.GMAIL_MESSAGE_UNTRASH if undo else Action.GMAIL_MESSAGE_TRASH
    return _owner(
        action, Operation.MESSAGE_MODIFY, account_id,
        lambda m, _q: m.trash_message(account_id, message_id, undo=undo),
        refs(ResourceKind.MESSAGE, [message_id]), message_ids=[message_id],
    )  # fmt: skip


# -- threads --------------------------------------------------------------------------------


def _thread_messages(result: GmailJson) -> tuple[ResourceRef, ...]:
    return refs(ResourceKind.MESSAGE, [m["id"] for m in result.get("messages", [])])


def thread_list(account_id: str, **options: Unpack[ListOptions]) -> Plan[GmailJson]:
    """Thread stubs; the audit log gets a keyed hash of the query, never its text."""

    def call(mailbox: MailboxPort, sent_query: str | None) -> Awaitable[GmailJson]:
        return mailbox.list_threads(account_id, **options | {"query": sent_query})

    return _owner(
        Action.GMAIL_THREAD_LIST, Operation.METADATA_READ, account_id, call,
        refs(ResourceKind.LABEL, options.get("label_ids", ())), query=options.get("query") or "",
        result_refs=lambda r: refs(ResourceKind.THREAD, [t["id"] for t in r.get("threads", [])]),
    )  # fmt: skip


def thread_modify(
    account_id: str, thread_id: str, add: Sequence[str], remove: Sequence[str]
) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_THREAD_MODIFY, Operation.MESSAGE_MODIFY, account_id,
        lambda m, _q: m.modify_thread(account_id, thread_id, add, remove),
        refs(ResourceKind.THREAD, [thread_id]) + label_changes(add, remove),
        result_refs=_thread_messages,
    )  # fmt: skip


def thread_trash(account_id: str, thread_id: str, *, undo: bool = False) -> Plan[GmailJson]:
    action = Action.GMAIL_THREAD_UNTRASH if undo else Action.GMAIL_THREAD_TRASH
    return _owner(
        action, Operation.MESSAGE_MODIFY, account_id,
        lambda m, _q: m.trash_thread(account_id, thread_id, undo=undo),
        refs(ResourceKind.THREAD, [thread_id]), result_refs=_thread_messages,
    )  # fmt: skip


# -- settings -------------------------------------------------------------------------------


def send_as_list(account_id: str) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_SEND_AS_LIST, Operation.SETTINGS_READ, account_id,
        lambda m, _q: m.list_send_as(account_id),
    )  # fmt: skip


def vacation(account_id: str) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_VACATION_READ, Operation.SETTINGS_READ, account_id,
        lambda m, _q: m.get_vacation(account_id),
    )  # fmt: skip


def vacation_update(account_id: str, settings: Mapping[str, Any]) -> Plan[GmailJson]:
    return _owner(
        Action.GMAIL_VACATION_UPDATE, Operation.SETTINGS_WRITE, account_id,
        lambda m, _q: m.update_vacation(account_id, settings),
    )  # fmt: skip
