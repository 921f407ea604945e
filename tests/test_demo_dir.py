"""`connector demo --dir`: only a directory the demo created (its marker file) is ever emptied,
never through a symbolic link, and a second run on the same directory is refused, not wiped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connector.demo_dir import MARKER, DemoDirError, claim

FOREIGN = "not created by `connector demo`"


def _precious(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    keep = directory / "thesis.tex"
    keep.write_text("years of work")
    return keep


def test_missing_directory_is_created_and_marked(tmp_path: Path) -> None:
    """A directory that does not exist is created, with the marker that makes it the demo's."""
    target = tmp_path / "var" / "demo"
    with claim(target) as directory:
        assert directory == target
        assert (target / MARKER).is_file()


def test_previous_run_is_emptied(tmp_path: Path) -> None:
    """A directory the demo marked is emptied at the next run; the marker stays."""
    target = tmp_path / "demo"
    with claim(target):
        (target / "audit.db").write_text("old run")
        (target / "sub").mkdir()
        (target / "sub" / "x").write_text("old")
    with claim(target):
        assert sorted(p.name for p in target.iterdir() if not p.name.startswith(MARKER)) == []
        assert (target / MARKER).is_file()


def test_unmarked_non_empty_directory_is_refused(tmp_path: Path) -> None:
    """A home directory, `.`, `/`: anything with files and no marker is left untouched."""
    keep = _precious(tmp_path / "home")
    with pytest.raises(DemoDirError, match=FOREIGN), claim(tmp_path / "home"):
        pytest.fail("must not be claimed")
    assert keep.read_text() == "years of work"


def test_empty_existing_directory_is_adopted(tmp_path: Path) -> None:
    """An empty directory holds nothing to lose: it is marked and used."""
    (tmp_path / "empty").mkdir()
    with claim(tmp_path / "empty"):
        assert (tmp_path / "empty" / MARKER).is_file()


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    """--dir naming a symbolic link is refused, even to a marked directory."""
    with claim(tmp_path / "real"):
        pass
    keep = _precious(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(DemoDirError, match="symbolic link"), claim(tmp_path / "link"):
        pytest.fail("must not be claimed")
    assert keep.exists()


def test_symlinked_marker_is_not_a_marker(tmp_path: Path) -> None:
    """A marker that is a symbolic link (planted to fake ownership) does not count."""
    with claim(tmp_path / "real"):
        pass
    keep = _precious(tmp_path / "victim")
    (tmp_path / "victim" / MARKER).symlink_to(tmp_path / "real" / MARKER)
    with pytest.raises(DemoDirError, match=FOREIGN), claim(tmp_path / "victim"):
        pytest.fail("must not be claimed")
    assert keep.exists()


def test_symlinks_inside_are_removed_not_followed(tmp_path: Path) -> None:
    """Emptying the demo directory unlinks a link to elsewhere; what it pointed to stays."""
    keep = _precious(tmp_path / "outside")
    target = tmp_path / "demo"
    with claim(target):
        (target / "escape").symlink_to(tmp_path / "outside")
        (target / "file-link").symlink_to(keep)
    with claim(target):
        assert not (target / "escape").exists()
        assert not (target / "file-link").is_symlink()
    assert keep.read_text() == "years of work"


def test_second_run_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    """While one demo runs, another on its directory is refused and wipes nothing."""
    target = tmp_path / "demo"
    with claim(target):
        (target / "audit.db").write_text("the running demo's log")
        with pytest.raises(DemoDirError, match="another `connector demo`"), claim(target):
            pytest.fail("must not be claimed twice")
        assert (target / "audit.db").read_text() == "the running demo's log"


def test_cli_refuses_a_foreign_directory_without_traceback(tmp_path: Path) -> None:
    """`connector demo --dir .` in a directory with files exits 2 with one clear line."""
    keep = _precious(tmp_path / "project")
    result = subprocess.run(
        [sys.executable, "-m", "connector", "demo", "--smoke", "--dir", "."],
        cwd=tmp_path / "project", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "not created by `connector demo`" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert keep.read_text() == "years of work"
