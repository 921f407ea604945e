"""`connector retention run` from the command line: one audited run over the given databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from audit.log import open_audit_log
from audit.records import QueryFilter
from audit.vocab import Action, ActorKind
from connector.db import create_engine, migrate, session_factory
from connector.policy.models import ConsentRow, table


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "connector", *args], capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}


async def test_run_removes_expired_consents_and_is_audited(tmp_path: Path) -> None:
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
        done = _cli("retention", "run", "--db", db, "--audit-db", audit_db, env=_env())
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["consents_removed"], report["approvals_removed"]) == (1, 0)
        assert report["dormant_noticed"] == []
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
    db, audit_db = f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path / 'a.db'}"
    done = _cli("retention", "run", "--db", db, "--audit-db", audit_db, env=_env())
    assert done.returncode == 2
    assert "connector retention:" in done.stderr
    assert "connector migrate" in done.stderr
    assert "Traceback" not in done.stderr
