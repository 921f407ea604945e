"""`connector evidence` over a seeded run, and `audit verify-pack` on the pack and on tampering."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main as audit_main
from audit.encoding import parse_time
from audit.event import Actor, AuditEvent
from audit.log import open_audit_log
from audit.records import QueryFilter, StoredEvent
from audit.vocab import FORBIDDEN_PURPOSES, Action, ActorKind, Decision, Outcome, Phase, Purpose
from connector.__main__ import main as connector_main
from connector.accounts.vault import generate_key_entry
from connector.db import create_engine, session_factory
from connector.evidence.bases import GONE
from connector.policy.models import AccessRequestRow
from tests.evidence.conftest import REQUEST_ID, Seeded

EXPIRY = datetime(2026, 6, 1, 12, tzinfo=UTC)
SECTIONS = ("scopes", "rules", "tests", "period", "chain", "tokens", "threats", "controls")


def _make(seeded: Seeded, out: Path, *extra: str) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):
        assert connector_main(seeded.evidence(out, *extra)) == 0
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


async def _events(seeded: Seeded, manifest: dict[str, Any]) -> list[StoredEvent]:
    period = manifest["period"]
    until = parse_time(period["until"])
    log = await open_audit_log(seeded.db, create=False)
    try:
        found = [s async for s in log.iter_events(QueryFilter(until=until))]
    finally:
        await log.close()
    return [s for s in found if s.seq <= manifest["audit_log"]["head_seq"]]


def _key(s: StoredEvent) -> str:
    purpose = s.event.purpose.value if s.event.purpose else "-"
    return f"{purpose}/{s.event.decision.value}"


def test_pack_figures_equal_a_direct_count_of_the_log(seeded: Seeded, tmp_path: Path) -> None:
    """Each figure in the manifest is what counting the decoded events of the period gives."""
    manifest = _make(seeded, tmp_path / "pack")
    events = asyncio.run(_events(seeded, manifest))
    figures = manifest["figures"]
    assert figures["events"] == len(events) > 20
    assert figures["by_purpose_decision"] == dict(Counter(_key(s) for s in events))
    gated = [s for s in events if s.event.action.value.startswith("gmail.")
             and s.event.phase is Phase.DECISION]  # fmt: skip
    assert figures["accesses"] == dict(Counter(_key(s) for s in gated))
    refused = [
        s.seq
        for s in events
        if s.event.decision is Decision.DENY or s.event.outcome is Outcome.DENIED
    ]
    assert [r["seq"] for r in figures["refusals"]] == refused
    assert len(refused) >= 2
    forbidden = [
        s.seq for s in events if s.seq in refused and s.event.purpose in FORBIDDEN_PURPOSES
    ]
    assert figures["forbidden_purpose"] == forbidden
    assert len(forbidden) == 1
    human = [s.seq for s in gated if s.event.actor.kind is ActorKind.OPERATOR]
    # The consented read, the refused one, the forbidden-purpose attempt, the approved read.
    assert [h["seq"] for h in figures["human_accesses"]] == human
    assert len(human) == 4
    basis = {h["seq"]: (h["basis"] or {}).get("kind") for h in figures["human_accesses"]}
    assert Counter(basis.values()) == {"consent": 2, "access_request": 1, None: 1}
    approved = [h for h in figures["human_accesses"] if basis[h["seq"]] == "access_request"]
    assert [(h["basis"]["id"], h["approver"]) for h in approved] == [(REQUEST_ID, "op-oscar")]
    unlinks = [(s.seq, s.hash) for s in events if s.event.action is Action.ACCOUNT_UNLINKED]
    assert [(u["seq"], u["hash"]) for u in figures["unlinks"]] == unlinks
    assert len(unlinks) == 1
    assert figures["needs_relink"] == ["acct-seeded-extra"]
    assert manifest["chain"]["authenticity"] == "authentic"
    assert manifest["tests"]["status"] == "skipped"


def test_the_page_has_every_section_and_no_remote_resource(seeded: Seeded, tmp_path: Path) -> None:
    """index.html shows each section with the figures; it loads nothing from elsewhere."""
    out = tmp_path / "pack"
    manifest = _make(seeded, out)
    page = (out / "index.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    figures = manifest["figures"]
    assert f"Every human access ({len(figures['human_accesses'])})" in page
    assert f"Every refused attempt ({len(figures['refusals'])})" in page
    assert "purpose.forbidden" in page
    assert "https://www.googleapis.com/auth/gmail.readonly" in page
    assert "user.own_mailbox" in page
    assert "AES-256-GCM" in page
    assert "V7.3.3" in page
    assert figures["unlinks"][0]["hash"] in page
    for remote in ('src="http', "src='http", "<script", "<link", "@import", "url("):
        assert remote not in page
    assert (out / "screenshots" / "03-google-consent.png").is_file()
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["figures"] == figures
    assert evidence["tokens"]["rotations"] == []


def _verify(
    seeded: Seeded, pack: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = audit_main(seeded.verify(pack, *extra))
    return code, capsys.readouterr().out


def test_verify_pack_accepts_an_untouched_pack(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed by the pinned key, every file as listed, figures as the log gives them: exit 0."""
    out = tmp_path / "pack"
    _make(seeded, out)
    code, text = _verify(seeded, out, capsys)
    assert code == 0, text
    assert text.startswith("VALID")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: (p / "index.html").write_text((p / "index.html").read_text().replace(
            "Every refused attempt", "Every attempt")), "index.html was altered"),
        (lambda p: (p / "notes.txt").write_text("added"), "notes.txt is in the pack but not"),
        (lambda p: (p / "screenshots" / "02-disclosure.png").unlink(),
         "02-disclosure.png is listed in the manifest but missing"),
        (lambda p: (p / "manifest.json").write_text((p / "manifest.json").read_text().replace(
            '"forbidden_purpose": [', '"forbidden_purpose": [1, ')),
         "the signature does not verify"),
    ],
    ids=["edited_page", "added_file", "removed_file", "edited_figures"],
)  # fmt: skip
def test_tampering_with_the_pack_fails(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: Any, message: str
) -> None:
    """Any change to a pack file is named, and the exit status is 1."""
    out = tmp_path / "pack"
    _make(seeded, out)
    tamper(out)
    code, text = _verify(seeded, out, capsys)
    assert code == 1
    assert text.startswith("INVALID"), text
    assert message in text, text


