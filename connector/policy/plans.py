"""Plans: pure values saying what one Gmail operation touches, needs and calls.

A `Plan` names the audit action, the policy operation, the resources recorded, the messages a
human basis must cover, how the gate may learn which messages an operator really touches, and the
Gmail call itself (a function of the `MailboxPort`, run only after the decision is durable). The
gate (`connector.policy.gate`) runs any plan the same way; adding an operation is adding a plan.

Nothing here does I/O: a plan is built by the caller and inspected by tests without a mailbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar, Unpack

from audit.event import Basis, ResourceRef
from audit.vocab import Action, ResourceKind
from connector.errors import PolicyInputError
from connector.policy.vocab import Operation
from connector.ports import Fetch, Format, GmailJson, ListOptions, MailboxPort, OutgoingMessage

T = TypeVar("T")

# The Gmail call: given the mailbox and the search query as the gate bounded it (or None).
Call = Callable[[MailboxPort, str | None], Awaitable[T]]
# The messages an operation touches, fetched with ids and dates only (format=minimal).
Members = Callable[[MailboxPort], Awaitable[list[GmailJson]]]
Refs = Callable[[T], tuple[ResourceRef, ...]]

_FORMATS: Mapping[Format, tuple[Operation, Action]] = {
    Format.FULL: (Operation.CONTENT_READ, Action.GMAIL_MESSAGE_READ),
    Format.RAW: (Operation.CONTENT_READ, Action.GMAIL_MESSAGE_READ),
    Format.METADATA: (Operation.METADATA_READ, Action.GMAIL_METADATA_READ),
    Format.MINIMAL: (Operation.METADATA_READ, Action.GMAIL_METADATA_READ),
}


def _no_refs(_result: object) -> tuple[ResourceRef, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class Plan(Generic[T]):
    """One gated Gmail operation, described; `connector.policy.gate.Gate.run` carries it out."""

    action: Action
    operation: Operation
    account_id: str
    call: Call[T]
    basis: Basis | None = None
    resources: tuple[ResourceRef, ...] = ()
    # Named messages a consent or approval must cover.
    message_ids: frozenset[str] = frozenset()
    # Reaches the mailbox beyond named messages (list, search, labels, profile, drafts).
    mailbox_wide: bool = False
    # False while the touched messages are unknown (a thread): `members` must resolve them.
    resolved: bool = True
    members: Members | None = None
    # A search: recorded as a keyed hash; for an operator bounded to the approved time range.
    query: str | None = None
    result_refs: Refs[T] = _no_refs
    # After a thread is fetched, the messages really returned (checked against the basis again).
    fetched: Callable[[T], list[GmailJson]] | None = None
    # False for a replayed send: answered from the record, not counted as another access.
    counted: bool = True


def refs(kind: ResourceKind, ids: Iterable[str]) -> tuple[ResourceRef, ...]:
    return tuple(ResourceRef(kind, i) for i in ids)


def internal_date(message: GmailJson) -> datetime | None:
    raw = message.get("internalDate")
    return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, UTC)


def members_of(messages: Iterable[GmailJson]) -> tuple[frozenset[str], dict[str, datetime]]:
    """Ids and dates of `messages`, what the policy needs to check a time-range approval."""
    ids: set[str] = set()
    times: dict[str, datetime] = {}
    for message in messages:
        ids.add(message["id"])
        when = internal_date(message)
        if when is not None:
            times[message["id"]] = when
    return frozenset(ids), times


def sent_refs(result: GmailJson) -> tuple[ResourceRef, ...]:
    """The message, thread and (for a draft) draft ids in a send or draft answer."""
    message = result.get("message", result)
    found = []
    if "id" in message:
        found.append(ResourceRef(ResourceKind.MESSAGE, message["id"]))
    if "threadId" in message:
        found.append(ResourceRef(ResourceKind.THREAD, message["threadId"]))
    if "message" in result and "id" in result:
        found.append(ResourceRef(ResourceKind.DRAFT, result["id"]))
    return tuple(found)


def _format(fmt: str) -> tuple[Format, Operation, Action]:
    """`fmt` as asked (a caller's text or a `Format`), checked, with what reading it is."""
    try:
        known = Format(fmt)
    except ValueError:
        raise PolicyInputError(
            f"format must be one of {sorted(f.value for f in Format)}, got {fmt!r}"
        ) from None
    return (known, *_FORMATS[known])


def _message_members(account_id: str, ids: list[str]) -> Members:
    async def members(mailbox: MailboxPort) -> list[GmailJson]:
        return await mailbox.get_messages(account_id, ids, Fetch(Format.MINIMAL))

    return members


# -- reads ----------------------------------------------------------------------------------


def _mailbox_metadata(action: Action, account_id: str, call: Call[T]) -> Plan[T]:
    """A read of what the whole mailbox says about itself: ids, labels, cursors, never content."""
    return Plan(action, Operation.METADATA_READ, account_id, call, mailbox_wide=True)


def profile(account_id: str) -> Plan[GmailJson]:
    return _mailbox_metadata(
        Action.GMAIL_PROFILE_READ, account_id, lambda m, _q: m.get_profile(account_id)
    )


def history(account_id: str, start_history_id: str) -> Plan[list[GmailJson]]:
    """Every history.list page since the cursor: message, thread and label ids, no content."""
    return _mailbox_metadata(
        Action.GMAIL_SYNC, account_id,
        lambda m, _q: m.list_history_pages(account_id, start_history_id),
    )  # fmt: skip


def watch(account_id: str, topic: str) -> Plan[GmailJson]:
    """users.watch: Gmail will announce each change (address and historyId, no content)."""
    return _mailbox_metadata(
        Action.GMAIL_WATCH, account_id, lambda m, _q: m.watch(account_id, topic)
    )


def stop_watch(account_id: str) -> Plan[None]:
    return _mailbox_metadata(
        Action.GMAIL_WATCH_STOP, account_id, lambda m, _q: m.stop_watch(account_id)
    )


def labels(account_id: str) -> Plan[GmailJson]:
    return _mailbox_metadata(
        Action.GMAIL_LABEL_LIST, account_id, lambda m, _q: m.list_labels(account_id)
    )


def message_list(
    account_id: str, *, basis: Basis | None = None, **options: Unpack[ListOptions]
) -> Plan[GmailJson]:
    """Message stubs; the audit log gets a keyed hash of the query sent, never its text."""

    def call(mailbox: MailboxPort, sent_query: str | None) -> Awaitable[GmailJson]:
        return mailbox.list_messages(account_id, **options | {"query": sent_query})

    return Plan(
        Action.GMAIL_MESSAGE_LIST, Operation.METADATA_READ, account_id, call, basis=basis,
        resources=refs(ResourceKind.LABEL, options.get("label_ids", ())), mailbox_wide=True,
        query=options.get("query") or "",
        result_refs=lambda r: refs(ResourceKind.MESSAGE, (m["id"] for m in r.get("messages", []))),
    )  # fmt: skip


def message(
    account_id: str,
    message_id: str,
    fmt: str = Format.FULL,
    basis: Basis | None = None,
    *,
    metadata_headers: tuple[str, ...] = (),
) -> Plan[GmailJson]:
    known, operation, action = _format(fmt)
    fetch = Fetch(known, metadata_headers)
    return Plan(
        action, operation, account_id,
        lambda m, _q: m.get_message(account_id, message_id, fetch),
        basis=basis, resources=(ResourceRef(ResourceKind.MESSAGE, message_id),),
        message_ids=frozenset({message_id}),
        members=_message_members(account_id, [message_id]),
        result_refs=lambda r: refs(ResourceKind.THREAD, [r["threadId"]] if "threadId" in r else []),
    )  # fmt: skip


def messages(
    account_id: str,
    message_ids: list[str],
    fmt: str = Format.METADATA,
    basis: Basis | None = None,
    *,
    metadata_headers: tuple[str, ...] = (),
) -> Plan[list[GmailJson]]:
    """A batched read of named messages: one decision covers all of them, or none."""
    known, operation, action = _format(fmt)
    fetch = Fetch(known, metadata_headers)
    ids = list(dict.fromkeys(message_ids))
    return Plan(
        action, operation, account_id,
        lambda m, _q: m.get_messages(account_id, ids, fetch),
        basis=basis, resources=refs(ResourceKind.MESSAGE, ids), message_ids=frozenset(ids),
        members=_message_members(account_id, ids),
    )  # fmt: skip


def thread(
    account_id: str, thread_id: str, fmt: str = Format.FULL, basis: Basis | None = None
) -> Plan[GmailJson]:
    """A thread is opened for an operator only if every message in it is covered."""
    known, operation, _ = _format(fmt)

    async def members(mailbox: MailboxPort) -> list[GmailJson]:
        found = await mailbox.get_thread(account_id, thread_id, fmt=Format.MINIMAL)
        return list(found.get("messages", []))

    def fetched(result: GmailJson) -> list[GmailJson]:
        return list(result.get("messages", []))

    return Plan(
        Action.GMAIL_THREAD_READ, operation, account_id,
        lambda m, _q: m.get_thread(account_id, thread_id, fmt=known), basis=basis,
        resources=(ResourceRef(ResourceKind.THREAD, thread_id),), resolved=False,
        members=members, fetched=fetched,
        result_refs=lambda r: refs(ResourceKind.MESSAGE, sorted(members_of(fetched(r))[0])),
    )  # fmt: skip


def attachment(
    account_id: str, message_id: str, attachment_id: str, basis: Basis | None = None
) -> Plan[AsyncIterator[bytes]]:
    """Streamed: `Gate.stream` records the outcome once Gmail delivered the first chunk."""

    async def call(mailbox: MailboxPort, _q: str | None) -> AsyncIterator[bytes]:
        return aiter(mailbox.stream_attachment(account_id, message_id, attachment_id))

    return Plan(
        Action.GMAIL_ATTACHMENT_READ, Operation.ATTACHMENT_READ, account_id, call, basis=basis,
        resources=(
            ResourceRef(ResourceKind.MESSAGE, message_id),
            ResourceRef(ResourceKind.ATTACHMENT, attachment_id),
        ),
        message_ids=frozenset({message_id}), members=_message_members(account_id, [message_id]),
    )  # fmt: skip


# -- drafts and sending: the owner's own mail, never under a human basis --------------------


def _own(
    action: Action,
    operation: Operation,
    account_id: str,
    call: Call[T],
    *,
    draft_id: str | None = None,
    thread_id: str | None = None,
    result_refs: Refs[T] = _no_refs,
    counted: bool = True,
) -> Plan[T]:
    resources = refs(ResourceKind.DRAFT, [draft_id] if draft_id else [])
    resources += refs(ResourceKind.THREAD, [thread_id] if thread_id else [])
    return Plan(
        action, operation, account_id, call, resources=resources,
        mailbox_wide=draft_id is None and thread_id is None, result_refs=result_refs,
        counted=counted,
    )  # fmt: skip


def draft_list(
    account_id: str, *, page_token: str | None = None, max_results: int = 100
) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_DRAFT_LIST, Operation.DRAFT_READ, account_id,
        lambda m, _q: m.list_drafts(account_id, page_token=page_token, max_results=max_results),
        result_refs=lambda r: refs(ResourceKind.DRAFT, (d["id"] for d in r.get("drafts", []))),
    )  # fmt: skip


