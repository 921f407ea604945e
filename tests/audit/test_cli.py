"""The `audit` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit import Action, ActorKind, QueryFilter, open_audit_log
from audit.cli import main
from audit.signing import load_private_key
from tests.audit.helpers import make_event, raw_execute

OCSF_REQUIRED = (
    "activity_id",
    "category_uid",
    "class_uid",
    "type_uid",
    "time",
    "severity_id",
    "status_id",
    "metadata",
    "actor",
    "api",
    "src_endpoint",
)


@pytest.fixture
async def filled(db_url: str, tmp_path: Path) -> tuple[str, Path]:
    key_file = tmp_path / "key.pem"
    assert main(["keygen", "--out", str(key_file)]) == 0
    log = await open_audit_log(db_url, signing_key=load_private_key(key_file), checkpoint_every=5)
    for i in range(12):
        await log.append(make_event(i))
    await log.close()
    return db_url, key_file


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "audit", *args],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_verify_ok_and_damaged_exit_codes(filled: tuple[str, Path], tmp_path: Path) -> None:
    """verify exits 0 on an intact log and 1 naming the first bad seq and damage kind."""
    url, key_file = filled
    pub = tmp_path / "pub.pem"
    done = await run("pubkey", "--key", str(key_file))
    pub.write_text(done.stdout)
    ok = await run("verify", "--db", url, "--pubkey", str(pub))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 12 events")
    await raw_execute(url, ["DELETE FROM audit_events WHERE seq = 4"])
    bad = await run("verify", "--db", url, "--pubkey", str(pub), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["problems"][0]["seq"] == 4
    assert report["problems"][0]["damage"] == "deleted"


async def test_not_an_audit_log_exits_2(tmp_path: Path, pg_database: str) -> None:
    """Pointed at a database that is not an audit log, every command says so with exit 2."""
    empty = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    for url in (f"sqlite:///{empty}", pg_database):
        for command in ("verify", "query", "export", "checkpoints"):
            done = await run(command, "--db", url)
            assert done.returncode == 2
            assert "is not an audit log" in done.stderr
    missing = await run("verify", "--db", f"sqlite:///{tmp_path / 'missing.db'}")
    assert missing.returncode == 2
    assert not (tmp_path / "missing.db").exists()


async def test_query_json_and_records_itself(filled: tuple[str, Path]) -> None:
    """query filters and pages, and records an audit.queried event by the given reviewer."""
    url, _ = filled
    done = await run(
        "query",
        "--db",
        url,
        "--account",
        "a1",
        "--format",
        "json",
        "--newest-first",
        "--limit",
        "2",
        "--actor",
        "rev-7",
    )
    assert done.returncode == 0, done.stderr
    # The query is recorded (against account a1) before it runs, so it sees itself first.
    first, second = json.loads(done.stdout)
    assert (first["seq"], first["event"]["action"]) == (13, "audit.queried")
    assert second["seq"] == 12
    assert "next page: --before 12" in done.stderr
    log = await open_audit_log(url, create=False)
    (own,) = await log.query(QueryFilter(action=Action.AUDIT_QUERIED))
    await log.close()
    assert own.event.actor.kind is ActorKind.REVIEWER
    assert own.event.actor.id == "rev-7"


async def test_export_formats(filled: tuple[str, Path], tmp_path: Path) -> None:
    """jsonl, csv and OCSF 6003 exports carry every matching event with the required fields."""
    url, _ = filled
    out = tmp_path / "x.ocsf"
    done = await run("export", "--db", url, "--format", "ocsf", "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 13  # the export records itself first, so it is part of the export
    assert records[-1]["api"]["operation"] == "audit.exported"
    for record in records:
        for name in OCSF_REQUIRED:
            assert name in record, name
        assert record["class_uid"] == 6003
        assert record["category_uid"] == 6
        assert record["type_uid"] == 600300 + record["activity_id"]
        assert record["metadata"]["version"] == "1.3.0"
        assert record["actor"]["user"]["uid"]
    assert records[0]["api"]["operation"] == "gmail.message.read"
    assert records[0]["activity_id"] == 2
    assert records[1]["activity_id"] == 1  # send creates
    assert records[0]["unmapped"]["account_id"] == "a0"
    csv_out = await run("export", "--db", url, "--format", "csv", "--account", "a2")
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("seq,time,event_id,account_id")
    assert [line.split(",")[0] for line in lines[1:]] == ["3", "8", "14"]  # 14: this export
    jsonl = await run("export", "--db", url, "--format", "jsonl", "--resource", "m_5")
    (only,) = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert only["seq"] == 6
    assert only["event"]["resources"] == [{"id": "m_5", "kind": "message"}]


async def test_checkpoints_export_and_keys(filled: tuple[str, Path]) -> None:
    """checkpoints prints the signed checkpoints and the public keys that sign them."""
    url, key_file = filled
    done = await run("checkpoints", "--db", url)
    document = json.loads(done.stdout)
    assert [c["seq"] for c in document["checkpoints"]] == [5, 10, 12]
    pem = load_private_key(key_file).public_key()
    from audit.signing import key_id, public_pem

    assert document["public_keys"] == {key_id(pem): public_pem(pem)}


async def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    """keygen creates a 0600 PEM and will not overwrite an existing file."""
    target = tmp_path / "k.pem"
    assert main(["keygen", "--out", str(target)]) == 0
    assert target.stat().st_mode & 0o777 == 0o600
    assert main(["keygen", "--out", str(target)]) == 2
    assert load_private_key(target) is not None


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """--help names every subcommand."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("verify", "query", "export", "checkpoints", "pubkey", "keygen"):
        assert command in text