def _raw(db: str, *statements: str) -> None:
    conn = sqlite3.connect(db.split(":///", 1)[1], isolation_level=None)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        conn.execute("BEGIN")
        for name in names:
            conn.execute(f"DROP TRIGGER {name}")  # as an attacker with file access would
        for statement in statements:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_tampering_with_the_log_fails(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refusal rewritten as allowed in the log: the chain is damaged and the figures differ."""
    out = tmp_path / "pack"
    manifest = _make(seeded, out)
    seq = manifest["figures"]["refusals"][0]["seq"]
    _raw(seeded.db, f"UPDATE audit_events SET decision = 'allow' WHERE seq = {seq}")
    code, text = _verify(seeded, out, capsys)
    assert code == 1
    assert f"the audit log is damaged: seq {seq}" in text
    assert "figure 'by_purpose_decision' does not match the audit log" in text


def test_a_rewritten_log_head_fails(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log cut back to before the pack's head cannot pass as the log the pack was made from."""
    out = tmp_path / "pack"
    manifest = _make(seeded, out)
    head = manifest["audit_log"]["head_seq"]
    _raw(seeded.db, f"DELETE FROM audit_events WHERE seq >= {head}",
         f"DELETE FROM audit_checkpoints WHERE seq >= {head}")  # fmt: skip
    code, text = _verify(seeded, out, capsys)
    assert code == 1
    assert f"no event at the pack's head seq {head}" in text


def test_without_pinned_keys_the_pack_is_not_authenticated(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key the manifest carries proves nothing alone: exit 3 and it says so."""
    out = tmp_path / "pack"
    _make(seeded, out)
    code = audit_main(["verify-pack", str(out), "--db", seeded.db])
    text = capsys.readouterr().out
    assert code == 3
    assert "NOT AUTHENTICATED" in text


def test_a_period_limits_the_figures(seeded: Seeded, tmp_path: Path) -> None:
    """--since after every event: nothing counted, the relink state still as of the end."""
    manifest = _make(seeded, tmp_path / "pack", "--since", "2999-01-01", "--until", "2999-01-02")
    figures = manifest["figures"]
    assert figures["events"] == 0
    assert figures["refusals"] == []
    assert figures["unlinks"] == []
    assert figures["needs_relink"] == ["acct-seeded-extra"]
    assert manifest["period"] == {"since": "2999-01-01T00:00:00.000000Z",
                                  "until": "2999-01-02T00:00:00.000000Z"}  # fmt: skip


async def _approved_request(url: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            session.add(AccessRequestRow(
                id=REQUEST_ID, account_id="acct-seeded-extra", requester_id="op-olivia",
                purpose="security", case_reference="case-1", reason="incident", message_ids=["m1"],
                duration_seconds=3600, status="approved", created_at=EXPIRY - timedelta(hours=2),
                decided_by="op-oscar", decided_at=EXPIRY - timedelta(hours=1), expires_at=EXPIRY,
            ))  # fmt: skip
    finally:
        await engine.dispose()


def test_each_basis_shows_its_expiry_from_the_service_database(
    seeded: Seeded, tmp_path: Path
) -> None:
    """With --database, an approved request's row gives its expiry; a consent purged with its
    account is said to be gone; without it, the page says the records were not read."""
    url = f"sqlite+aiosqlite:///{seeded.directory / 'connector.db'}"
    asyncio.run(_approved_request(url))
    out = tmp_path / "pack"
    _make(seeded, out, "--database", url)
    evidence = json.loads((out / "evidence.json").read_text())
    bases = evidence["bases"]
    assert bases[REQUEST_ID] == {"kind": "access_request", "by": "op-oscar",
                                 "expires_at": "2026-06-01T12:00:00.000000Z"}  # fmt: skip
    consents = [b for b in bases.values() if b["kind"] == "consent"]
    assert consents == [{"kind": "consent", "note": GONE}]
    page = (out / "index.html").read_text()
    assert "2026-06-01T12:00:00.000000Z" in page
    assert GONE in page
    _make(seeded, tmp_path / "without")
    assert (
        "not given to the generator: pass --database"
        in (tmp_path / "without" / "index.html").read_text()
    )


async def _rotated(seeded: Seeded) -> int:
    log = await open_audit_log(seeded.db, create=False)
    try:
        event = AuditEvent(Actor(ActorKind.SYSTEM, "vault-cli"), Action.VAULT_KEY_ROTATED,
                           Decision.ALLOW, Outcome.OK, purpose=Purpose.USER_FEATURE,
                           reasons=("current:k2026",),
                           time=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
        return (await log.append(event)).seq
    finally:
        await log.close()


def test_token_protection_names_key_ids_never_keys(
    seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault ring's ids (current first) are in the pack; no key, nor the signing key, is."""
    ring = f"{generate_key_entry('k2026')},{generate_key_entry('k2025')}"
    monkeypatch.setenv("CONNECTOR_VAULT_KEYS", ring)
    rotated = asyncio.run(_rotated(seeded))
    out = tmp_path / "pack"
    _make(seeded, out)
    tokens = json.loads((out / "evidence.json").read_text())["tokens"]
    assert tokens["current_key_id"] == "k2026"
    assert tokens["rotations"] == [{"seq": rotated, "time": "2026-05-01T00:00:00.000000Z",
                                    "reasons": ["current:k2026"]}]  # fmt: skip
    assert tokens["key_ids"] == ["k2025", "k2026"]
    secrets = [entry.split(":", 1)[1] for entry in ring.split(",")]
    signing = (seeded.directory / "audit-signing.pem").read_text().splitlines()[1]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in [*secrets, signing]), path
            assert b"PRIVATE KEY" not in data