def draft(account_id: str, draft_id: str) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_DRAFT_READ, Operation.DRAFT_READ, account_id,
        lambda m, _q: m.get_draft(account_id, draft_id), draft_id=draft_id, result_refs=sent_refs,
    )  # fmt: skip


def draft_create(account_id: str, message: OutgoingMessage) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_DRAFT_CREATE, Operation.DRAFT_WRITE, account_id,
        lambda m, _q: m.create_draft(account_id, message), thread_id=message.thread_id,
        result_refs=sent_refs,
    )  # fmt: skip


def draft_update(account_id: str, draft_id: str, message: OutgoingMessage) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_DRAFT_UPDATE, Operation.DRAFT_WRITE, account_id,
        lambda m, _q: m.update_draft(account_id, draft_id, message), draft_id=draft_id,
        thread_id=message.thread_id, result_refs=sent_refs,
    )  # fmt: skip


def draft_delete(account_id: str, draft_id: str) -> Plan[None]:
    return _own(
        Action.GMAIL_DRAFT_DELETE, Operation.DRAFT_WRITE, account_id,
        lambda m, _q: m.delete_draft(account_id, draft_id), draft_id=draft_id,
    )  # fmt: skip


def draft_send(account_id: str, draft_id: str) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_DRAFT_SEND, Operation.MESSAGE_SEND, account_id,
        lambda m, _q: m.send_draft(account_id, draft_id), draft_id=draft_id,
        result_refs=sent_refs,
    )  # fmt: skip


