"""A connector database that `connector serve` and `connector migrate` cannot use: at a migration
revision this build does not know (a newer build's, or a development build's from before the 0.1.0
baseline), a directory, a server that refuses. One line, exit status 2, the database left exactly
as it was; no traceback, no password repeated."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from connector.__main__ import main
from connector.testing.fleet import free_port
from tests.not_databases import directory_url, refused_postgres_url, tree_state
from tests.web.test_serve_cli import _env, _serve


def _at_revision(path: Path, revision: str) -> list[str]:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    db.close()
    return _content(path)


def _content(path: Path) -> list[str]:
    """Schema and rows (the file's bytes change when a connection turns WAL on)."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.mark.parametrize("revision", ["connector_0099", "accounts_0003"])
def test_migrate_refuses_a_revision_it_does_not_know(
    revision: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "connector.db"
    before = _at_revision(path, revision)
    assert main(["migrate", "--db", f"sqlite:///{path}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"revision {revision}, which this build does not know" in lines[0]
    assert _content(path) == before


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_refuses_a_revision_it_does_not_know(workers: str, tmp_path: Path) -> None:
    path = tmp_path / "connector.db"
    before = _at_revision(path, "connector_0099")
    proc = await _serve(_env(tmp_path, free_port()), "--workers", workers)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in err.decode()
    assert "revision connector_0099, which this build does not know" in err.decode()
    assert _content(path) == before


@pytest.mark.parametrize(
    ("kind", "reason"), [("directory", "is a directory"), ("refused PostgreSQL", "cannot connect")]
)
async def test_serve_without_a_usable_connector_database_is_one_line(
    kind: str, reason: str, tmp_path: Path
) -> None:
    """Before, the app's start-up raised from inside aiohttp: a traceback, exit status 1."""
    env = _env(tmp_path, free_port())
    bad = tmp_path / "bad"
    env["CONNECTOR_DATABASE_URL"] = (
        directory_url(bad, "sqlite") if kind == "directory" else refused_postgres_url("c")
    )
    before = tree_state(tmp_path)
    proc = await _serve(env)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith("connector serve: the connector database: ")
    assert reason in lines[0]
    assert "s3cret-pw" not in lines[0]
    assert tree_state(tmp_path) == before
