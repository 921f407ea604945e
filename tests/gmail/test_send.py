"""Exactly-once send: no duplicate under any fault around a send, drafts included."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from connector.emulator.faults import FaultConfig
from connector.gmail import errors
from connector.gmail.calls import JSON_RAW_LIMIT
from connector.gmail.transport import AiohttpTransport
from connector.mime import Attachment, Composition, compose
from connector.ports import OutgoingMessage

SEND_FAULTS = {
    "error_before_work": FaultConfig(seed=1, error_rate=1.0),
    "drop_before_work": FaultConfig(seed=2, drop_rate=1.0),
    "error_after_commit": FaultConfig(seed=3, after_commit_rate=1.0),
    "drop_after_commit": FaultConfig(seed=4, after_commit_rate=1.0, after_commit_drop=True),
    "mixed_errors": FaultConfig(seed=5, error_rate=0.3, drop_rate=0.2, after_commit_rate=0.5),
    "mixed_drops": FaultConfig(
        seed=6, error_rate=0.2, drop_rate=0.2, after_commit_rate=0.5, after_commit_drop=True
    ),
}


def copies(emu, email: str, message: OutgoingMessage) -> int:
    """SENT messages in the sender's mailbox carrying this Message-ID."""
    box = emu.state.mailbox(email)
    return sum(
        1
        for m in box.messages.values()
        if "SENT" in m.label_ids and m.message_id_header == message.message_id
    )


def make_message(emu, sender: str, n: int, size: int = 0) -> OutgoingMessage:
    attachments = [Attachment("blob.bin", b"\x01" * size)] if size else []
    return compose(
        Composition(
            sender=sender, to=[emu.users[1]], subject=f"n{n}", text="t", attachments=attachments
        )
    )


@pytest.mark.parametrize("fault", SEND_FAULTS, ids=list(SEND_FAULTS))
async def test_no_duplicate_send_under_faults(emu, user, client, fault):
    """Each send either returns and left one SENT copy, or raises and left none."""
    config = SEND_FAULTS[fault]
    config.methods = frozenset({"messages.send"})
    emu.set_faults(config)
    sent_before = emu.count_messages(user, "SENT")
    outcomes = []
    for n in range(8):
        message = make_message(emu, user, n)
        try:
            result = await client.send_message(user, message)
        except (errors.ServerError, errors.NetworkError):
            assert copies(emu, user, message) == 0
            outcomes.append("failed")
        else:
            assert copies(emu, user, message) == 1
            assert emu.state.mailbox(user).messages[result["id"]].message_id_header == (
                message.message_id
            )
            assert "SENT" in result["labelIds"]
            outcomes.append("sent")
    assert emu.count_messages(user, "SENT") == sent_before + outcomes.count("sent")
    if fault.endswith("after_commit"):
        assert outcomes == ["sent"] * 8  # resolved by search, never re-sent
    if fault.endswith("before_work"):
        assert outcomes == ["failed"] * 8
    if fault.startswith("mixed"):
        assert "sent" in outcomes
    assert emu.faults.injected > 0


class CommitThenReset:
    """Transport that delivers a send, then reports the connection reset before the answer."""

    def __init__(self, inner):
        self.inner = inner

    async def send(self, call):
        answer = await self.inner.send(call)
        if "/messages/send" in call.uri:
            raise errors.NetworkError("reset after send", request_sent=True)
        return answer


async def test_unresolvable_outcome_is_not_retried(emu, user, session, make_client):
    """When the search fails too, SendOutcomeUnknownError is raised and nothing is re-sent."""
    client = make_client(transport=CommitThenReset(AiohttpTransport(session)))
    emu.set_faults(FaultConfig(seed=7, error_rate=1.0, methods=frozenset({"messages.list"})))
    message = make_message(emu, user, 0)
    sent_before = emu.count_messages(user, "SENT")
    with pytest.raises(errors.SendOutcomeUnknownError) as unknown:
        await client.send_message(user, message)
    assert unknown.value.message_id == message.message_id
    assert emu.count_messages(user, "SENT") == sent_before + 1
    assert emu.stats.requests["messages.send"] == 1


async def test_reset_after_send_resolves_to_the_sent_message(emu, user, session, make_client):
    """A connection reset after the send went out returns the sent message, sent once."""
    client = make_client(transport=CommitThenReset(AiohttpTransport(session)))
    message = make_message(emu, user, 1)
    result = await client.send_message(user, message)
    assert emu.state.mailbox(user).messages[result["id"]].message_id_header == message.message_id
    assert emu.stats.requests["messages.send"] == 1
    assert copies(emu, user, message) == 1


