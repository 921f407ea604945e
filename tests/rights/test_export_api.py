"""GET /v1/accounts/{id}/export through the running service (SQLite and PostgreSQL): the owner
gets every row about the account and nothing about another user's; others are refused and the
refusal recorded; the export itself is recorded before it leaves; CSV carries the history."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select

from audit.vocab import Action, Decision
from connector.accounts.changes import ChangeKind
from connector.accounts.models import ChangeRow, SyncStateRow
from connector.db import session_factory
from connector.rights.export import EXPORT_TYPE, HISTORY_COLUMNS
from connector.web.keys import SERVICES
from tests.e2e.conftest import ALICE, BOB, first_message, running_stack


async def test_owner_exports_all_about_the_account_and_nothing_else(
    db_url: str, tmp_path: Path
) -> None:
    async with running_stack(db_url, tmp_path) as s:
        alice_msg = await first_message(s, "alice", ALICE)
        bob_msg = await first_message(s, "bob", BOB)
        status, consent, _ = await s.call("POST", f"/v1/accounts/{ALICE}/consents", json={
            "message_ids": [alice_msg["id"]], "grantee_id": "op1", "ttl_days": 2})  # fmt: skip
        assert status == 201, consent
        status, bob_consent, _ = await s.call("POST", f"/v1/accounts/{BOB}/consents", "bob",
            json={"message_ids": [bob_msg["id"]], "grantee_id": "op1", "ttl_days": 2})  # fmt: skip
        assert status == 201, bob_consent
        status, req, _ = await s.call("POST", "/v1/access-requests", "op1", json={
            "account_id": ALICE, "purpose": "security", "case_reference": "SEC-1",
            "reason": "abuse report", "message_ids": [alice_msg["id"]],
            "duration_hours": 2})  # fmt: skip
        assert status == 201, req
        status, _, _ = await s.call("POST", "/v1/access-requests", "op1", json={
            "account_id": BOB, "purpose": "security", "case_reference": "SEC-2",
            "reason": "abuse report", "message_ids": [bob_msg["id"]],
            "duration_hours": 2})  # fmt: skip
        assert status == 201

        status, doc, resp = await s.call("GET", f"/v1/accounts/{ALICE}/export")
        assert status == 200, doc
        assert "attachment" in resp.headers["Content-Disposition"]
        assert doc["type"] == EXPORT_TYPE
        assert doc["account"]["id"] == ALICE
        assert [c["id"] for c in doc["consents"]] == [consent["id"]]
        assert [r["id"] for r in doc["access_requests"]] == [req["id"]]
        assert "case_reference" not in doc["access_requests"][0]  # the staff's case text stays
        history = doc["access_history"]
        # every event about alice's account in the log, and only those (the export's own
        # record included: it was appended before the history was read)
        logged = await s.events(account_id=ALICE)
        ids = {e["event_id"] for e in history}
        assert ids <= {e.event_id for e in logged}
        later = [e for e in logged if e.event_id not in ids]  # the export's reads after it
        assert [e.action for e in later] == [Action.CONSENT_LISTED]
        assert {e["account_id"] for e in history} == {ALICE}
        assert Action.ACCOUNT_DATA_EXPORTED.value in {e["action"] for e in history}
        text = json.dumps(doc)
        for foreign in (BOB, bob_msg["id"], bob_consent["id"], s.bob_email):
            assert foreign not in text

        status, body, resp = await s.call("GET", f"/v1/accounts/{ALICE}/export",
                                          params={"format": "csv"})  # fmt: skip
        assert status == 200
        assert resp.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(body.decode())))
        assert tuple(rows[0]) == HISTORY_COLUMNS
        # this read's records (export, history read) were appended before the history was read
        assert len(rows) - 1 == len(await s.events(account_id=ALICE))
        assert BOB not in body.decode()


async def test_another_user_is_refused_and_recorded(db_url: str, tmp_path: Path) -> None:
    async with running_stack(db_url, tmp_path) as s:
        status, body, _ = await s.call("GET", f"/v1/accounts/{ALICE}/export", "bob")
        assert status == 404, body
        assert body["type"].endswith("account-not-linked")
        exported = await s.events(action=Action.ACCOUNT_DATA_EXPORTED)
        assert [(e.actor.id, e.decision) for e in exported] == [("bob", Decision.DENY)]
        status, body, _ = await s.call("GET", f"/v1/accounts/{ALICE}/export", "op1")
        assert status == 403
        status, body, _ = await s.call("GET", f"/v1/accounts/{ALICE}/export",
                                       params={"format": "xml"})  # fmt: skip
        assert status == 422


async def test_export_holds_the_sync_state_and_the_feed_as_counts(
    db_url: str, tmp_path: Path
) -> None:
    """The account's sync state and its change feed's shape (ids, times, counts), equal to a
    direct read of the tables, and nothing of another user's feed or any Gmail id of the feed."""
    async with running_stack(db_url, tmp_path) as s:
        engine = s.app[SERVICES].engine
        at = datetime(2026, 3, 1, tzinfo=UTC)
        async with session_factory(engine)() as session, session.begin():
            await session.execute(delete(SyncStateRow))  # whatever the stack's own sync wrote
            await session.execute(delete(ChangeRow))
            session.add_all([
                SyncStateRow(account_id=ALICE, history_id="9001", updated_at=at,
                             watch_expires_at=at + timedelta(days=7), last_full_sync_at=at,
                             consecutive_failures=2),
                SyncStateRow(account_id=BOB, history_id="777000111222", updated_at=at),
                *(_change(ALICE, ChangeKind.MESSAGE_ADDED, f"m-secret-{i}", at) for i in range(3)),
                _change(ALICE, ChangeKind.LABELS_ADDED, "m-secret-9", at),
                *(_change(BOB, ChangeKind.MESSAGE_ADDED, f"m-bob-{i}", at) for i in range(5)),
            ])  # fmt: skip
        async with session_factory(engine)() as session:
            query = select(ChangeRow.seq).where(ChangeRow.account_id == ALICE)
            seqs = sorted((await session.execute(query)).scalars())

        status, doc, _ = await s.call("GET", f"/v1/accounts/{ALICE}/export")
        assert status == 200, doc
        assert doc["sync_state"] == {
            "history_id": "9001", "updated_at": at.isoformat(),
            "watch_expires_at": (at + timedelta(days=7)).isoformat(),
            "last_full_sync_at": at.isoformat(), "consecutive_failures": 2,
        }  # fmt: skip
        assert doc["change_feed"] == {
            "entries": 4, "by_kind": {ChangeKind.LABELS_ADDED: 1, "message_added": 3},
            "first_seq": seqs[0], "last_seq": seqs[-1],
        }  # fmt: skip
        text = json.dumps(doc)
        for foreign in ("m-secret", "777000111222", "m-bob"):
            assert foreign not in text

        async with session_factory(engine)() as session, session.begin():
            await session.execute(delete(SyncStateRow).where(SyncStateRow.account_id == ALICE))
            await session.execute(delete(ChangeRow).where(ChangeRow.account_id == ALICE))
        status, doc, _ = await s.call("GET", f"/v1/accounts/{ALICE}/export")
        assert status == 200, doc
        assert doc["sync_state"] is None
        assert doc["change_feed"] == {"entries": 0, "by_kind": {}, "first_seq": None,
                                      "last_seq": None}  # fmt: skip


def _change(account: str, kind: ChangeKind, message_id: str, at: datetime) -> ChangeRow:
    return ChangeRow(account_id=account, kind=kind.value, message_id=message_id, label_ids=[],
                     message_ids=[], created_at=at)  # fmt: skip
