"""The `audit` command as people use it: the database from CONNECTOR_AUDIT_DATABASE_URL, bad
values answered with the valid ones, quiet when piped into `head`, progress and a summary on
export, and "who runs this" (`--as-reviewer`) kept apart from the `--actor-id` filter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit import ActorKind, QueryFilter, open_audit_log
from audit.vocab import Action
from tests.audit.helpers import make_event

EVENTS = 30_000  # enough for several progress lines and a pipe that closes early


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite audit log holding EVENTS events (built once for the module)."""
    path = tmp_path_factory.mktemp("audit") / "audit.db"
    url = f"sqlite:///{path}"

    async def fill() -> None:
        log = await open_audit_log(url)
        try:
            await asyncio.gather(*(log.append(make_event(i)) for i in range(EVENTS)))
        finally:
            await log.close()

    asyncio.run(fill())
    return url


def _audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CONNECTOR_AUDIT_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "audit", *args], capture_output=True, text=True, check=False,
        env={**environ, **(env or {})}, timeout=120,
    )  # fmt: skip


def test_db_comes_from_the_environment(big_log: str) -> None:
    """Without --db the command uses CONNECTOR_AUDIT_DATABASE_URL, as the service does."""
    done = _audit("query", "--limit", "2", env={"CONNECTOR_AUDIT_DATABASE_URL": big_log})
    assert done.returncode == 0, done.stderr
    assert "SEQ" in done.stdout


def test_missing_db_is_a_clear_usage_error() -> None:
    """Neither --db nor the variable: exit 2 naming both, no traceback."""
    done = _audit("query")
    assert done.returncode == 2
    assert "--db" in done.stderr
    assert "CONNECTOR_AUDIT_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("flag", "valid"),
    [("--action", "gmail.message.read"), ("--purpose", "user_feature"), ("--decision", "deny")],
)
def test_bad_enum_value_lists_the_valid_ones(big_log: str, flag: str, valid: str) -> None:
    """An unknown action, purpose or decision is refused with the list of valid values."""
    done = _audit("query", "--db", big_log, flag, "bogus")
    assert done.returncode == 2
    assert "'bogus'" in done.stderr
    assert valid in done.stderr


def test_piping_into_head_is_quiet(big_log: str) -> None:
    """`audit export | head -n 1` prints one line and no BrokenPipeError."""
    done = subprocess.run(
        f"{sys.executable} -m audit export --db {big_log} | head -n 1",
        shell=True, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.stdout.count("\n") == 1
    assert "BrokenPipeError" not in done.stderr
    assert "Traceback" not in done.stderr


def test_export_reports_progress_and_a_summary(big_log: str, tmp_path: Path) -> None:
    """A large export says how far it got on stderr and ends with the count and destination."""
    out = tmp_path / "trail.jsonl"
    done = _audit("export", "--db", big_log, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 10000 events so far" in done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    written = len(out.read_text().splitlines())  # the log's own queries and exports included
    assert written > EVENTS
    assert summary == f"exported {written} events (jsonl) to {out}"


async def test_as_reviewer_names_who_runs_the_command(tmp_path: Path) -> None:
    """--as-reviewer records the reviewer; --actor-id only filters; the old --actor still works."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = await open_audit_log(url)
    await log.append(make_event(1))
    await log.close()
    for flag in ("--as-reviewer", "--actor"):
        done = await asyncio.to_thread(
            _audit, "query", "--db", url, flag, "rev-9", "--actor-id", "u1"
        )
        assert done.returncode == 0, done.stderr
    helped = await asyncio.to_thread(_audit, "query", "--help")
    assert "--as-reviewer" in helped.stdout
    assert "--actor REVIEWER" not in helped.stdout  # the confusing spelling is not offered
    log = await open_audit_log(url, create=False)
    try:
        recorded = await log.query(QueryFilter(action=Action.AUDIT_QUERIED))
    finally:
        await log.close()
    assert [(s.event.actor.kind, s.event.actor.id) for s in recorded] == [
        (ActorKind.REVIEWER, "rev-9"),
        (ActorKind.REVIEWER, "rev-9"),
    ]
