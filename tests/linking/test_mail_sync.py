"""Durable sync over the emulator (SQLite and PostgreSQL): history → change feed through the
gate, a stale cursor's bounded re-scan, a poison history entry retried then quarantined."""

from __future__ import annotations

from typing import Any

import pytest

from audit.vocab import Action, ActorKind, Purpose
from connector.accounts.changes import Change, ChangeKind, entry_changes
from connector.accounts.mail_sync import MailSync, SyncOutcome
from connector.accounts.sync_store import SyncStore
from connector.emulator.state import HistoryRecord, HistoryType, Mailbox
from connector.errors import AccountNotLinkedError, HistoryEntryError
from connector.gmail import GmailClient
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.testing.memory import MemoryBasisFacts, MemoryUsageCounter
from tests.linking.conftest import HASH_KEY, Linking, link_account

RAW = b"From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


class _Poison(HistoryRecord):
    """A history entry in a shape Gmail never sends: a label change without a message id."""

    def resource(self) -> dict[str, Any]:
        return {"id": str(self.id), "labelsAdded": [{"message": {"threadId": "t"}}]}


def _wire(w: Linking, **kwargs: Any) -> tuple[MailSync, SyncStore]:
    client = GmailClient(w.emu.gmail_endpoint, w.token_source(), w.session)
    gate = Gate(client, Recorder(w.audit), w.accounts, MemoryBasisFacts(), MemoryUsageCounter(),
                hash_key=HASH_KEY)  # fmt: skip
    store = SyncStore(w.engine)
    return MailSync(gate, store, **kwargs), store


def _box(w: Linking, email: str | None) -> Mailbox:
    assert email is not None
    box = w.emu.state.mailbox(email)
    assert box is not None
    return box


async def test_history_becomes_ordered_change_events_through_the_gate(linking: Linking) -> None:
    """Baseline first; then new mail, a label added and removed, a deletion are recorded as
    ordered events with ids only; the cursor follows Gmail's historyId; every read is audited
    as the connector (SERVICE) for the user-facing feature."""
    w = linking
    account = await link_account(w)
    sync, store = _wire(w)
    first = await sync.sync(account.id)
    assert first.outcome is SyncOutcome.BASELINE
    assert (await store.state(account.id)).last_full_sync_at is not None
    box = _box(w, account.email)
    msg = box.add_message(RAW, ["INBOX", "UNREAD"])
    box.modify(msg, ["STARRED"], ["UNREAD"])
    box.delete_message(msg)
    report = await sync.sync(account.id)
    assert (report.outcome, report.changes) == (SyncOutcome.SYNCED, 4)
    feed = await store.changes(account.id)
    assert [(c.change.kind, c.change.message_id) for c in feed] == [
        (ChangeKind.MESSAGE_ADDED, msg.id), (ChangeKind.LABELS_ADDED, msg.id),
        (ChangeKind.LABELS_REMOVED, msg.id), (ChangeKind.MESSAGE_DELETED, msg.id),
    ]  # fmt: skip
    assert [c.change.label_ids for c in feed[1:3]] == [("STARRED",), ("UNREAD",)]
    assert [c.seq for c in feed] == sorted(c.seq for c in feed)
    assert "subject" not in str([c.as_json() for c in feed]).lower()
    state = await store.state(account.id)
    assert state.history_id == str(box.history_id)
    assert state.consecutive_failures == 0
    assert (await sync.sync(account.id)).changes == 0
    assert await store.changes(account.id, after=feed[-1].seq) == []
    reads = [e for e in w.audit.events if e.action is Action.GMAIL_SYNC]
    assert len(reads) >= 2
    assert {(e.actor.kind, e.purpose) for e in reads} == {(ActorKind.SERVICE, Purpose.USER_FEATURE)}


async def test_a_commit_for_an_account_not_linked_writes_nothing(linking: Linking) -> None:
    """The commit (one statement on PostgreSQL, a transaction on SQLite) of an account that is
    not (or no longer) linked is refused whole: no change, no cursor; a linked one goes on."""
    w = linking
    account = await link_account(w)
    store = SyncStore(w.engine)
    added = [Change(ChangeKind.MESSAGE_ADDED, "7", "m1", "t1")]
    with pytest.raises(AccountNotLinkedError):
        await store.commit("acct-gone", "7", added)
    assert await store.changes("acct-gone") == []
    assert (await store.state("acct-gone")).history_id is None
    several = [Change(ChangeKind.MESSAGE_ADDED, "7", f"m{n}", "t1") for n in (3, 1, 2)]
    seqs = await store.commit(account.id, "7", several, full_sync=True)
    assert seqs == sorted(seqs)
    feed = await store.changes(account.id)
    assert [(c.seq, c.change.message_id) for c in feed] == list(zip(seqs, ["m3", "m1", "m2"]))
    state = await store.state(account.id)
    assert (state.history_id, state.consecutive_failures) == ("7", 0)
    assert state.last_full_sync_at is not None


