"""Shared fixtures: real PostgreSQL databases (from scripts/test.sh) and SQLite files.

`CONNECTOR_TEST_PG_URL` names a throwaway server's admin URL. Under `scripts/test.sh` (and so in
CI) `CONNECTOR_REQUIRE_PG=1` makes a missing server a failure, never a skip.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

PG_ADMIN_URL = os.environ.get("CONNECTOR_TEST_PG_URL", "")
REQUIRE_PG = os.environ.get("CONNECTOR_REQUIRE_PG") == "1"


def _require_pg() -> str:
    if not PG_ADMIN_URL:
        if REQUIRE_PG:
            pytest.fail("CONNECTOR_TEST_PG_URL is not set but PostgreSQL tests are required")
        pytest.skip("no PostgreSQL server: run the suite through scripts/test.sh")
    return PG_ADMIN_URL


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that call `configure_logging` bind loggers to pytest's capture streams, which close
    after the test; put structlog and the stdlib root logger back so later tests never write to
    a closed stream."""
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**structlog_config)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def pg_admin_url() -> str:
    """The throwaway server's superuser URL (plain postgresql:// form)."""
    return _require_pg()


@pytest.fixture
async def pg_database(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the throwaway server; plain `postgresql://` URL, dropped after."""
    url = await _make_pg_db()  # on the server `pg_admin_url` names
    yield url
    await _drop_pg_db(url)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite database file, disposed after the test."""
    from connector.db import create_engine, migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp client session, closed after the test."""
    async with aiohttp.ClientSession() as s:
        yield s


class Clock:
    """A clock the test sets by hand (`clock.now = ...`), callable as the stores' `Clock`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Run a storage test on both engines: a SQLite file and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    pg_url: str = await _make_pg_db()
    try:
        yield pg_url
    finally:
        await _drop_pg_db(pg_url)


async def _make_pg_db() -> str:
    admin_url = _require_pg()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


async def _drop_pg_db(url: str) -> None:
    admin_url = _require_pg()
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
