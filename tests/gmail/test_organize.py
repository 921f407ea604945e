"""The client's organize and settings calls against the emulator, the mail-sending limit, sync
through Gmail's real history keys, and quota units for every method the client calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.emulator.server import Emulator
from connector.gmail import GmailClient
from connector.gmail.calls import Method
from connector.gmail.errors import InvalidRequestError, SendingPausedError, classify
from connector.gmail.sync import fold_history
from connector.gmail_facts import LEGACY_UNITS, PER_MINUTE_UNITS
from connector.mime import Composition, compose
from tests.gmail.conftest import EmulatorTokenSource

FULL = "https://mail.google.com/"


def _labels(emu: Emulator, user: str, mid: str) -> set[str]:
    box = emu.state.mailbox(user)
    assert box is not None
    return set(box.messages[mid].label_ids)


async def _ids(client: GmailClient, user: str, n: int) -> list[str]:
    page = await client.list_messages(user, max_results=n)
    return [m["id"] for m in page["messages"]]


async def test_modify_archive_read_star_spam(emu: Emulator, user: str, client: GmailClient) -> None:
    """Archive removes INBOX, read removes UNREAD, star adds STARRED, spam adds SPAM."""
    mid = (await _ids(client, user, 1))[0]
    await client.modify_message(user, mid, ["STARRED", "UNREAD"], ["INBOX"])
    assert {"STARRED", "UNREAD"} <= _labels(emu, user, mid)
    assert "INBOX" not in _labels(emu, user, mid)
    answer = await client.modify_message(user, mid, ["SPAM"], ["UNREAD"])
    assert "SPAM" in answer["labelIds"]
    assert "UNREAD" not in _labels(emu, user, mid)


async def test_batch_modify_splits_at_1000_ids(
    emu: Emulator, user: str, client: GmailClient
) -> None:
    """batchModify sends at most 1,000 ids per call: 1,500 ids are two calls of 50 units."""
    box = emu.state.mailbox(user)
    assert box is not None
    raw = f"From: a@example.com\r\nTo: {user}\r\nSubject: bulk\r\n\r\nx\r\n".encode()
    ids = [box.add_message(raw, ["INBOX"]).id for _ in range(1500)]
    emu.stats.reset()
    await client.batch_modify(user, ids, [], ["INBOX"])
    assert emu.stats.requests["messages.batchModify"] == 2
    assert all("INBOX" not in box.messages[i].label_ids for i in ids)


async def test_trash_untrash_and_threads(emu: Emulator, user: str, client: GmailClient) -> None:
    """Trash and untrash a message and a thread; threads.list pages with a query."""
    mid = (await _ids(client, user, 1))[0]
    trashed = await client.trash_message(user, mid)
    assert "TRASH" in trashed["labelIds"]
    restored = await client.trash_message(user, mid, undo=True)
    assert "TRASH" not in restored.get("labelIds", [])
    page = await client.list_threads(user, max_results=2)
    assert len(page["threads"]) == 2
    assert "nextPageToken" in page
    tid = page["threads"][0]["id"]
    thread = await client.trash_thread(user, tid)
    assert all("TRASH" in m["labelIds"] for m in thread["messages"])
    await client.trash_thread(user, tid, undo=True)
    await client.modify_thread(user, tid, ["IMPORTANT"], [])
    box = emu.state.mailbox(user)
    assert box is not None
    assert all("IMPORTANT" in m.label_ids for m in box.threads[tid])
    empty = await client.list_threads(user, query="subject:no-such-subject-anywhere")
    assert empty == {"resultSizeEstimate": 0}


async def test_labels_create_update_delete(client: GmailClient, user: str) -> None:
    """A user label is created, renamed and deleted; a system label cannot be changed."""
    label = await client.create_label(user, {"name": "Quarterly reviews"})
    assert label["type"] == "user"
    renamed = await client.update_label(user, label["id"], {"name": "Bills"})
    assert renamed["name"] == "Bills"
    await client.delete_label(user, label["id"])
    names = [lbl["name"] for lbl in (await client.list_labels(user))["labels"]]
    assert "Bills" not in names
    with pytest.raises(InvalidRequestError):
        await client.update_label(user, "INBOX", {"name": "Mine"})


async def test_settings_reads_and_vacation(
    emu: Emulator, tokens: EmulatorTokenSource, client: GmailClient
) -> None:
    """sendAs list and the vacation responder, read and updated with gmail.settings.basic."""
    user = tokens.link(emu.users[1], ("https://www.googleapis.com/auth/gmail.settings.basic",))
    send_as = await client.list_send_as(user)
    assert send_as["sendAs"][0]["sendAsEmail"] == user
    wanted = {"enableAutoReply": True, "responseSubject": "Away"}
    assert await client.update_vacation(user, wanted) == wanted
    assert await client.get_vacation(user) == wanted


async def test_sending_limit_pauses_sends_until_the_named_time(
    emu: Emulator, user: str, client: GmailClient
) -> None:
    """A 429 '(Mail sending)' is not retried: sends for the account are paused until the time
    Gmail named (retry_after in seconds to then), later sends fail without a request, reads go."""
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    emu.sending.pause(user, until)
    message = compose(Composition(sender=user, to=[emu.users[1]], subject="s", text="t"))
    emu.stats.reset()
    with pytest.raises(SendingPausedError) as caught:
        await client.send_message(user, message)
    assert caught.value.until == until
    assert caught.value.retry_after is not None
    assert 3 * 3600 - 5 <= caught.value.retry_after <= 3 * 3600
    assert emu.stats.requests["messages.send"] == 1  # not retried
    assert client.sending_paused_until(user) == until
    with pytest.raises(SendingPausedError):
        await client.send_message(user, message)
    assert emu.stats.requests["messages.send"] == 1  # refused before any request
    assert (await client.list_messages(user, max_results=1))["messages"]


def test_sending_limit_is_classified_from_the_message_alone() -> None:
    """Without a Retry-After header the RFC 3339 time in Gmail's message still pauses sending."""
    body = (
        b'{"error": {"code": 429, "message": "User-rate limit exceeded.  Retry after '
        b'2026-12-02T10:00:00.000Z (Mail sending)", "errors": [{"reason": "rateLimitExceeded"}]}}'
    )
    error = classify(429, body, None)
    assert isinstance(error, SendingPausedError)
    assert error.until == datetime(2026, 12, 2, 10, tzinfo=UTC)
    plain = classify(429, b'{"error": {"code": 429, "message": "Resource has been exhausted"}}')
    assert not isinstance(plain, SendingPausedError)


