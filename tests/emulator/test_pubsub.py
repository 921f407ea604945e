"""The emulator's Pub/Sub v1 subset over REST, and Gmail push (`users.watch`) publishing to it."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp

from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from tests.emulator.conftest import ALICE, BOB, Api

TOPIC = "projects/demo-project/topics/gmail"
SUB = "projects/demo-project/subscriptions/connector"
RAW = b"From: x@example.com\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


async def _rest(
    http: aiohttp.ClientSession, emu: Emulator, verb: str, path: str, body: Any = None,
    *, token: str | None = "svc",
) -> tuple[int, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(verb, f"{emu.base_url}v1/{path}", json=body, headers=headers) as r:
        return r.status, await r.json()


async def _setup(http: aiohttp.ClientSession, emu: Emulator, deadline: int = 10) -> None:
    assert (await _rest(http, emu, "PUT", TOPIC, {}))[0] == 200
    status, sub = await _rest(
        http, emu, "PUT", SUB, {"topic": TOPIC, "ackDeadlineSeconds": deadline}
    )
    assert status == 200
    assert sub["ackDeadlineSeconds"] == deadline


async def _publish(http: aiohttp.ClientSession, emu: Emulator, *payloads: bytes) -> list[str]:
    body = {"messages": [{"data": base64.b64encode(p).decode()} for p in payloads]}
    status, answer = await _rest(http, emu, "POST", f"{TOPIC}:publish", body)
    assert status == 200
    ids: list[str] = answer["messageIds"]
    return ids


async def _pull(http: aiohttp.ClientSession, emu: Emulator, limit: int = 10) -> list[Any]:
    status, answer = await _rest(http, emu, "POST", f"{SUB}:pull", {"maxMessages": limit})
    assert status == 200
    received: list[Any] = answer.get("receivedMessages", [])
    return received


def _data(received: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(received["message"]["data"]))


async def test_topics_and_subscriptions_lifecycle(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Create answers the resource, a second create 409 ALREADY_EXISTS, get/delete work,
    an unknown topic is 404 NOT_FOUND in Pub/Sub's envelope, a subscription needs its topic."""
    await _setup(http, emu)
    status, again = await _rest(http, emu, "PUT", TOPIC, {})
    assert (status, again["error"]["status"]) == (409, "ALREADY_EXISTS")
    assert await _rest(http, emu, "GET", TOPIC) == (200, {"name": TOPIC})
    status, missing = await _rest(http, emu, "PUT", SUB + "2", {"topic": TOPIC + "x"})
    assert status == 404
    assert missing["error"] == {
        "code": 404, "message": "Resource not found (resource=gmailx).", "status": "NOT_FOUND"
    }  # fmt: skip
    assert (await _rest(http, emu, "DELETE", TOPIC))[0] == 200
    _, sub = await _rest(http, emu, "GET", SUB)
    assert sub["topic"] == "_deleted-topic_"
    assert (await _rest(http, emu, "GET", TOPIC))[0] == 404


