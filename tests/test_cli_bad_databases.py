"""`connector` commands that open a database, given a path that is none (a text file, a
directory) or a PostgreSQL server that refuses: one line on stderr, exit status 2, no
traceback, the path left exactly as it was (the audit side: tests/audit/test_cli_bad_targets)."""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.__main__ import main


def _text(tmp: Path) -> str:
    (tmp / "x.db").write_text("meeting notes\n" * 300)
    return f"sqlite:///{tmp / 'x.db'}"


def _directory(tmp: Path) -> str:
    (tmp / "x.db").mkdir()
    return f"sqlite+aiosqlite:///{tmp / 'x.db'}"


def _refused(tmp: Path) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://connector:s3cret-pw@127.0.0.1:{port}/connector"


KINDS: dict[str, tuple[Callable[[Path], str], str]] = {
    "text file": (_text, "is not a SQLite database"),
    "directory": (_directory, "is a directory"),
    "refused PostgreSQL": (_refused, "onnect"),
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


def _state(directory: Path) -> dict[str, tuple[bool, int, bytes]]:
    return {
        str(p.relative_to(directory)): (p.is_dir(), p.stat().st_mtime_ns,
                                        p.read_bytes() if p.is_file() else b"")
        for p in sorted(directory.rglob("*"))
    }  # fmt: skip


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
    before = _state(bad)
    code = main(COMMANDS[command](url, good))
    said = capsys.readouterr()
    assert code == 2
    lines = said.err.strip().splitlines()
    assert len(lines) == 1, said.err
    assert reason in lines[0]
    assert "s3cret-pw" not in said.err + said.out
    assert _state(bad) == before
