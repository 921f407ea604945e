"""The witness: checkpoints copied outside the database catch a tail cut with its checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Damage, VerifyReport, open_audit_log
from audit.chain import Pending, link, row_of
from audit.records import Checkpoint
from audit.signing import generate_key, public_pem, sign_checkpoint
from audit.trust import TrustedKeys
from audit.witness import WitnessFile, WitnessFormatError, parse_witness, witness_line
from tests.audit.helpers import make_event, raw_execute, raw_fetch
from tests.audit.test_cli import run

N = 12


async def build(url: str, key: Ed25519PrivateKey, witness: Path) -> None:
    log = await open_audit_log(
        url, signing_key=key, checkpoint_every=5, witness=WitnessFile(witness)
    )
    for i in range(N):
        await log.append(make_event(i))
    await log.close()  # signs (and witnesses) the head at 12


async def built_on_sqlite(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[str, Path]:
    """A SQLite log built by `build`, and its witness file."""
    url, witness = f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "w.jsonl"
    await build(url, key, witness)
    return url, witness


async def verify_witnessed(url: str, key: Ed25519PrivateKey, witness: Path) -> VerifyReport:
    """The stored log verified with `key` pinned and the witness file."""
    log = await open_audit_log(url, create=False)
    try:
        return await log.verify(trusted=TrustedKeys.of([key.public_key()]), witness=witness)
    finally:
        await log.close()


def pins(tmp_path: Path, key: Ed25519PrivateKey) -> list[str]:
    path = tmp_path / "trusted.pem"
    path.write_text(public_pem(key.public_key()))
    return ["--trusted-keys", str(path)]


async def test_every_committed_checkpoint_is_witnessed(
    db_url: str, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Each checkpoint the log committed is one JSON line in the witness, field for field."""
    witness = tmp_path / "witness.jsonl"
    await build(db_url, signing_key, witness)
    log = await open_audit_log(db_url, create=False)
    try:
        stored = await log.checkpoints()
    finally:
        await log.close()
    lines = [json.loads(line) for line in witness.read_text().splitlines()]
    assert [c.seq for c in stored] == [5, 10, 12]
    assert lines == [
        {"seq": c.seq, "hash": c.head_hash, "signature": c.signature, "key_id": c.key_id,
         "time": c.time}
        for c in stored
    ]  # fmt: skip


