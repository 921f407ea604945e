"""Consented support reads, approved security/legal access, the owner's access history,
reviewers, aggregates."""

from __future__ import annotations

import csv
import io
import json

from audit.vocab import Action, BasisKind, Decision, Phase
from tests.e2e.conftest import ALICE, Stack, first_message

SUPPORT = f"/v1/support/accounts/{ALICE}/messages"


async def _two_messages(s: Stack) -> tuple[str, str]:
    status, body, _ = await s.call("GET", f"/v1/accounts/{ALICE}/messages",
                                   params={"format": "ids", "max_results": "2"})  # fmt: skip
    assert status == 200
    return body["messages"][0]["id"], body["messages"][1]["id"]


async def test_operator_without_basis_is_refused_and_audited(stack: Stack) -> None:
    """No consent and no approved request: 403 basis.missing, recorded as a denial."""
    message = await first_message(stack)
    status, body, _ = await stack.call("GET", f"{SUPPORT}/{message['id']}", "op1")
    assert status == 403
    assert "basis.missing" in body["reasons"]
    denials = await stack.events(actor_id="op1", decision=Decision.DENY)
    assert [e.action for e in denials] == [Action.GMAIL_MESSAGE_READ]


async def test_consented_support_read(stack: Stack) -> None:
    """The owner's consent opens exactly the named message to the named operator, until revoked."""
    covered, other = await _two_messages(stack)
    status, consent, _ = await stack.call("POST", f"/v1/accounts/{ALICE}/consents", json={
        "message_ids": [covered], "grantee_id": "op1", "ttl_days": 2})  # fmt: skip
    assert status == 201, consent
    q = {"consent_id": consent["id"]}
    status, message, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op1", params=q)
    assert status == 200
    assert message["id"] == covered
    status, body, _ = await stack.call("GET", f"{SUPPORT}/{other}", "op1", params=q)
    assert status == 403
    assert "consent.not_covering" in body["reasons"]
    status, body, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op2", params=q)
    assert status == 403
    assert "consent.other_grantee" in body["reasons"]
    status, listed, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/consents")
    assert [c["id"] for c in listed["consents"]] == [consent["id"]]
    status, revoked, _ = await stack.call("DELETE", f"/v1/consents/{consent['id']}")
    assert status == 200
    assert revoked["revoked_at"]
    status, body, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op1", params=q)
    assert status == 403
    assert "consent.revoked" in body["reasons"]
    reads = [e for e in await stack.events(actor_id="op1", decision=Decision.ALLOW)
             if e.phase is Phase.OUTCOME]  # fmt: skip
    assert len(reads) == 1
    assert reads[0].basis.kind is BasisKind.CONSENT


async def test_approved_access_request_and_history(stack: Stack) -> None:
    """A second operator's approval opens the message; the owner sees it in the history."""
    covered, _ = await _two_messages(stack)
    status, req, _ = await stack.call("POST", "/v1/access-requests", "op1", json={
        "account_id": ALICE, "purpose": "security", "case_reference": "SEC-1",
        "reason": "abuse report", "message_ids": [covered], "duration_hours": 2})  # fmt: skip
    assert status == 201
    assert req["status"] == "pending"
    q = {"access_request_id": req["id"]}
    status, body, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op1", params=q)
    assert status == 403
    assert "approval.pending" in body["reasons"]
    status, body, _ = await stack.call("POST", f"/v1/access-requests/{req['id']}/approve", "op1")
    assert status == 403
    status, approved, _ = await stack.call(
        "POST", f"/v1/access-requests/{req['id']}/approve", "op2"
    )
    assert status == 200
    assert approved["status"] == "approved"
    assert approved["decided_by"] == "op2"
    status, message, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op1", params=q)
    assert status == 200
    assert message["id"] == covered
    status, queue, _ = await stack.call("GET", "/v1/access-requests", "op2")
    assert [r["id"] for r in queue["access_requests"]] == [req["id"]]

    status, history, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/access-history")
    assert status == 200
    op_reads = [e for e in history["events"]
                if e["actor"]["id"] == "op1" and e["action"] == "gmail.message.read"
                and e["decision"] == "allow"]  # fmt: skip
    assert op_reads
    assert op_reads[0]["basis"] == {"kind": "access_request", "id": req["id"]}
    assert op_reads[0]["purpose"] == "security"
    assert history["events"][0]["action"] == "account.history.read"  # the read itself, first
    status, body, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/access-history", "bob")
    assert status == 403
    assert "actor.not_owner" in body["reasons"]


