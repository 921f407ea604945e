"""The connector's Pub/Sub client: googleapiclient-built requests over our transport, against
the emulator's Pub/Sub, reading Gmail's push notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.gmail.errors import InvalidRequestError, NotFoundError
from connector.gmail.pubsub import PubSubClient, Received, gmail_notification
from connector.gmail.transport import AiohttpTransport, HttpAnswer, HttpCall

TOPIC = "projects/demo-project/topics/gmail"
SUB = "projects/demo-project/subscriptions/connector"
RAW = b"From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


class Recording:
    """A transport that remembers each call before sending it over aiohttp."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.inner = AiohttpTransport(session)
        self.calls: list[HttpCall] = []

    async def send(self, call: HttpCall) -> HttpAnswer:
        self.calls.append(call)
        return await self.inner.send(call)


async def _token() -> str:
    return "service-account-token"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(seed="push", users=2, messages_per_user=2, pubsub_pull_wait=0.05)
    async with run_emulator(config) as e:
        yield e


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _watch(session: aiohttp.ClientSession, emu: Emulator, email: str) -> None:
    token = emu.issue_tokens(email)["access_token"]
    async with session.post(
        f"{emu.base_url}gmail/v1/users/me/watch",
        json={"topicName": TOPIC, "labelIds": ["INBOX"]},
        headers={"Authorization": f"Bearer {token}"},
    ) as answer:
        assert answer.status == 200


async def test_requests_are_built_from_the_pubsub_discovery_document(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """Create, pull and acknowledge go out as the discovery document's verbs and paths
    (`PUT v1/{name}`, `POST v1/{subscription}:pull`), with the deployment's bearer token."""
    wire = Recording(session)
    client = PubSubClient(emu.pubsub_endpoint, _token, transport=wire)
    assert await client.create_topic(TOPIC) == {"name": TOPIC}
    sub = await client.create_subscription(SUB, TOPIC, ack_deadline_seconds=30)
    assert (sub["topic"], sub["ackDeadlineSeconds"]) == (TOPIC, 30)
    assert await client.pull(SUB) == []
    verbs = [(c.verb, c.uri.split("?")[0].removeprefix(emu.base_url)) for c in wire.calls]
    assert verbs == [("PUT", f"v1/{TOPIC}"), ("PUT", f"v1/{SUB}"), ("POST", f"v1/{SUB}:pull")]
    assert all(c.headers["authorization"] == "Bearer service-account-token" for c in wire.calls)


async def test_pull_reads_gmail_notifications_and_ack_settles_them(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """Mail arriving for two watched users is pulled as Gmail notifications (address and the
    mailbox's historyId); acknowledged ones are gone, a nacked one (deadline 0) comes back."""
    client = PubSubClient(emu.pubsub_endpoint, _token, session)
    await client.create_topic(TOPIC)
    await client.create_subscription(SUB, TOPIC)
    alice, bob = emu.users[:2]
    await _watch(session, emu, alice)
    await _watch(session, emu, bob)
    boxes = [emu.state.mailbox(alice), emu.state.mailbox(bob)]
    added = [box.add_message(RAW, ["INBOX"]) for box in boxes if box is not None]
    received = await client.pull(SUB, max_messages=10)
    notes = [gmail_notification(r) for r in received]
    assert [(n.email, n.history_id) for n in notes if n] == [
        (alice, added[0].history_id), (bob, added[1].history_id)
    ]  # fmt: skip
    await client.acknowledge(SUB, [received[0].ack_id])
    await client.modify_ack_deadline(SUB, [received[1].ack_id], 0)
    again = await client.pull(SUB)
    assert [gmail_notification(r) for r in again] == [notes[1]]
    await client.modify_ack_deadline(SUB, [again[0].ack_id], 120)
    assert await client.pull(SUB) == []


async def test_errors_are_classified_like_gmail_errors(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """Pub/Sub's envelope maps onto the connector's error tree: 404 → NotFoundError,
    400 → InvalidRequestError, with Pub/Sub's status kept."""
    client = PubSubClient(emu.pubsub_endpoint, _token, session)
    with pytest.raises(NotFoundError) as missing:
        await client.pull(SUB)
    assert missing.value.grpc_status == "NOT_FOUND"
    with pytest.raises(InvalidRequestError):
        await client.create_topic("projects/demo-project/topics/x")


def _received(data: bytes) -> Received:
    return Received("ack", "1", data, {})


def test_gmail_notification_accepts_number_or_string_history_ids_only() -> None:
    """historyId may be a JSON number (the wire) or digit string (Google's guide); anything
    else — not JSON, no address, a boolean or negative id — is not a Gmail notification."""
    note = gmail_notification(_received(b'{"emailAddress": "A@x.com", "historyId": 12}'))
    assert note is not None
    assert (note.email, note.history_id) == ("a@x.com", 12)
    text = gmail_notification(_received(b'{"emailAddress": "a@x.com", "historyId": "99"}'))
    assert text is not None
    assert text.history_id == 99
    for bad in (b"not json", b"[]", b'{"historyId": 1}', b'{"emailAddress": "a@x.com"}',
                b'{"emailAddress": "a@x.com", "historyId": true}',
                b'{"emailAddress": "a@x.com", "historyId": -1}'):  # fmt: skip
        assert gmail_notification(_received(bad)) is None


def test_a_client_needs_a_session_or_a_transport() -> None:
    """Without either there is nothing to send over: refused at construction."""
    with pytest.raises(ValueError, match="session or a transport"):
        PubSubClient("http://127.0.0.1:1/", _token)
