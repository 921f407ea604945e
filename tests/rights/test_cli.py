"""`connector retention run` from the command line: the service's run, over the given databases.

It builds what the service builds (the accounts domain's unlinker, the service's audit log), so a
dormant account past its notice is unlinked from the command line too: revoked at the emulator,
purged, a signed receipt in the report, `account.unlinked` and `retention.run` recorded as in the
service. Without the OAuth client (or the vault keys) it says so in one line and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from audit.log import open_audit_log
from audit.receipts import ReceiptStatus, verify_receipt
from audit.records import QueryFilter
from audit.signing import generate_key, save_private_key
from audit.trust import TrustedKeys
from audit.vocab import Action, ActorKind, Decision
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow
from connector.accounts.vault import generate_key_entry
from connector.db import create_engine, migrate, session_factory
from connector.emulator.server import Emulator
from connector.policy.models import ConsentRow, table
from connector.rights.retention import SYSTEM
from tests.linking.conftest import HASH_KEY, Linking, link_account

DAY = timedelta(days=1)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "connector", *args], capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip


def _env(**connector: str) -> dict[str, str]:
    """The process environment without any CONNECTOR_* variable, plus `connector` ones."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return base | {f"CONNECTOR_{name.upper()}": value for name, value in connector.items()}


def _service_env(google: Emulator | None = None, **extra: str) -> dict[str, str]:
    """What `connector serve` would also have: the OAuth client, vault keys, hash key."""
    oauth = (
        dict(google.connector_settings())
        if google is not None
        else {"oauth_client_id": "client-id", "oauth_client_secret": "client-secret"}
    )
    keys = extra.pop("vault_keys", None) or generate_key_entry("k1")
    # what the test names itself wins over the emulator's defaults
    return _env(**(oauth | {"vault_keys": keys, "audit_hash_key": HASH_KEY.decode()} | extra))


async def test_run_removes_expired_consents_and_is_audited(tmp_path: Path) -> None:
    """A run with nothing dormant: expired consents out, one retention.run by the connector."""
    db, audit_db = f"sqlite:///{tmp_path / 'c.db'}", f"sqlite:///{tmp_path / 'a.db'}"
    engine = create_engine(db)
    past = datetime(2020, 1, 1, tzinfo=UTC)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            for cid, expires in (("gone", past), ("kept", past + timedelta(days=365 * 100))):
                session.add(
                    ConsentRow(
                        id=cid, account_id="acc-a", granted_by="user-a", grantee_kind="operator",
                        grantee_id="op1", message_ids=[], created_at=past, expires_at=expires,
                    )
                )  # fmt: skip
        done = _cli("retention", "run", "--db", db, "--audit-db", audit_db, env=_service_env())
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["consents_removed"], report["approvals_removed"]) == (1, 0)
        assert (report["dormant_noticed"], report["dormant_unlinked"]) == ([], [])
        assert report["audit_segments"] is None  # no CONNECTOR_AUDIT_ARCHIVE_DIR
        async with session_factory(engine)() as session:
            left = (await session.execute(select(table(ConsentRow).c.id))).scalars().all()
        assert left == ["kept"]
    finally:
        await engine.dispose()
    log = await open_audit_log(audit_db, create=False)
    try:
        runs = [e async for e in log.iter_events(QueryFilter(action=Action.RETENTION_RUN))]
    finally:
        await log.close()
    assert [(s.event.actor.kind, s.event.reasons[0]) for s in runs] == [
        (ActorKind.SYSTEM, "consents_removed:1")
    ]