async def test_sync_sees_label_changes_and_deletions_through_real_history_keys(
    emu: Emulator, user: str, client: GmailClient
) -> None:
    """history.list answers labelsAdded/labelsRemoved/messagesDeleted; the client folds them
    into touched and deleted sets, and incremental sync drops the deleted message."""
    first = await client.full_sync(user)
    starred, archived, gone = await _ids(client, user, 3)
    await client.modify_message(user, starred, ["STARRED"], [])
    await client.modify_message(user, archived, [], ["INBOX"])
    box = emu.state.mailbox(user)
    assert box is not None
    box.delete_message(box.messages[gone])  # what a full-scope client's delete would record
    pages = await client.list_history_pages(user, first.snapshot.history_id)
    records = [r for p in pages for r in p["history"]]
    keys = {k for r in records for k in r} - {"id", "messages"}
    assert keys == {"labelsAdded", "labelsRemoved", "messagesDeleted"}
    changes = fold_history(records)
    assert changes.touched == {starred, archived}
    assert changes.deleted == {gone}
    second = await client.incremental_sync(user, first.snapshot)
    assert gone not in second.snapshot.messages
    assert "STARRED" in second.snapshot.messages[starred]["labelIds"]
    assert "INBOX" not in second.snapshot.messages[archived]["labelIds"]


def test_every_client_method_has_units_in_both_regimes() -> None:
    """Each Gmail method the client calls is priced in Google's table, in both regimes."""
    for method in Method:
        assert method.value in LEGACY_UNITS, method
        assert method.value in PER_MINUTE_UNITS, method
    assert LEGACY_UNITS["messages.batchModify"] == 50
    assert LEGACY_UNITS["messages.modify"] == 5
    assert LEGACY_UNITS["threads.modify"] == 10
    assert LEGACY_UNITS["watch"] == 100
    assert LEGACY_UNITS["stop"] == 50
