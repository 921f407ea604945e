"""Sync: pure cursor folding, full and incremental sync against the emulator's truth."""

from __future__ import annotations

from connector.emulator.faults import FaultConfig
from connector.gmail import SyncKind, errors
from connector.gmail.sync import HistoryChanges, MailboxSnapshot, apply_changes, fold_history
from connector.mime import Composition, compose


def record(kind: str, mid: str) -> dict:
    return {"id": "1", "messages": [{"id": mid}], kind: [{"message": {"id": mid}}]}


def test_fold_added_then_deleted_is_deleted():
    """A message added and deleted within one run ends up deleted, not fetched."""
    changes = fold_history([record("messagesAdded", "a"), record("messagesDeleted", "a")])
    assert changes == HistoryChanges(frozenset(), frozenset({"a"}))


def test_fold_touches_label_changes_and_unknown_types():
    """Label changes and ids listed under an unknown record type are all refetched."""
    changes = fold_history(
        [
            record("labelsAdded", "a"),
            record("labelsRemoved", "b"),
            {"id": "2", "messages": [{"id": "c"}], "somethingNew": [{}]},
        ]
    )
    assert changes.touched == {"a", "b", "c"}
    assert not changes.deleted


def test_apply_changes_replaces_and_removes():
    """Touched ids are replaced by fetched metadata; None or deletion removes them."""
    before = MailboxSnapshot("10", {"a": {"id": "a"}, "b": {"id": "b"}, "c": {"id": "c"}})
    changes = HistoryChanges(frozenset({"a", "d", "c"}), frozenset({"b"}))
    fetched = {"a": {"id": "a", "labelIds": ["X"]}, "d": {"id": "d"}, "c": None}
    after = apply_changes(before, changes, fetched, "12")
    assert after.history_id == "12"
    assert dict(after.messages) == {"a": {"id": "a", "labelIds": ["X"]}, "d": {"id": "d"}}
    assert before.messages["b"] == {"id": "b"}  # the old snapshot is untouched


def truth(emu, email: str) -> dict[str, tuple[str, frozenset[str]]]:
    box = emu.state.mailbox(email)
    return {m.id: (m.thread_id, frozenset(m.label_ids)) for m in box.messages.values()}


def synced(snapshot: MailboxSnapshot) -> dict[str, tuple[str, frozenset[str]]]:
    return {
        mid: (m["threadId"], frozenset(m.get("labelIds", [])))
        for mid, m in snapshot.messages.items()
    }


def mutate(emu, email: str, round_no: int) -> None:
    """Label changes, deletions and new mail straight in the emulator's state."""
    box = emu.state.mailbox(email)
    messages = sorted(box.messages.values(), key=lambda m: m.id)
    for i, msg in enumerate(messages[round_no::5]):
        if i % 3 == 0:
            box.modify(msg, ["STARRED"], ["UNREAD"])
        elif i % 3 == 1:
            box.modify(msg, ["UNREAD"], ["INBOX"])
    for msg in messages[round_no : round_no + 2]:
        box.delete_message(msg)
    raw = f"From: x@example.com\r\nTo: {email}\r\nSubject: r{round_no}\r\n\r\nbody\r\n".encode()
    box.add_message(raw, ["INBOX", "UNREAD"])


async def test_full_then_incremental_matches_truth(emu, user, client):
    """Full sync, then sends, label changes, deletions and arrivals: incremental equals truth."""
    first = await client.full_sync(user)
    assert first.kind is SyncKind.FULL
    assert synced(first.snapshot) == truth(emu, user)
    for n in range(3):
        message = compose(Composition(sender=user, to=[emu.users[1]], subject=f"s{n}", text="t"))
        await client.send_message(user, message)
    mutate(emu, user, 0)
    second = await client.incremental_sync(user, first.snapshot)
    assert second.kind is SyncKind.INCREMENTAL
    assert second.changed > 0
    assert synced(second.snapshot) == truth(emu, user)
    assert int(second.snapshot.history_id) > int(first.snapshot.history_id)
    quiet = await client.incremental_sync(user, second.snapshot)
    assert quiet.changed == 0
    assert quiet.snapshot.history_id == second.snapshot.history_id


async def test_history_gap_falls_back_to_full_sync(emu, user, client):
    """An expired cursor (history.list 404) triggers a full sync that equals truth."""
    first = await client.full_sync(user)
    mutate(emu, user, 1)
    box = emu.state.mailbox(user)
    box.history.clear()
    box.history_floor = box.history_id  # history before now is gone, as after a long absence
    result = await client.incremental_sync(user, first.snapshot)
    assert result.kind is SyncKind.FULL
    assert synced(result.snapshot) == truth(emu, user)


async def test_no_change_skipped_under_faults(emu, user, client):
    """With 5xx and drops on every method, each completed sync equals truth; none skips."""
    snapshot = (await client.full_sync(user)).snapshot
    emu.set_faults(FaultConfig(seed=31, error_rate=0.25, drop_rate=0.1))
    completed = 0
    for round_no in range(4):
        mutate(emu, user, round_no)
        box = emu.state.mailbox(user)
        for _ in range(8):  # 16 records per message: more than one 500-record history page
            for msg in list(box.messages.values()):
                box.modify(msg, ["IMPORTANT"], [])
                box.modify(msg, [], ["IMPORTANT"])
        try:
            result = await client.incremental_sync(user, snapshot)
        except (errors.ServerError, errors.NetworkError):
            continue  # the cursor did not move; the next round must still catch everything
        snapshot = result.snapshot
        completed += 1
        assert synced(snapshot) == truth(emu, user)
    emu.set_faults(None)
    final = await client.incremental_sync(user, snapshot)
    assert synced(final.snapshot) == truth(emu, user)
    assert completed >= 1
    assert emu.faults.injected > 0
    assert emu.stats.requests["history.list"] > 4  # paging happened
