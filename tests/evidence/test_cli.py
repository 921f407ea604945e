"""Bad arguments and bad places: a one-line message and a non-zero exit, never a traceback, and a
directory the tool did not write is never touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audit.cli import main as audit_main
from connector.__main__ import main as connector_main
from tests.evidence.conftest import Seeded


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, check=False,
        env=env,
    )  # fmt: skip


def test_missing_inputs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No audit log, no signing key, an unreadable key: exit 2 and what to pass."""
    out = str(tmp_path / "pack")
    assert connector_main(["evidence", "--out", out, "--signing-key", "k.pem"]) == 2
    assert "name the audit log with --db" in capsys.readouterr().err
    assert connector_main(["evidence", "--out", out, "--db", "sqlite:///x.db"]) == 2
    assert "pass --signing-key" in capsys.readouterr().err
    missing = str(tmp_path / "nope.pem")
    assert connector_main(["evidence", "--out", out, "--db", "sqlite:///x.db",
                           "--signing-key", missing]) == 2  # fmt: skip
    assert "nope.pem" in capsys.readouterr().err
    assert not (tmp_path / "pack").exists()


def test_bad_arguments_exit_non_zero_without_a_traceback(seeded: Seeded, tmp_path: Path) -> None:
    """Through the real entry points: a bad date, no --out, a database that is not a log."""
    bad_date = _cli("connector", *seeded.evidence(tmp_path / "p", "--since", "yesterday"))
    assert bad_date.returncode == 2
    assert "is not an ISO date" in bad_date.stderr
    no_out = _cli("connector", "evidence")
    assert no_out.returncode == 2
    assert "--out" in no_out.stderr
    other = tmp_path / "other.db"
    other.write_bytes(b"not a database at all" * 100)
    args = [a if not a.startswith("sqlite:///") else f"sqlite:///{other}"
            for a in seeded.evidence(tmp_path / "p")]  # fmt: skip
    not_a_log = _cli("connector", *args)
    assert not_a_log.returncode == 2
    assert "connector evidence:" in not_a_log.stderr
    assert "is not a SQLite database" in not_a_log.stderr
    backwards = _cli("connector", *seeded.evidence(tmp_path / "p", "--since", "2030-01-02",
                                                   "--until", "2030-01-01"))  # fmt: skip
    assert backwards.returncode == 2
    assert "--since must be before --until" in backwards.stderr
    no_pack = _cli("audit", *seeded.verify(tmp_path / "absent"))
    assert no_pack.returncode == 1
    assert "is not a directory" in no_pack.stdout
    assert _cli("connector", *seeded.evidence(tmp_path / "pack")).returncode == 0
    wrong_log = _cli("audit", "verify-pack", str(tmp_path / "pack"), "--db", f"sqlite:///{other}")
    assert wrong_log.returncode == 2
    assert "is not a SQLite database" in wrong_log.stderr
    for done in (bad_date, no_out, not_a_log, backwards, no_pack, wrong_log):
        assert "Traceback" not in done.stderr + done.stdout


def test_a_directory_the_tool_did_not_write_is_refused(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-empty --out that holds no earlier pack is left exactly as it was."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    assert connector_main(seeded.evidence(out)) == 2
    assert "does not hold a pack this tool wrote" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
    assert (out / "thesis.txt").read_text() == "years of work"


def test_an_earlier_pack_is_replaced_but_not_once_extended(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regenerating over an earlier pack works; a file added to it since makes it foreign."""
    out = tmp_path / "pack"
    assert connector_main(seeded.evidence(out)) == 0
    assert connector_main(seeded.evidence(out)) == 0
    assert audit_main(seeded.verify(out)) == 0
    (out / "added.txt").write_text("someone else's")
    capsys.readouterr()
    assert connector_main(seeded.evidence(out)) == 2
    assert (out / "added.txt").read_text() == "someone else's"


@pytest.mark.parametrize("kind", ["text file", "directory", "missing file"])
def test_a_service_database_that_is_none_is_said_and_untouched(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """--database naming no SQLite database: one line, exit 2, no pack, the path as it was."""
    target = tmp_path / "service.db"
    if kind == "text file":
        target.write_text("not a database\n" * 50)
    elif kind == "directory":
        target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code = connector_main(seeded.evidence(tmp_path / "pack", "--database", f"sqlite:///{target}"))
    said = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(said) == 1
    assert said[0].startswith("connector evidence: the service database (--database)")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert target.exists() is (kind != "missing file")