async def test_legal_hold_is_hidden_from_the_owner(stack: Stack) -> None:
    """Accesses under a legal hold stay out of the owner's history but not the reviewer's."""
    covered, _ = await _two_messages(stack)
    status, req, _ = await stack.call("POST", "/v1/access-requests", "op1", json={
        "account_id": ALICE, "purpose": "legal", "case_reference": "LEGAL-7",
        "reason": "court order", "message_ids": [covered], "legal_hold": True})  # fmt: skip
    assert status == 201
    await stack.call("POST", f"/v1/access-requests/{req['id']}/approve", "op2")
    status, _, _ = await stack.call("GET", f"{SUPPORT}/{covered}", "op1",
                                    params={"access_request_id": req["id"]})  # fmt: skip
    assert status == 200
    status, history, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/access-history")
    assert status == 200
    assert not [e for e in history["events"] if e["actor"]["id"] in ("op1", "op2")]
    status, page, _ = await stack.call("GET", "/v1/audit/events", "rev",
                                       params={"actor_id": "op1", "purpose": "legal"})  # fmt: skip
    assert status == 200
    assert any(e["legal_hold"] for e in page["events"])


async def test_reviewer_query_verify_export_are_audited(stack: Stack) -> None:
    """Reviewers query, verify and export; each call is itself in the audit log."""
    await first_message(stack)
    status, page, _ = await stack.call("GET", "/v1/audit/events", "rev",
                                       params={"max_results": "5"})  # fmt: skip
    assert status == 200
    assert len(page["events"]) == 5
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5]
    status, more, _ = await stack.call("GET", "/v1/audit/events", "rev", params={
        "max_results": "5", "page_token": page["next_page_token"]})  # fmt: skip
    assert status == 200
    assert more["events"][0]["seq"] == 6
    status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    assert report["ok"] is True
    assert report["first_bad_seq"] is None
    status, lines, resp = await stack.call("GET", "/v1/audit/export", "rev",
                                           params={"format": "jsonl"})  # fmt: skip
    assert status == 200
    assert resp.content_type == "application/x-ndjson"
    records = [json.loads(line) for line in lines.decode().splitlines()]
    assert records
    assert all("seq" in r for r in records)
    status, text, _ = await stack.call("GET", "/v1/audit/export", "rev", params={"format": "csv"})
    assert status == 200
    assert len(list(csv.reader(io.StringIO(text.decode())))) > 1
    status, ocsf, _ = await stack.call("GET", "/v1/audit/export", "rev", params={"format": "ocsf"})
    assert status == 200
    assert json.loads(ocsf.decode().splitlines()[0])["class_uid"] == 6003
    actions = {e.action for e in await stack.events(actor_id="rev")}
    assert {Action.AUDIT_QUERIED, Action.AUDIT_VERIFIED, Action.AUDIT_EXPORTED} <= actions
    status, body, _ = await stack.call("GET", "/v1/audit/events", "op1")
    assert status == 403


async def test_aggregates_for_operators(stack: Stack) -> None:
    """Operators get k-anonymous totals with no account identifiers; users may not."""
    await first_message(stack)
    await first_message(stack, "bob", "acct-bob")
    status, report, _ = await stack.call("GET", "/v1/aggregates", "op1")
    assert status == 200
    assert report["k"] == 2
    assert report["rows"]
    assert "account_id" not in json.dumps(report)
    status, _, _ = await stack.call("GET", "/v1/aggregates", "alice")
    assert status == 403