async def test_bad_names_deadlines_and_missing_credentials(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Malformed names and out-of-range ack deadlines are 400; no bearer is 401."""
    assert (await _rest(http, emu, "PUT", "projects/demo-project/topics/x", {}))[0] == 400
    assert (await _rest(http, emu, "PUT", "projects/demo-project/topics/goog-x", {}))[0] == 400
    await _setup(http, emu)
    status, _ = await _rest(http, emu, "PUT", SUB + "b", {"topic": TOPIC, "ackDeadlineSeconds": 5})
    assert status == 400
    status, body = await _rest(http, emu, "GET", SUB, token=None)
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    status, _ = await _rest(http, emu, "POST", f"{SUB}:pull", {"maxMessages": 0})
    assert status == 400


async def test_pull_then_ack_removes_and_unacked_is_redelivered(
    http: aiohttp.ClientSession,
) -> None:
    """A pulled message is leased: not seen again while leased, redelivered with a new ack id
    after the deadline lapses, and gone for good once acknowledged."""
    async with run_emulator(EmulatorConfig(users=1, messages_per_user=1,
                                           pubsub_pull_wait=0.05)) as emu:  # fmt: skip
        await _setup(http, emu, deadline=10)
        ids = await _publish(http, emu, b"one", b"two")
        first = await _pull(http, emu)
        assert [r["message"]["messageId"] for r in first] == ids
        assert base64.b64decode(first[0]["message"]["data"]) == b"one"
        assert await _pull(http, emu) == []  # leased
        ack = {"ackIds": [first[0]["ackId"]]}
        assert (await _rest(http, emu, "POST", f"{SUB}:acknowledge", ack))[0] == 200
        lapse = {"ackIds": [first[1]["ackId"]], "ackDeadlineSeconds": 0}
        assert (await _rest(http, emu, "POST", f"{SUB}:modifyAckDeadline", lapse))[0] == 200
        again = await _pull(http, emu)
        assert [r["message"]["messageId"] for r in again] == [ids[1]]
        assert again[0]["ackId"] != first[1]["ackId"]
        emu.pubsub.subscriptions[SUB].leases[again[0]["ackId"]].deadline = 0.0  # lease lapses
        assert [r["message"]["messageId"] for r in await _pull(http, emu)] == [ids[1]]


async def test_pull_waits_for_a_message_published_meanwhile(http: aiohttp.ClientSession) -> None:
    """An empty pull long-polls: a message published while it waits is answered at once."""
    async with run_emulator(EmulatorConfig(users=1, messages_per_user=1,
                                           pubsub_pull_wait=5.0)) as emu:  # fmt: skip
        await _setup(http, emu)
        waiting = asyncio.create_task(_pull(http, emu))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await _publish(http, emu, b"late")
        received = await asyncio.wait_for(waiting, timeout=2)
        assert base64.b64decode(received[0]["message"]["data"]) == b"late"


async def test_subscription_sees_only_what_is_published_after_it(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Messages published before a subscription exists are not delivered to it."""
    assert (await _rest(http, emu, "PUT", TOPIC, {}))[0] == 200
    await _publish(http, emu, b"early")
    assert (await _rest(http, emu, "PUT", SUB, {"topic": TOPIC}))[0] == 200
    await _publish(http, emu, b"late")
    assert [base64.b64decode(r["message"]["data"]) for r in await _pull(http, emu)] == [b"late"]


async def test_watch_publishes_gmail_notification_per_change(
    emu: Emulator, http: aiohttp.ClientSession, api: Api
) -> None:
    """After users.watch every mailbox change (new mail, label change, deletion) publishes
    base64 JSON {emailAddress, historyId} with the mailbox's new historyId, no attributes."""
    await _setup(http, emu)
    status, _ = await api.post("watch", json={"topicName": TOPIC})
    assert status == 200
    box = emu.state.mailbox(ALICE)
    assert box is not None
    arrived = box.add_message(RAW, ["INBOX", "UNREAD"])
    status, _ = await api.post(f"messages/{arrived.id}/modify", json={"addLabelIds": ["STARRED"]})
    assert status == 200
    box.delete_message(arrived)
    _, profile = await api.get("profile")
    received = await _pull(http, emu)
    notes = [_data(r) for r in received]
    assert [n["emailAddress"] for n in notes] == [ALICE] * 3
    ids = [n["historyId"] for n in notes]
    assert ids == sorted(ids)
    assert ids[-1] == int(profile["historyId"])
    assert all("attributes" not in r["message"] for r in received)


async def test_watch_label_filter_stop_expiry_and_unknown_topic(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, bob_api: Api
) -> None:
    """A watch on INBOX ignores changes elsewhere; stop and a lapsed watch publish nothing;
    a watch on a topic that does not exist is refused 404; other mailboxes stay silent."""
    status, body = await api.post("watch", json={"topicName": TOPIC})
    assert (status, body["error"]["code"]) == (404, 404)
    await _setup(http, emu)
    await api.post("watch", json={"topicName": TOPIC, "labelIds": ["INBOX"]})
    box = emu.state.mailbox(ALICE)
    bob = emu.state.mailbox(BOB)
    assert box is not None
    assert bob is not None
    box.add_message(RAW, ["SENT"])
    bob.add_message(RAW, ["INBOX"])
    inbox = box.add_message(RAW, ["INBOX"])
    assert [_data(r)["historyId"] for r in await _pull(http, emu)] == [inbox.history_id]
    assert box.watch is not None
    box.watch["expiration"] = 0
    box.add_message(RAW, ["INBOX"])
    await api.post("watch", json={"topicName": TOPIC})
    assert (await api.call("POST", "stop"))[0] == 204
    box.add_message(RAW, ["INBOX"])
    assert await _pull(http, emu) == []
    assert box.watch is None