def send(account_id: str, message: OutgoingMessage) -> Plan[GmailJson]:
    return _own(
        Action.GMAIL_MESSAGE_SEND, Operation.MESSAGE_SEND, account_id,
        lambda m, _q: m.send_message(account_id, message), thread_id=message.thread_id,
        result_refs=sent_refs,
    )  # fmt: skip


def draft_create_replayed(account_id: str, created: GmailJson) -> Plan[GmailJson]:
    """A client's retry of a draft create that already happened (same Idempotency-Key),
    answered with that draft: decided and audited like a create, Gmail not called."""

    async def answer(_m: MailboxPort, _q: str | None) -> GmailJson:
        return created

    message = created.get("message")
    thread_id = message.get("threadId") if isinstance(message, dict) else None
    return _own(
        Action.GMAIL_DRAFT_CREATE_REPLAYED, Operation.DRAFT_WRITE, account_id, answer,
        thread_id=thread_id, result_refs=sent_refs, counted=False,
    )  # fmt: skip


def send_replayed(account_id: str, sent: GmailJson) -> Plan[GmailJson]:
    """A client's retry of a send that already happened, answered with that send's result.

    Decided and audited like a send (refused if the caller lost access meanwhile), under its own
    action so the trail shows no second send; Gmail is not called and usage is not counted.
    """
    thread_id = sent.get("threadId")

    async def answer(_m: MailboxPort, _q: str | None) -> GmailJson:
        return sent

    return _own(
        Action.GMAIL_MESSAGE_SEND_REPLAYED, Operation.MESSAGE_SEND, account_id, answer,
        thread_id=thread_id, result_refs=sent_refs, counted=False,
    )  # fmt: skip