async def test_tail_cut_below_a_witnessed_checkpoint_fails(
    db_url: str, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A tail cut with its checkpoints verifies alone but is truncated (exit 1) with --witness."""
    witness = tmp_path / "witness.jsonl"
    await build(db_url, signing_key, witness)
    await raw_execute(db_url, ["DELETE FROM audit_events WHERE seq > 7",
                               "DELETE FROM audit_checkpoints WHERE seq > 5"])  # fmt: skip
    done = await run(
        "verify", "--db", db_url, *pins(tmp_path, signing_key), "--witness", str(witness),
        "--json",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["problems"] == [{
        "seq": 8, "damage": "truncated",
        "detail": "the witness holds a checkpoint at seq 12 but the log ends at 7",
    }]  # fmt: skip
    # Without the witness the shorter log verifies clean: the gap the witness closes. (The
    # first run recorded itself as seq 8.)
    blind = await run("verify", "--db", db_url, *pins(tmp_path, signing_key))
    assert blind.returncode == 0, blind.stdout
    assert report["witnessed"] == 3


async def test_tail_rewritten_past_the_last_stored_checkpoint_fails(
    signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A forged tail past the last stored checkpoint is caught as altered only by the witness."""
    url, witness = await built_on_sqlite(tmp_path, signing_key)
    (head,) = await raw_fetch(url, "SELECT hash FROM audit_events WHERE seq = 5")
    forged = link(5, bytes(head[0]), [Pending.of(make_event(i + 100)) for i in range(5, N)])
    statements = ["DELETE FROM audit_events WHERE seq > 5",
                  "DELETE FROM audit_checkpoints WHERE seq > 5"]  # fmt: skip
    for item in forged:
        seq, *texts, prev_hash, digest = row_of(item)
        values = [
            str(seq),
            *(f"'{v}'" for v in texts),
            f"X'{prev_hash.hex()}'",
            f"X'{digest.hex()}'",
        ]
        statements.append(f"INSERT INTO audit_events VALUES ({', '.join(values)})")
    await raw_execute(url, statements)
    trusted = TrustedKeys.of([signing_key.public_key()])
    log = await open_audit_log(url, create=False)
    try:
        without = await log.verify(trusted=trusted)
        report = await log.verify(trusted=trusted, witness=witness)
    finally:
        await log.close()
    assert (without.ok, without.signed_seq, without.head_seq) == (True, 5, N)
    assert report.first is not None
    assert (report.first.seq, report.first.damage) == (6, Damage.ALTERED)
    assert report.first.detail == (
        "chain rewritten between seq 6 and 10: head at 10 does not match its witnessed checkpoint"
    )


async def test_a_replaced_database_checkpoint_is_named(
    signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A database checkpoint that differs from its witnessed copy is reported as forged."""
    url, witness = await built_on_sqlite(tmp_path, signing_key)
    other = sign_checkpoint(signing_key, 10, bytes(32))
    await raw_execute(url, [
        "DELETE FROM audit_checkpoints WHERE seq = 10",
        f"INSERT INTO audit_checkpoints VALUES (10, '{other.head_hash}', '{other.time}', "
        f"'{other.key_id}', '{other.signature}')",
    ])  # fmt: skip
    report = await verify_witnessed(url, signing_key, witness)
    assert [(p.seq, p.damage, p.detail) for p in report.problems] == [
        (10, Damage.FORGED_CHECKPOINT, "checkpoint at seq 10 differs from its witnessed copy")
    ]


async def test_a_checkpoint_deleted_from_the_database_is_named(
    signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A witnessed checkpoint missing from audit_checkpoints is damage even if events stay."""
    url, witness = await built_on_sqlite(tmp_path, signing_key)
    await raw_execute(url, ["DELETE FROM audit_checkpoints WHERE seq = 10"])
    report = await verify_witnessed(url, signing_key, witness)
    assert [(p.seq, p.damage) for p in report.problems] == [(10, Damage.CHECKPOINT_DELETED)]


async def test_a_forged_witness_line_is_reported(
    signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A line in the witness not signed by a pinned key is a forged checkpoint."""
    url, witness = await built_on_sqlite(tmp_path, signing_key)
    with witness.open("ab") as out:
        out.write(witness_line(sign_checkpoint(generate_key(), 11, bytes(32))))
    report = await verify_witnessed(url, signing_key, witness)
    (problem,) = report.problems
    assert (problem.seq, problem.damage) == (11, Damage.FORGED_CHECKPOINT)
    assert problem.detail.startswith("witnessed checkpoint at seq 11 is signed by unknown key")


def test_witness_file_appends_even_after_others_wrote(tmp_path: Path) -> None:
    """O_APPEND: each line lands at the end, after what any other writer appended."""
    path = tmp_path / "w.jsonl"
    first, second = (sign_checkpoint(generate_key(), s, bytes(32)) for s in (1, 2))
    witness = WitnessFile(path)
    witness.publish_now(first)
    with path.open("ab") as other:
        other.write(b'{"seq": 99}\n')
    witness.publish_now(second)
    witness.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert lines == [witness_line(first), b'{"seq": 99}\n', witness_line(second)]


def test_torn_last_line_is_noted_and_bad_lines_refused() -> None:
    """An unfinished last write is skipped with a note; a bad complete line is an error."""
    good = witness_line(Checkpoint(5, "ab" * 32, "t", "k", "cd" * 64)).decode()
    record = parse_witness(good + '{"seq": 9, "ha', "w")
    assert [c.seq for c in record.checkpoints] == [5]
    assert any("unfinished last line" in note for note in record.notes)
    with pytest.raises(WitnessFormatError, match="w line 2 is not JSON"):
        parse_witness(good + "nonsense\n", "w")
    with pytest.raises(WitnessFormatError, match="lacks one of"):
        parse_witness('{"seq": 3}\n', "w")


async def test_bad_witness_file_exits_2(signing_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    """A missing or malformed witness file is a usage error with a message (exit 2)."""
    url, witness = await built_on_sqlite(tmp_path, signing_key)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nonsense\n")
    for path in (bad, tmp_path / "missing.jsonl"):
        done = await run("verify", "--db", url, "--witness", str(path))
        assert done.returncode == 2
        assert done.stderr.startswith("audit: ")
        assert "Traceback" not in done.stderr


class BrokenWitness:
    async def publish(self, checkpoint: Checkpoint) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        pass


async def test_a_failing_witness_never_fails_appends(
    tmp_path: Path, signing_key: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    """Events are durable before the witness is written: its failure is logged, not raised."""
    log = await open_audit_log(
        f"sqlite:///{tmp_path / 'a.db'}", signing_key=signing_key, checkpoint_every=2,
        witness=BrokenWitness(),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="audit"):
        receipts = [await log.append(make_event(i)) for i in range(4)]
        await log.close()
    assert [r.seq for r in receipts] == [1, 2, 3, 4]
    assert "checkpoint at seq 2 not published: OSError: disk full" in caplog.text
