"""The owner's inbox over HTTP: list, read, threads, attachments, drafts, send, each audited."""

from __future__ import annotations

import base64

from audit.vocab import Action, Decision, Outcome, Phase
from connector.inbox.send_keys import ClaimOutcome, SendKey, SqlSendKeys
from connector.inbox.service import Draft, request_fingerprint
from connector.web.keys import SERVICES
from tests.e2e.conftest import ALICE, Stack, first_message


async def _outcome_for(s: Stack, request_id: str, action: Action) -> list[object]:
    return [
        e for e in await s.events(action=action)
        if e.request_id == request_id and e.phase is Phase.OUTCOME and e.outcome is Outcome.OK
    ]  # fmt: skip


async def test_list_returns_metadata_only_and_is_audited(stack: Stack) -> None:
    """Listing returns headers without bodies, and the audit log names every listed id."""
    status, body, resp = await stack.call("GET", f"/v1/accounts/{ALICE}/messages")
    assert status == 200
    assert body["messages"]
    for message in body["messages"]:
        assert "headers" in message["payload"]
        assert "parts" not in message["payload"]
        assert "data" not in message["payload"].get("body", {})
    rid = resp.headers["X-Request-ID"]
    events = await _outcome_for(stack, rid, Action.GMAIL_METADATA_READ)
    assert events
    listed = {r.id for r in events[0].resources}  # type: ignore[attr-defined]
    assert {m["id"] for m in body["messages"]} <= listed


async def test_read_message_and_thread(stack: Stack) -> None:
    """A full message and its thread come back, each with an allow decision and ok outcome."""
    first = await first_message(stack)
    status, message, resp = await stack.call("GET", f"/v1/accounts/{ALICE}/messages/{first['id']}")
    assert status == 200
    assert message["id"] == first["id"]
    assert await _outcome_for(stack, resp.headers["X-Request-ID"], Action.GMAIL_MESSAGE_READ)
    status, thread, resp = await stack.call(
        "GET", f"/v1/accounts/{ALICE}/threads/{message['threadId']}"
    )
    assert status == 200
    assert first["id"] in {m["id"] for m in thread["messages"]}
    assert await _outcome_for(stack, resp.headers["X-Request-ID"], Action.GMAIL_THREAD_READ)


async def test_send_new_reply_forward_and_attachment(stack: Stack) -> None:
    """Send with an attachment, download it streamed, reply in thread, forward."""
    payload = b"attachment bytes \x00\x01" * 100
    status, sent, _ = await stack.call("POST", f"/v1/accounts/{ALICE}/messages/send", json={
        "to": [stack.alice_email], "subject": "Quarterly numbers", "text": "see attached",
        "attachments": [{"filename": "n.bin", "mime_type": "application/octet-stream",
                         "content_base64": base64.b64encode(payload).decode()}],
    })  # fmt: skip
    assert status == 200, sent
    assert "SENT" in sent["labelIds"]
    status, full, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/messages/{sent['id']}")
    assert status == 200
    parts = [p for p in full["payload"].get("parts", []) if p.get("filename") == "n.bin"]
    attachment_id = parts[0]["body"]["attachmentId"]
    status, data, resp = await stack.call(
        "GET", f"/v1/accounts/{ALICE}/messages/{sent['id']}/attachments/{attachment_id}"
    )
    assert status == 200
    assert data == payload
    assert await _outcome_for(stack, resp.headers["X-Request-ID"], Action.GMAIL_ATTACHMENT_READ)

    status, reply, _ = await stack.call("POST", f"/v1/accounts/{ALICE}/messages/send", json={
        "text": "thanks", "reply_to": sent["id"]})  # fmt: skip
    assert status == 200, reply
    assert reply["threadId"] == sent["threadId"]
    status, forward, _ = await stack.call("POST", f"/v1/accounts/{ALICE}/messages/send", json={
        "to": ["carol@example.net"], "text": "fyi", "forward_of": sent["id"]})  # fmt: skip
    assert status == 200, forward
    sends = [e for e in await stack.events(action=Action.GMAIL_MESSAGE_SEND)
             if e.phase is Phase.OUTCOME and e.decision is Decision.ALLOW]  # fmt: skip
    assert len(sends) == 3


