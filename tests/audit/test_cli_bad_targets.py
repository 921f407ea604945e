"""Every `audit` subcommand that opens a log, given something that is not one: an empty file,
a text file, a directory, a missing file, a PostgreSQL server that refuses. Each says so in one
line on stderr and exits 2, never with a traceback, and leaves the path as it was (no database
written into the empty file, no file created, no -wal or -journal beside it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.cli import main
from tests.not_databases import directory_url, refused_postgres_url, text_file_url, tree_state

Make = Callable[[Path], str]


def _empty(tmp: Path) -> str:
    (tmp / "audit.db").write_bytes(b"")
    return f"sqlite:///{tmp / 'audit.db'}"


def _missing(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'audit.db'}"


def _refused(_tmp: Path) -> str:
    return refused_postgres_url("audit")


KINDS: dict[str, tuple[Make, str]] = {
    "empty file": (_empty, "is an empty file"),
    "text file": (lambda tmp: text_file_url(tmp / "audit.db"), "is not a SQLite database"),
    "directory": (lambda tmp: directory_url(tmp / "audit.db"), "is a directory"),
    "missing file": (_missing, "does not exist"),
    "refused PostgreSQL": (_refused, "cannot connect"),
}


def _inputs(tmp: Path) -> dict[str, Path]:
    """What each subcommand reads besides the log: a pack and a receipt that parse."""
    inputs = tmp / "inputs"
    (inputs / "pack").mkdir(parents=True)
    (inputs / "pack" / "manifest.json").write_text(json.dumps({"type": "not-checked-here"}))
    (inputs / "receipt.json").write_text("{}")
    return {"pack": inputs / "pack", "receipt": inputs / "receipt.json"}


COMMANDS: dict[str, Callable[[dict[str, Path]], list[str]]] = {
    "verify": lambda _: ["verify"],
    "query": lambda _: ["query"],
    "export": lambda _: ["export"],
    "checkpoints": lambda _: ["checkpoints"],
    "verify-pack": lambda i: ["verify-pack", str(i["pack"])],
    "verify-receipt": lambda i: ["verify-receipt", str(i["receipt"])],
    "migrate": lambda _: ["migrate"],
}
# `migrate` creates the log: a missing or empty file is where it goes, not a mistake.
CREATES = {("migrate", "empty file"), ("migrate", "missing file")}


@pytest.mark.parametrize(
    ("command", "kind"), [(c, k) for c in COMMANDS for k in KINDS if (c, k) not in CREATES]
)
def test_not_an_audit_log_is_one_line_and_leaves_the_path(
    command: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, reason = KINDS[kind]
    inputs = _inputs(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    url = make(logs)
    before = tree_state(tmp_path)
    code = main([*COMMANDS[command](inputs), "--db", url])
    said = capsys.readouterr()
    assert code == 2
    lines = said.err.strip().splitlines()
    assert len(lines) == 1, said.err
    assert lines[0].startswith("audit: cannot open the audit log: ")
    assert reason in lines[0]
    assert "s3cret-pw" not in said.err + said.out  # a URL's password is never repeated
    assert tree_state(tmp_path) == before


def test_migrate_creates_a_log_in_a_missing_or_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for make in (_missing, _empty):
        directory = tmp_path / make.__name__
        directory.mkdir()
        url = make(directory)
        assert main(["migrate", "--db", url]) == 0
        assert main(["verify", "--db", url]) == 3  # a log now: intact, no pinned keys
    capsys.readouterr()


def test_no_traceback_from_the_command_line(tmp_path: Path) -> None:
    """The installed entry point, not only main(): one line, exit 2, no traceback."""
    url = text_file_url(tmp_path / "audit.db")
    environ = {k: v for k, v in os.environ.items() if k != "CONNECTOR_AUDIT_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "audit", "verify", "--db", url],
        capture_output=True, text=True, check=False, env=environ, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
