"""Idempotency-Key on every write that creates or sends (send, draft create, draft send):
a retry with the same key does the work once, answers with the first answer marked
`Idempotent-Replayed: true`, and is itself on the audit record as a replay."""

from __future__ import annotations

import asyncio

from audit.vocab import Phase
from tests.e2e.conftest import ALICE, Stack

DRAFTS = f"/v1/accounts/{ALICE}/drafts"
SEND = f"/v1/accounts/{ALICE}/messages/send"
BODY = {"to": ["dave@example.org"], "subject": "once", "text": "only once"}


async def _outcomes(stack: Stack) -> list[str]:
    return [str(e.action) for e in await stack.events(account_id=ALICE) if e.phase is Phase.OUTCOME]


async def test_a_replayed_send_says_so(stack: Stack) -> None:
    """The first send has no Idempotent-Replayed header; its retry answers `true`."""
    headers = {"Idempotency-Key": "replay-header-0001"}
    s1, first, r1 = await stack.call("POST", SEND, json=BODY, headers=headers)
    s2, second, r2 = await stack.call("POST", SEND, json=BODY, headers=headers)
    assert (s1, s2) == (200, 200)
    assert first["id"] == second["id"]
    assert "Idempotent-Replayed" not in r1.headers
    assert r2.headers["Idempotent-Replayed"] == "true"


async def test_draft_create_with_a_key_creates_one_draft(stack: Stack) -> None:
    """Two creates with one key: one draft, the same answer (201 both times), a recorded replay."""
    box = stack.emu.state.mailbox(stack.alice_email)
    assert box is not None
    before = len(box.drafts)
    headers = {"Idempotency-Key": "draft-create-0001"}
    s1, first, r1 = await stack.call("POST", DRAFTS, json=BODY, headers=headers)
    s2, second, r2 = await stack.call("POST", DRAFTS, json=BODY, headers=headers)
    assert (s1, s2) == (201, 201)
    assert second == first
    assert r2.headers["Location"] == r1.headers["Location"]
    assert r2.headers["Idempotent-Replayed"] == "true"
    assert len(box.drafts) == before + 1
    actions = await _outcomes(stack)
    assert actions.count("gmail.draft.create") == 1
    assert actions.count("gmail.draft.create_replayed") == 1


async def test_draft_send_with_a_key_sends_once(stack: Stack) -> None:
    """Two sends of one draft with one key: one message sent, the retry replays its answer."""
    _, draft, _ = await stack.call("POST", DRAFTS, json=BODY)
    before = stack.emu.count_messages(stack.alice_email)
    headers = {"Idempotency-Key": "draft-send-0001"}
    path = f"{DRAFTS}/{draft['id']}/send"
    s1, first, _ = await stack.call("POST", path, headers=headers)
    s2, second, r2 = await stack.call("POST", path, headers=headers)
    assert (s1, s2) == (200, 200), second
    assert second == first
    assert r2.headers["Idempotent-Replayed"] == "true"
    assert stack.emu.count_messages(stack.alice_email) == before + 1  # one message, not two
    actions = await _outcomes(stack)
    assert actions.count("gmail.draft.send") == 1
    assert actions.count("gmail.message.send_replayed") == 1


async def test_a_key_is_bound_to_its_request(stack: Stack) -> None:
    """A key used to create a draft cannot send a message (422); a malformed key is 400."""
    headers = {"Idempotency-Key": "bound-key-0001"}
    assert (await stack.call("POST", DRAFTS, json=BODY, headers=headers))[0] == 201
    status, problem, _ = await stack.call("POST", SEND, json=BODY, headers=headers)
    assert status == 422
    assert problem["type"].endswith("/idempotency-key-reused")
    for path in (DRAFTS, SEND):
        status, problem, _ = await stack.call("POST", path, json=BODY,
                                              headers={"Idempotency-Key": "short"})  # fmt: skip
        assert status == 400, problem


async def test_the_document_offers_the_key_where_it_works(stack: Stack) -> None:
    """Send, draft create and draft send take Idempotency-Key and document Idempotent-Replayed."""
    _, doc, _ = await stack.call("GET", "/openapi.json", None)
    for path, method, ok in (
        ("/v1/accounts/{account_id}/messages/send", "post", "200"),
        ("/v1/accounts/{account_id}/drafts", "post", "201"),
        ("/v1/accounts/{account_id}/drafts/{draft_id}/send", "post", "200"),
    ):
        op = doc["paths"][path][method]
        assert any(p["name"] == "Idempotency-Key" for p in op["parameters"]), path
        assert "Idempotent-Replayed" in op["responses"][ok]["headers"], path


async def test_concurrent_requests_under_one_key_never_share_an_answer(stack: Stack) -> None:
    """Two different requests racing with one key: one is done, the other is refused (409 or
    422); it is never answered with the other's result."""
    headers = {"Idempotency-Key": "race-key-0001"}
    other = {**BODY, "subject": "another message"}
    (s1, a1, _), (s2, a2, _) = await asyncio.gather(
        stack.call("POST", SEND, json=BODY, headers=headers),
        stack.call("POST", SEND, json=other, headers=headers),
    )
    assert sorted([s1, s2])[0] == 200
    assert sorted([s1, s2])[1] in (409, 422), (a1, a2)