async def test_large_message_goes_through_upload(emu, user, client):
    """A message over 5 MB is sent via the multipart upload path, byte for byte, once."""
    emu.set_faults(FaultConfig(seed=8, after_commit_rate=1.0, methods=frozenset({"messages.send"})))
    message = make_message(emu, user, 1, size=JSON_RAW_LIMIT + 1024)
    assert len(message.raw) > JSON_RAW_LIMIT
    assert "upload/gmail/v1" in client.calls.send_message(message.raw, None).http.uri
    result = await client.send_message(user, message)
    stored = emu.state.mailbox(user).messages[result["id"]]
    assert stored.message_id_header == message.message_id
    assert len(stored.raw) >= len(message.raw)
    assert copies(emu, user, message) == 1


async def test_too_large_is_refused_before_upload(emu, user, client):
    """An oversized OutgoingMessage raises MessageTooLargeError without any request."""
    raw = b"To: b@example.com\r\n\r\n" + b"x" * 36_700_160
    before = sum(emu.stats.requests.values())
    with pytest.raises(errors.MessageTooLargeError):
        await client.send_message(user, OutgoingMessage(raw=raw, message_id="<big@x>"))
    assert sum(emu.stats.requests.values()) == before


@pytest.mark.parametrize("after_commit_drop", [False, True])
async def test_draft_send_exactly_once(emu, user, client, after_commit_drop):
    """drafts.send failing after commit is resolved by search: one SENT copy, draft gone."""
    message = make_message(emu, user, 2)
    draft = await client.create_draft(user, message)
    emu.set_faults(
        FaultConfig(
            seed=9,
            after_commit_rate=1.0,
            after_commit_drop=after_commit_drop,
            methods=frozenset({"drafts.send"}),
        )
    )
    result = await client.send_draft(user, draft["id"])
    assert "SENT" in result["labelIds"]
    assert copies(emu, user, message) == 1
    assert draft["id"] not in emu.state.mailbox(user).drafts


async def test_draft_send_retries_when_not_sent(emu, user, client):
    """drafts.send failing before work is retried (the draft still exists) and sends once."""
    message = make_message(emu, user, 3)
    draft = await client.create_draft(user, message)
    emu.set_faults(FaultConfig(seed=10, error_rate=0.5, methods=frozenset({"drafts.send"})))
    result = await client.send_draft(user, draft["id"])
    assert result["id"] in emu.state.mailbox(user).messages
    assert copies(emu, user, message) == 1


async def test_create_draft_exactly_once_under_drops(emu, user, client):
    """drafts.create under dropped connections leaves at most one draft per Message-ID."""
    emu.set_faults(FaultConfig(seed=11, drop_rate=0.5, methods=frozenset({"drafts.create"})))
    box = emu.state.mailbox(user)
    for n in range(6):
        message = make_message(emu, user, 10 + n)
        try:
            created = await client.create_draft(user, message)
        except errors.NetworkError:
            expected = 0
        else:
            expected = 1
            assert box.drafts[created["id"]].message.message_id_header == message.message_id
        matching = [
            d for d in box.drafts.values() if d.message.message_id_header == message.message_id
        ]
        assert len(matching) == expected


async def test_draft_lifecycle(emu, user, client):
    """Create, get, update, list and delete a draft; a second delete is NotFound."""
    first = make_message(emu, user, 20)
    created = await client.create_draft(user, first)
    fetched = await client.get_draft(user, created["id"])
    assert fetched["message"]["id"] == created["message"]["id"]
    second = make_message(emu, user, 21)
    updated = await client.update_draft(user, created["id"], second)
    assert updated["id"] == created["id"]
    listing = await client.list_drafts(user)
    assert created["id"] in [d["id"] for d in listing["drafts"]]
    await client.delete_draft(user, created["id"])
    assert created["id"] not in emu.state.mailbox(user).drafts
    with pytest.raises(errors.NotFoundError):
        await client.delete_draft(user, created["id"])


async def test_timeout_while_server_still_sending_is_not_duplicated(emu, user, make_client):
    """A send that times out but commits later is found by a delayed search, not re-sent."""
    client = make_client(
        timeout=aiohttp.ClientTimeout(total=0.15), send_resolution_delays=(0.0, 0.5, 1.0)
    )
    emu.set_faults(FaultConfig(seed=12, latency_ms=350, methods=frozenset({"messages.send"})))
    message = make_message(emu, user, 30)
    result = await client.send_message(user, message)
    await asyncio.sleep(0.5)  # let any straggling send land before counting
    assert copies(emu, user, message) == 1
    assert emu.state.mailbox(user).messages[result["id"]].message_id_header == message.message_id
    assert emu.stats.requests["messages.send"] == 1