def test_a_database_without_tables_exits_2(tmp_path: Path) -> None:
    """No connector tables: one line naming `connector migrate`, exit 2, no traceback."""
    db, audit_db = f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path / 'a.db'}"
    done = _cli("retention", "run", "--db", db, "--audit-db", audit_db, env=_service_env())
    assert done.returncode == 2
    assert "connector retention:" in done.stderr
    assert "connector migrate" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_the_oauth_client_it_says_so_and_writes_nothing(tmp_path: Path) -> None:
    """Dormant accounts cannot be unlinked without the OAuth client: said, never skipped."""
    db, audit_db = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "a.db"
    env = _env(vault_keys=generate_key_entry("k1"), audit_hash_key="hk")
    done = _cli("retention", "run", "--db", db, "--audit-db", f"sqlite:///{audit_db}", env=env)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("connector retention: the run unlinks dormant accounts")
    assert "CONNECTOR_OAUTH_CLIENT_ID is required" in lines[0]
    assert "CONNECTOR_OAUTH_CLIENT_SECRET (or CONNECTOR_OAUTH_CLIENT_SECRET_FILE)" in lines[0]
    assert "JWT" not in lines[0]  # what the run does not need is not asked for
    assert done.stdout == ""
    assert not audit_db.exists()
    assert not (tmp_path / "c.db").exists()
    env = _env(oauth_client_id="id", oauth_client_secret="secret", audit_hash_key="hk")
    no_vault = _cli("retention", "run", "--db", db, env=env)
    assert no_vault.returncode == 2
    assert "CONNECTOR_VAULT_KEYS" in no_vault.stderr


def test_archive_settings_the_run_cannot_use_are_said_first(tmp_path: Path) -> None:
    """CONNECTOR_AUDIT_ARCHIVE_DIR naming no directory, without a signing key: one line each
    problem, exit 2, no database written."""
    db, audit_db = tmp_path / "c.db", tmp_path / "a.db"
    env = _service_env(audit_archive_dir=str(tmp_path / "absent"))
    done = _cli("retention", "run", "--db", f"sqlite:///{db}", "--audit-db", f"sqlite:///{audit_db}",
                env=env)  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "CONNECTOR_AUDIT_ARCHIVE_DIR names" in done.stderr
    assert "which is not a directory" in done.stderr
    assert "needs CONNECTOR_AUDIT_SIGNING_KEY_FILE" in done.stderr
    assert not db.exists()
    assert not audit_db.exists()


async def test_a_dormant_account_is_unlinked_from_the_command_line(
    linking: Linking, tmp_path: Path
) -> None:
    """Linked through the emulator, inactive a year and noticed 31 days ago: the command-line
    run revokes its grant at the emulator, purges it, and records what the service records."""
    w = linking
    account = await link_account(w)
    now = datetime.now(UTC)
    async with session_factory(w.engine)() as session, session.begin():
        accounts = table(AccountRow)
        await session.execute(
            update(accounts).where(accounts.c.id == account.id).values(updated_at=now - 400 * DAY)
        )
        session.add(
            ChangeRow(account_id=account.id, kind=ChangeKind.DORMANT_NOTICE.value, label_ids=[],
                      message_ids=[], created_at=now - 31 * DAY)
        )  # fmt: skip
    key = generate_key()
    key_file = tmp_path / "signing.pem"
    save_private_key(key, key_file)
    audit_db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = _service_env(w.emu, vault_keys=w.keys, audit_signing_key_file=str(key_file))
    args = ("retention", "run", "--db", w.url, "--audit-db", audit_db)
    done = await asyncio.to_thread(_cli, *args, env=env)  # the emulator answers meanwhile
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dormant_noticed"] == []
    [receipt] = report["dormant_unlinked"]
    assert (receipt["account_id"], receipt["revocation"]) == (account.id, "revoked")
    check = verify_receipt(receipt, TrustedKeys.of([key.public_key()]))
    assert (check.status, check.problems) == (ReceiptStatus.VALID, [])
    assert all(t.revoked for t in w.emu.tokens.refresh_tokens.values())
    async with session_factory(w.engine)() as session:
        assert await session.get(AccountRow, account.id) is None
        feed = select(ChangeRow.kind).where(ChangeRow.account_id == account.id)
        assert list((await session.execute(feed)).scalars()) == [ChangeKind.UNLINKED.value]
    log = await open_audit_log(audit_db, create=False)
    try:
        events = [s.event async for s in log.iter_events(QueryFilter())]
        assert (await log.verify()).ok
    finally:
        await log.close()
    assert [(e.action, e.actor, e.decision) for e in events] == [
        (Action.ACCOUNT_UNLINKED, SYSTEM, Decision.ALLOW),
        (Action.RETENTION_RUN, SYSTEM, Decision.ALLOW),
    ]
    assert receipt["audit_event"]["id"] == events[0].event_id
    assert events[1].reasons[-2:] == ("dormant_noticed:0", "dormant_unlinked:1")
