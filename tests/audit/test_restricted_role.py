"""On PostgreSQL the service logs in as audit_writer: INSERT and SELECT, nothing RESET ROLE
could widen; migrations run separately as the owner; a more privileged login is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from audit import open_audit_log
from audit.errors import AuditPrivilegeError, MigrationRefusedError
from audit.log import migrate_audit_log
from audit.schema import APPEND_ONLY_TABLES, OWNER_ROLE, WRITER_ROLE
from audit.signing import generate_key
from audit.trust import TrustedKeys
from tests.audit.helpers import login_as, make_event
from tests.audit.test_cli import run
from tests.conftest import _drop_pg_db, _make_pg_db


@pytest.fixture
async def migrated(pg_database: str) -> str:
    """A database whose audit schema the owner (the server's superuser) created."""
    await migrate_audit_log(pg_database)
    return pg_database


async def test_writer_login_appends_but_cannot_change_rows_even_after_reset_role(
    migrated: str,
) -> None:
    """audit_writer appends; after RESET ROLE UPDATE/DELETE/TRUNCATE/SET ROLE/DROP TRIGGER fail."""
    key = generate_key()
    writer = login_as(migrated, WRITER_ROLE)
    log = await open_audit_log(writer, signing_key=key, checkpoint_every=2, restricted=True)
    try:
        receipts = [await log.append(make_event(i)) for i in range(4)]
        report = await log.verify(trusted=TrustedKeys.of([key.public_key()]))
    finally:
        await log.close()
    assert [r.seq for r in receipts] == [1, 2, 3, 4]
    assert (report.ok, report.signed_seq) == (True, 4)
    conn = await asyncpg.connect(writer)
    try:
        await conn.execute("RESET ROLE")
        assert await conn.fetchval("SELECT current_user") == WRITER_ROLE
        for table in APPEND_ONLY_TABLES:
            for statement in (f"UPDATE {table} SET {_column(table)} = {_column(table)}",
                              f"DELETE FROM {table}", f"TRUNCATE {table}"):  # fmt: skip
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        for statement in (f"SET ROLE {OWNER_ROLE}", "SET ROLE postgres",
                          "DROP TRIGGER audit_events_no_change ON audit_events",
                          "ALTER TABLE audit_events DISABLE TRIGGER ALL"):  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 4
    finally:
        await conn.close()


def _column(table: str) -> str:
    return {"audit_events": "body", "audit_checkpoints": "signature", "audit_keys": "public_pem",
            "audit_meta": "value", "audit_schema": "applied_at"}[table]  # fmt: skip


async def test_an_administrator_login_is_refused(migrated: str) -> None:
    """Opened restricted with the superuser's URL, the log refuses to start, naming why."""
    with pytest.raises(AuditPrivilegeError, match="login postgres is a superuser"):
        await open_audit_log(migrated, restricted=True)


@pytest.fixture
async def extra_role(migrated: str) -> AsyncIterator[tuple[str, str]]:
    """A login role of our own on the migrated database, dropped afterwards."""
    name = f"t_role_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(migrated)
    try:
        await admin.execute(f"CREATE ROLE {name} LOGIN")
        await admin.execute(f"GRANT {WRITER_ROLE} TO {name}")
        yield name, migrated
        await admin.execute(f"DROP OWNED BY {name}")
        await admin.execute(f"DROP ROLE {name}")
    finally:
        await admin.close()


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ("GRANT UPDATE, DELETE ON audit_events TO {role}", "holds UPDATE, DELETE on audit_events"),
        ("GRANT TRUNCATE ON audit_checkpoints TO {role}", "holds TRUNCATE on audit_checkpoints"),
        (f"GRANT {OWNER_ROLE} TO {{role}}", f"(through role {OWNER_ROLE}) owns audit_events"),
        ("ALTER ROLE {role} CREATEROLE", "has CREATEROLE"),
    ],
)
async def test_a_login_with_more_than_insert_and_select_is_refused(
    extra_role: tuple[str, str], grant: str, problem: str
) -> None:
    """Any right beyond INSERT/SELECT, held directly or through a role it can become, is named."""
    role, url = extra_role
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(grant.format(role=role))
    finally:
        await admin.close()
    with pytest.raises(AuditPrivilegeError) as refused:
        await open_audit_log(login_as(url, role), restricted=True)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


async def test_a_login_with_only_writer_rights_is_accepted(extra_role: tuple[str, str]) -> None:
    """A login that is a member of audit_writer and nothing else passes the check."""
    role, url = extra_role
    log = await open_audit_log(login_as(url, role), restricted=True)
    try:
        assert (await log.append(make_event(0))).seq == 1
    finally:
        await log.close()


async def test_migrations_run_separately_as_the_owner(migrated: str) -> None:
    """admin_url migrates as the owner; a writer facing no schema gets a clear error."""
    fresh = await _make_pg_db()
    try:
        with pytest.raises(MigrationRefusedError, match="audit migrate --db OWNER_URL"):
            await open_audit_log(login_as(fresh, WRITER_ROLE), restricted=True)
        log = await open_audit_log(login_as(fresh, WRITER_ROLE), admin_url=fresh, restricted=True)
        try:
            assert (await log.append(make_event(0))).seq == 1
        finally:
            await log.close()
    finally:
        await _drop_pg_db(fresh)


async def test_audit_migrate_command(pg_database: str) -> None:
    """`audit migrate` as the owner exits 0; as the writer on an empty database 2 with advice."""
    await _ensure_roles()
    refused = await run("migrate", "--db", login_as(pg_database, WRITER_ROLE))
    assert refused.returncode == 2
    assert "may not create it" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = await run("migrate", "--db", pg_database)
    assert done.returncode == 0, done.stderr
    assert f"logs in as {WRITER_ROLE}" in done.stderr
    verify = await run("verify", "--db", login_as(pg_database, WRITER_ROLE))
    assert verify.returncode == 3  # an empty, intact log; no keys pinned


async def _ensure_roles() -> None:
    """The cluster-wide roles exist once any database was migrated; make sure of that here."""
    url = await _make_pg_db()
    await migrate_audit_log(url)
    await _drop_pg_db(url)