async def test_send_is_exactly_once_under_client_retries(stack: Stack) -> None:
    """The same Idempotency-Key twice sends one message and answers both with it."""
    before = stack.emu.count_messages(stack.alice_email)
    body = {"to": ["dave@example.org"], "subject": "once", "text": "only once"}
    headers = {"Idempotency-Key": "retry-key-0001"}
    path = f"/v1/accounts/{ALICE}/messages/send"
    s1, first, _ = await stack.call("POST", path, json=body, headers=headers)
    s2, second, _ = await stack.call("POST", path, json=body, headers=headers)
    assert s1 == s2 == 200
    assert first["id"] == second["id"]
    assert stack.emu.count_messages(stack.alice_email) == before + 1
    actions = [e.action for e in await stack.events(account_id=ALICE) if e.phase == "outcome"]
    assert actions.count("gmail.message.send") == 1
    assert actions.count("gmail.message.send_replayed") == 1  # the retry is on the record too


async def test_idempotency_key_reused_for_another_message_is_422(stack: Stack) -> None:
    """A key already used for one message cannot send a different one; nothing is sent."""
    path = f"/v1/accounts/{ALICE}/messages/send"
    headers = {"Idempotency-Key": "reused-key-0001"}
    s1, _, _ = await stack.call("POST", path, headers=headers, json={
        "to": ["dave@example.org"], "subject": "first", "text": "one"})  # fmt: skip
    assert s1 == 200
    before = stack.emu.count_messages(stack.alice_email)
    s2, problem, resp = await stack.call("POST", path, headers=headers, json={
        "to": ["dave@example.org"], "subject": "second", "text": "two"})  # fmt: skip
    assert s2 == 422
    assert resp.content_type == "application/problem+json"
    assert problem["type"].endswith("/idempotency-key-reused")
    assert stack.emu.count_messages(stack.alice_email) == before


async def test_retry_while_another_worker_sends_is_409(stack: Stack) -> None:
    """A key another process has claimed and not finished: told to retry, nothing sent; once
    that send completes, the same request replays its answer."""
    services = stack.app[SERVICES]
    keys = SqlSendKeys(services.engine, services.clock)
    body = {"to": ["dave@example.org"], "subject": "elsewhere", "text": "in flight"}
    key = SendKey("alice", ALICE, "other-worker-0001")
    fingerprint = request_fingerprint(Draft(to=["dave@example.org"], subject="elsewhere",
                                            text="in flight"), None, None)  # fmt: skip
    assert (await keys.claim(key, fingerprint)).outcome is ClaimOutcome.CLAIMED
    before = stack.emu.count_messages(stack.alice_email)
    path = f"/v1/accounts/{ALICE}/messages/send"
    headers = {"Idempotency-Key": key.key}
    status, problem, resp = await stack.call("POST", path, json=body, headers=headers)
    assert status == 409
    assert problem["type"].endswith("/idempotency-key-in-use")
    assert resp.headers["Retry-After"] == "1"
    assert stack.emu.count_messages(stack.alice_email) == before
    await keys.complete(key, {"id": "m-elsewhere", "threadId": "t-elsewhere"})
    status, replay, _ = await stack.call("POST", path, json=body, headers=headers)
    assert status == 200
    assert replay == {"id": "m-elsewhere", "threadId": "t-elsewhere"}
    assert stack.emu.count_messages(stack.alice_email) == before


async def test_draft_lifecycle(stack: Stack) -> None:
    """Create, list, read, update, send and delete drafts."""
    base = f"/v1/accounts/{ALICE}/drafts"
    status, draft, _ = await stack.call("POST", base, json={
        "to": ["erin@example.org"], "subject": "draft", "text": "v1"})  # fmt: skip
    assert status == 201, draft
    draft_id = draft["id"]
    status, listed, _ = await stack.call("GET", base)
    assert status == 200
    assert draft_id in {d["id"] for d in listed["drafts"]}
    status, got, _ = await stack.call("GET", f"{base}/{draft_id}")
    assert status == 200
    assert got["id"] == draft_id
    status, updated, _ = await stack.call("PUT", f"{base}/{draft_id}", json={
        "to": ["erin@example.org"], "subject": "draft", "text": "v2"})  # fmt: skip
    assert status == 200, updated
    status, sent, _ = await stack.call("POST", f"{base}/{draft_id}/send")
    assert status == 200
    assert "SENT" in sent["labelIds"]
    status, other, _ = await stack.call("POST", base, json={"to": ["x@example.org"]})
    assert status == 201
    status, _, _ = await stack.call("DELETE", f"{base}/{other['id']}")
    assert status == 204
    status, problem, _ = await stack.call("GET", f"{base}/{other['id']}")
    assert status == 404
    assert problem["type"].endswith("/not-found")
