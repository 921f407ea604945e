"""`connector` commands that open a database, given a path that is none (a text file, a
directory) or a PostgreSQL server that refuses: one line on stderr, exit status 2, no
traceback, the path left exactly as it was (the audit side: tests/audit/test_cli_bad_targets)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.__main__ import main
from tests.not_databases import directory_url, refused_postgres_url, text_file_url, tree_state

KINDS: dict[str, tuple[Callable[[Path], str], str]] = {
    "text file": (lambda tmp: text_file_url(tmp / "x.db"), "is not a SQLite database"),
    "directory": (lambda tmp: directory_url(tmp / "x.db", "sqlite+aiosqlite"), "is a directory"),
    "refused PostgreSQL": (lambda _tmp: refused_postgres_url("connector"), "onnect"),
}
COMMANDS: dict[str, Callable[[str, Path], list[str]]] = {
    "migrate": lambda url, _: ["migrate", "--db", url],
    "vault status": lambda url, _: ["vault", "status", "--db", url],
    "vault rotate (connector database)": lambda url, good: [
        "vault", "rotate", "--new-key-id", "k1", "--db", url, "--audit-db",
        f"sqlite:///{good / 'audit.db'}",
    ],
    "vault rotate (audit database)": lambda url, good: [
        "vault", "rotate", "--new-key-id", "k1", "--db", f"sqlite:///{good / 'connector.db'}",
        "--audit-db", url,
    ],
}  # fmt: skip
SQLITE_ONLY = {"vault rotate (audit database)"}  # a refused server: the rotation's own report


@pytest.mark.parametrize(
    ("command", "kind"),
    [(c, k) for c in COMMANDS for k in KINDS if not (c in SQLITE_ONLY and k.endswith("SQL"))],
)
def test_no_database_is_one_line_and_untouched(
    command: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv(
        "CONNECTOR_VAULT_KEYS", f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    )
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    assert main(["migrate", "--db", f"sqlite:///{good / 'connector.db'}"]) == 0
    capsys.readouterr()
    make, reason = KINDS[kind]
    url = make(bad)
    before = tree_state(bad)
    code = main(COMMANDS[command](url, good))
    said = capsys.readouterr()
    assert code == 2
    lines = said.err.strip().splitlines()
    assert len(lines) == 1, said.err
    assert reason in lines[0]
    assert "s3cret-pw" not in said.err + said.out
    assert tree_state(bad) == before
