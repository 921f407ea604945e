"""Archived segments and tombstones: `audit archive`, `audit drop-segment`, `verify --segments`
(SQLite and PostgreSQL, through the real command line)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit import open_audit_log
from audit.cli import main
from audit.records import Checkpoint
from audit.segment_verify import verify_across
from audit.signing import load_private_key
from audit.trust import TrustedKeys
from audit.verify import Damage
from audit.witness import witness_line
from tests.audit.helpers import login_as, make_event, raw_execute, raw_fetch
from tests.audit.test_cli import run

TOMORROW = "2100-01-01"
# The fixtures: the log's URL, its key file and its public key file; and the archive directory.
Filled = tuple[str, Path, Path]
Archived = tuple[str, Path, Path, Path]


@pytest.fixture
async def filled(db_url: str, tmp_path: Path) -> Filled:
    """A log of 12 events (checkpoints every 5), its key file and its public key file."""
    key_file = tmp_path / "key.pem"
    assert main(["keygen", "--out", str(key_file)]) == 0
    await append(db_url, key_file, range(12))
    pub = tmp_path / "pub.pem"
    pub.write_text((await run("pubkey", "--key", str(key_file))).stdout)
    return db_url, key_file, pub


@pytest.fixture
async def archived(filled: Filled, tmp_path: Path) -> Archived:
    """The filled log with events 1..12 sealed into a segment; and the archive directory."""
    url, key, pub = filled
    out = tmp_path / "archive"
    done = await archive(url, key, out)
    assert done.returncode == 0, done.stderr
    return url, key, pub, out


async def append(url: str, key_file: Path, numbers: range) -> None:
    log = await open_audit_log(url, signing_key=load_private_key(key_file), checkpoint_every=5)
    for i in numbers:
        await log.append(make_event(i))
    await log.close()  # signs the head


async def verify(url: str, pub: Path, segments: Path | None) -> tuple[int, dict[str, object]]:
    extra = () if segments is None else ("--segments", str(segments))
    done = await run("verify", "--db", url, "--pubkey", str(pub), "--json", *extra)
    return done.returncode, json.loads(done.stdout)


async def archive(url: str, key: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return await run("archive", "--db", url, "--before", TOMORROW, "--out", str(out),
                     "--key", str(key))  # fmt: skip


async def damage(url: str, pub: Path, segments: Path | None) -> dict[str, object]:
    """Verify, expecting damage (exit 1); the first problem."""
    code, report = await verify(url, pub, segments)
    assert code == 1, report
    return first_problem(report)


def first_problem(report: dict[str, object]) -> dict[str, object]:
    problems = report["problems"]
    assert isinstance(problems, list)
    assert problems, report
    first = problems[0]
    assert isinstance(first, dict)
    return first


async def test_archive_then_verify_across(filled: Filled, tmp_path: Path) -> None:
    url, key, pub = filled
    out = tmp_path / "archive"
    done = await archive(url, key, out)
    assert done.returncode == 0, done.stderr
    assert "archived events 1..12" in done.stderr
    await append(url, key, range(12, 20))  # the archive's own record, then 8 more events
    done = await archive(url, key, out)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "segment-000000000001-000000000012.jsonl",
        "segment-000000000001-000000000012.manifest.json",
        "segment-000000000013-000000000021.jsonl",
        "segment-000000000013-000000000021.manifest.json",
    ]
    code, report = await verify(url, pub, out)
    assert code == 0, report
    assert report["authenticity"] == "authentic"
    notes = " ".join(str(n) for n in report["notes"])  # type: ignore[attr-defined]
    assert "events 1..12 read from archived segment" in notes
    assert "events 13..21 read from archived segment" in notes
    assert report["head_seq"] == 22  # the second archive recorded itself


async def test_drop_leaves_tombstone_and_verify_passes(archived: Archived) -> None:
    url, key, pub, out = archived
    done = await run("drop-segment", "--db", url, "--segments", str(out), "--key", str(key),
                     "--retention-days", "30", "--reason", "test retention")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dropped events 1..12 (12)" in done.stderr
    recorded = await raw_fetch(url, "SELECT body FROM audit_events ORDER BY seq DESC LIMIT 1")
    assert '"action":"retention.run"' in str(recorded[0][0])
    assert '{"id":"1-12","kind":"audit_range"}' in str(recorded[0][0])
    assert await raw_fetch(url, "SELECT min(seq) FROM audit_events") == [(13,)]
    tombstone = out / "segment-000000000001-000000000012.tombstone.json"
    assert tombstone.exists()
    assert not (out / "segment-000000000001-000000000012.jsonl").exists()
    code, report = await verify(url, pub, out)
    assert code == 0, report
    assert "events 1..12 dropped at" in " ".join(report["notes"])  # type: ignore[arg-type]
    # The live log alone says plainly that its beginning is gone.
    assert (await damage(url, pub, None))["seq"] == 1
    # A tombstone renamed to cover more than it was signed for is refused.
    manifest = out / "segment-000000000001-000000000012.manifest.json"
    renamed = [
        (path, path.with_name(path.name.replace("-000000000012.", "-000000000013.")))
        for path in (tombstone, manifest)
    ]
    for path, wider in renamed:
        path.rename(wider)
    assert "the tombstone is for events 1..12" in str((await damage(url, pub, out))["detail"])
    for path, wider in renamed:
        wider.rename(path)
    # A tombstone whose text was changed no longer verifies.
    document = json.loads(tombstone.read_text())
    document["reason"] = "something else"
    tombstone.write_text(json.dumps(document))
    forged = await damage(url, pub, out)
    assert (forged["seq"], forged["damage"]) == (1, "forged_segment")
    # And without its tombstone, the dropped segment is a gap.
    tombstone.unlink()
    problem = await damage(url, pub, out)
    assert (problem["seq"], problem["damage"]) == (1, "deleted")
    assert "left no tombstone" in str(problem["detail"])


async def test_rows_deleted_without_tombstone_fail(archived: Archived) -> None:
    url, key, pub, out = archived
    await append(url, key, range(12, 20))
    # Someone with the owner's rights deletes live events after the archive, leaving no tombstone.
    await raw_execute(url, ["DELETE FROM audit_events WHERE seq BETWEEN 15 AND 16"])
    problem = await damage(url, pub, out)
    assert (problem["seq"], problem["damage"]) == (15, "deleted")
    assert "15..16" in str(problem["detail"])


async def test_tampered_segment_fails_at_its_first_bad_seq(archived: Archived) -> None:
    url, key, pub, out = archived
    rows = out / "segment-000000000001-000000000012.jsonl"
    lines = rows.read_text().splitlines(keepends=True)
    tampered = lines[6].replace("m_6", "m_9")  # seq 7 is make_event(6)
    assert tampered != lines[6]
    lines[6] = tampered
    rows.write_text("".join(lines))
    problem = await damage(url, pub, out)
    assert (problem["seq"], problem["damage"]) == (7, "altered")


async def test_retention_refuses_young_segments(archived: Archived) -> None:
    url, key, pub, out = archived
    done = await run("drop-segment", "--db", url, "--segments", str(out), "--key", str(key),
                     "--retention-days", "3650")  # fmt: skip
    assert done.returncode == 2
    assert "younger than the retention of 3650 days" in done.stderr
    recorded = await raw_fetch(url, "SELECT body FROM audit_events ORDER BY seq DESC LIMIT 1")
    assert '"action":"retention.run"' in str(recorded[0][0])
    assert "segment_refused" in str(recorded[0][0])
    assert await raw_fetch(url, "SELECT count(*) FROM audit_events WHERE seq <= 12") == [(12,)]
    assert not list(out.glob("*.tombstone.json"))
    assert (await verify(url, pub, out))[0] == 0


async def test_cli_errors_are_clear(filled: Filled, tmp_path: Path) -> None:
    url, key, _pub = filled
    out = tmp_path / "archive"
    done = await run("archive", "--db", url, "--before", "2000-01-01", "--out", str(out),
                     "--key", str(key))  # fmt: skip
    assert done.returncode == 2
    assert "nothing to archive" in done.stderr
    done = await run("archive", "--db", url, "--before", "soon", "--out", str(out),
                     "--key", str(key))  # fmt: skip
    assert done.returncode == 2
    assert "'soon' is not an ISO date" in done.stderr
    done = await run("drop-segment", "--db", url, "--segments", str(out), "--key", str(key))
    assert done.returncode == 2
    assert "--retention-days" in done.stderr
    never = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "audit", "drop-segment", "--db", url, "--segments", str(out),
         "--key", str(key)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS": "0"},
    )  # fmt: skip
    assert never.returncode == 2
    assert "never dropped" in never.stderr
    assert "not a whole number" not in never.stderr
    done = await run("drop-segment", "--db", url, "--segments", str(out), "--key", str(key),
                     "--retention-days", "99999999")  # fmt: skip
    assert done.returncode == 2
    assert "not a whole number of days from 1 to 36500" in done.stderr
    done = await run("verify", "--db", url, "--segments", str(tmp_path / "none"))
    assert done.returncode == 2
    assert "is not a directory" in done.stderr
    assert "Traceback" not in done.stderr


async def test_interrupted_drop_is_finished_by_the_next_run(archived: Archived) -> None:
    """A drop stopped after the live rows went (before the tombstone) is completed, not lost."""
    url, key, pub, out = archived
    await raw_execute(url, ["DELETE FROM audit_events WHERE seq <= 12"])
    assert (await verify(url, pub, out))[0] == 0  # the rows file still covers the range
    done = await run("drop-segment", "--db", url, "--segments", str(out), "--key", str(key),
                     "--retention-days", "30")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "segment-000000000001-000000000012.tombstone.json").exists()
    assert (await verify(url, pub, out))[0] == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_service_login_cannot_drop(archived: Archived) -> None:
    """Only the tables' owner may drop: the service's INSERT/SELECT login is refused and
    nothing changes."""
    url, key, pub, out = archived
    done = await run("drop-segment", "--db", login_as(url, "audit_writer"), "--segments",
                     str(out), "--key", str(key), "--retention-days", "30")  # fmt: skip
    assert done.returncode == 2
    assert "must be owner" in done.stderr
    assert not list(out.glob("*.tombstone.json"))
    assert await raw_fetch(url, "SELECT count(*) FROM audit_events WHERE seq <= 12") == [(12,)]
    assert (await verify(url, pub, out))[0] == 0


async def test_manifest_and_witness_are_checked_across(archived: Archived, tmp_path: Path) -> None:
    """A manifest edited after sealing no longer verifies; a witness holding a checkpoint that
    the live log lost is damage through --segments too."""
    url, key, pub, out = archived
    witness = tmp_path / "w.jsonl"
    checkpoints = json.loads((await run("checkpoints", "--db", url)).stdout)["checkpoints"]
    witness.write_bytes(b"".join(
        witness_line(Checkpoint(c["seq"], c["head_hash"], c["time"], c["key_id"], c["signature"]))
        for c in checkpoints
    ))  # fmt: skip
    args = ("--segments", str(out), "--witness", str(witness), "--json")
    done = await run("verify", "--db", url, "--pubkey", str(pub), *args)
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["witnessed"] == len(checkpoints)
    await raw_execute(url, ["DELETE FROM audit_checkpoints WHERE seq = 10"])
    done = await run("verify", "--db", url, "--pubkey", str(pub), *args)
    assert done.returncode == 1
    problem = first_problem(json.loads(done.stdout))
    assert (problem["seq"], problem["damage"]) == (10, "checkpoint_deleted")
    manifest_path = out / "segment-000000000001-000000000012.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["count"] = 11
    manifest_path.write_text(json.dumps(manifest))
    problem = await damage(url, pub, out)
    assert (problem["seq"], problem["damage"]) == (1, "forged_segment")


async def test_live_rows_after_the_archive_are_paged_and_checked(archived: Archived) -> None:
    """The live log is read from the archive's last event on, in pages; damage there is named."""
    url, key, pub, out = archived
    await append(url, key, range(12, 30))
    trusted = TrustedKeys.of([load_private_key(key).public_key()])
    log = await open_audit_log(url)
    try:
        report = await verify_across(log, out, trusted=trusted, chunk=4)
        assert report.ok, report.problems
        assert report.head_seq == 31
        await raw_execute(url, ["UPDATE audit_events SET actor_id = 'u9' WHERE seq = 22"])
        report = await verify_across(log, out, trusted=trusted, chunk=4)
        assert report.first is not None
        assert (report.first.seq, report.first.damage) == (22, Damage.ALTERED)
    finally:
        await log.close()