async def test_stale_cursor_triggers_a_bounded_rescan(linking: Linking) -> None:
    """Gmail's 404 for an expired cursor becomes one `resync` event naming at most
    `resync_limit` newest message ids; the cursor jumps to the profile's historyId."""
    w = linking
    account = await link_account(w)
    sync, store = _wire(w, resync_limit=3)
    await sync.sync(account.id)
    box = _box(w, account.email)
    newest = [box.add_message(RAW, ["INBOX"]) for _ in range(4)]
    box.history_floor = box.history_id + 1  # every earlier cursor is now outside the window
    before = (await store.state(account.id)).last_full_sync_at
    report = await sync.sync(account.id)
    assert report.outcome is SyncOutcome.RESYNCED
    [event] = await store.changes(account.id)
    assert event.change.kind is ChangeKind.RESYNC
    assert list(event.change.message_ids) == [m.id for m in reversed(newest)][:3]
    state = await store.state(account.id)
    assert state.history_id == str(box.history_id)
    assert before is not None
    assert state.last_full_sync_at is not None
    assert state.last_full_sync_at >= before


async def test_poison_entry_is_retried_then_quarantined_and_reported(linking: Linking) -> None:
    """A malformed history entry fails the run (cursor kept, failures counted) until its
    third failure; then it is quarantined, reported in the feed, and the good changes around
    it are recorded exactly once."""
    w = linking
    account = await link_account(w)
    sync, store = _wire(w, quarantine_after=3)
    await sync.sync(account.id)
    cursor = (await store.state(account.id)).history_id
    box = _box(w, account.email)
    good = box.add_message(RAW, ["INBOX"])
    poison_id = box.history_id + 1
    box.history_id = poison_id
    box.history.append(_Poison(poison_id, HistoryType.LABEL_ADDED, good, ["STARRED"]))
    after = box.add_message(RAW, ["INBOX"])
    for attempt in (1, 2):
        with pytest.raises(HistoryEntryError):
            await sync.sync(account.id)
        state = await store.state(account.id)
        assert (state.history_id, state.consecutive_failures) == (cursor, attempt)
        assert await store.changes(account.id) == []
    report = await sync.sync(account.id)
    assert report.quarantined == (str(poison_id),)
    feed = [(c.change.kind, c.change.message_id or c.change.history_id)
            for c in await store.changes(account.id)]  # fmt: skip
    assert feed == [
        (ChangeKind.MESSAGE_ADDED, good.id),
        (ChangeKind.ENTRY_QUARANTINED, str(poison_id)),
        (ChangeKind.MESSAGE_ADDED, after.id),
    ]
    [entry] = await store.quarantine(account.id)
    assert (entry.entry_id, entry.attempts) == (str(poison_id), 3)
    assert entry.reason == "entry.bad_message"
    assert entry.quarantined_at is not None
    assert (await store.state(account.id)).consecutive_failures == 0
    assert (await sync.sync(account.id)).changes == 0


def test_entry_changes_reads_gmail_shapes_and_refuses_others() -> None:
    """Each documented entry kind maps to its event with message, thread and label ids;
    a missing id, a message without id or labels that are not strings raise with a code."""
    entry = {
        "id": "7", "messages": [{"id": "m", "threadId": "t"}],
        "labelsRemoved": [{"message": {"id": "m", "threadId": "t"}, "labelIds": ["UNREAD"]}],
    }  # fmt: skip
    [change] = entry_changes(entry)
    assert change.as_json() == {"kind": "labels_removed", "historyId": "7", "messageId": "m",
                                "threadId": "t", "labelIds": ["UNREAD"]}  # fmt: skip
    assert entry_changes({"id": "8", "messages": [{"id": "m"}]}) == []
    bad: list[tuple[dict[str, Any], str]] = [
        ({"messagesAdded": [{"message": {"id": "m"}}]}, "entry.no_id"),
        ({"id": "9", "messagesAdded": [{"message": {}}]}, "entry.bad_message"),
        ({"id": "9", "messagesDeleted": "m"}, "entry.bad_message"),
        (
            {"id": "9", "labelsAdded": [{"message": {"id": "m"}, "labelIds": [1]}]},
            "entry.bad_labels",
        ),
    ]
    for record, reason in bad:
        with pytest.raises(HistoryEntryError) as caught:
            entry_changes(record)
        assert caught.value.reason == reason
