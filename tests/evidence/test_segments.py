"""The pack over an archived log: after the start of the log was archived and dropped behind a
signed tombstone, `connector evidence --segments` verifies the chain across the archive (the
dropped range shown as such, not as deleted events) and `audit verify-pack --segments` agrees."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main as audit_main
from audit.log import open_audit_log
from audit.segment_archive import drop_expired
from audit.signing import load_private_key
from connector.__main__ import main as connector_main
from tests.evidence.conftest import Seeded


async def _drop_all(seeded: Seeded, archive: Path) -> int:
    """Drop every archived segment, as a retention run a year from now would; the last seq."""
    key = load_private_key(seeded.directory / "audit-signing.pem")
    log = await open_audit_log(seeded.db, create=False)
    try:
        dropped = await drop_expired(
            log, archive, key, now=datetime.now(UTC) + timedelta(days=400),
            retention=timedelta(days=30), reason="test retention",
        )  # fmt: skip
    finally:
        await log.close()
    assert len(dropped) == 1
    return dropped[0].last


@pytest.fixture
def dropped(seeded: Seeded, tmp_path: Path) -> tuple[Path, int]:
    """The seeded log archived through its last checkpoint, that segment dropped."""
    archive = tmp_path / "archive"
    _archive(seeded, archive)
    return archive, asyncio.run(_drop_all(seeded, archive))


def _archive(seeded: Seeded, archive: Path) -> None:
    """`audit archive` through the log's last checkpoint."""
    key = str(seeded.directory / "audit-signing.pem")
    with contextlib.redirect_stderr(io.StringIO()):
        code = audit_main(["archive", "--db", seeded.db, "--before", "2100-01-01", "--out",
                           str(archive), "--key", key])  # fmt: skip
    assert code == 0


def _make(seeded: Seeded, out: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with contextlib.redirect_stdout(io.StringIO()):
        assert connector_main(seeded.evidence(out, *extra)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    evidence = json.loads((out / "evidence.json").read_text())
    return manifest, evidence


def test_the_chain_is_verified_across_the_tombstone(
    seeded: Seeded, tmp_path: Path, dropped: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """The chain section says verified across segments, the dropped range by its tombstone."""
    archive, last = dropped
    out = tmp_path / "pack"
    manifest, evidence = _make(seeded, out, "--segments", str(archive))
    report = evidence["chain"]["report"]
    assert (report["ok"], report["authenticity"], report["problems"]) == (True, "authentic", [])
    assert any(
        n.startswith(f"events 1..{last} dropped at") and "signed tombstone verified" in n
        for n in report["notes"]
    ), report["notes"]
    [span] = evidence["chain"]["segments"]
    assert (span["first"], span["last"], span["state"], span["reason"]) == (
        1, last, "dropped", "test retention"
    )  # fmt: skip
    assert manifest["chain"]["segments"] == [{"first": 1, "last": last, "state": "dropped"}]
    assert manifest["chain"]["authenticity"] == "authentic"
    page = (out / "index.html").read_text()
    assert "Verified across the audit archive" in page
    assert f"1..{last}</td><td>dropped" in page
    assert 'class="bad"' not in page.split('id="chain"')[1].split("</section>")[0]

    assert audit_main(seeded.verify(out, "--segments", str(archive))) == 0
    text = capsys.readouterr().out
    assert text.startswith("VALID"), text
    assert "signed tombstone verified" in text

    assert audit_main(seeded.verify(out)) == 1  # the same pack, the live log alone
    text = capsys.readouterr().out
    assert "pass --segments DIR" in text
    assert "seq 1: deleted" in text


def test_without_the_archive_the_start_is_reported_deleted(
    seeded: Seeded, tmp_path: Path, dropped: tuple[Path, int]
) -> None:
    """What the pack said before: the live log alone starts after a gap."""
    _, evidence = _make(seeded, tmp_path / "pack")
    report = evidence["chain"]["report"]
    assert report["ok"] is False
    assert report["problems"][0]["seq"] == 1
    assert report["problems"][0]["damage"] == "deleted"
    assert evidence["chain"]["segments"] is None


def test_a_missing_archive_directory_is_said(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--segments naming no directory: one line, exit 2, nothing written."""
    out = tmp_path / "pack"
    assert connector_main(seeded.evidence(out, "--segments", str(tmp_path / "none"))) == 2
    assert "(--segments) is not a directory" in capsys.readouterr().err
    assert not out.exists()


def test_a_pack_whose_head_was_dropped_since_says_so(
    seeded: Seeded, tmp_path: Path, dropped: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its period's events gone from the live log behind a tombstone: verify-pack names the
    dropped range rather than only a missing event."""
    archive, _ = dropped
    out = tmp_path / "pack"
    manifest, _ = _make(seeded, out, "--segments", str(archive))
    head = manifest["audit_log"]["head_seq"]
    asyncio.run(_sign_head(seeded))
    _archive(seeded, archive)
    assert asyncio.run(_drop_all(seeded, archive)) >= head
    assert audit_main(seeded.verify(out, "--segments", str(archive))) == 1
    text = capsys.readouterr().out
    assert f"the audit log has no event at the pack's head seq {head} (dropped since" in text
    assert "can no longer be recomputed" in text


async def _sign_head(seeded: Seeded) -> None:
    key = load_private_key(seeded.directory / "audit-signing.pem")
    log = await open_audit_log(seeded.db, signing_key=key, create=False)
    await log.close()  # signs a checkpoint over the pack's own record
