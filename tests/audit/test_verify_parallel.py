"""`verify --jobs N` reports exactly what the sequential verifier reports, for every damage."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import open_audit_log
from audit.chain import Pending, link
from audit.cli_verify import report_json
from audit.hashing import GENESIS_HASH
from audit.signing import key_id
from audit.verify import ChainVerifier
from audit.verify_parallel import split, verify_in_parallel
from tests.audit.helpers import make_event, raw_execute
from tests.audit.test_tamper import TAMPERING, _blob, build

BOUNDARY_DAMAGE = [
    # The first row of the second segment (cut at the checkpoint at seq 10) no longer links
    # onto the last row of the first: only the stitch between segments can see it.
    pytest.param(
        ["UPDATE audit_events SET prev_hash = hash WHERE seq = 11"], id="broken_link_at_cut"
    ),
    # The last row of a segment edited.
    pytest.param(
        [
            "UPDATE audit_events SET body = replace(body, '\"severity\":', '\"severity\" :')"
            " WHERE seq = 20"
        ],
        id="altered_at_cut",
    ),
    # A row below seq 1 is read by the first segment, as by the sequential scan.
    pytest.param(
        [
            "INSERT INTO audit_events SELECT 0, time, account_id, actor_id, action, purpose,"
            " decision, body, prev_hash, hash FROM audit_events WHERE seq = 3"
        ],
        id="row_before_genesis",
    ),
]


async def reports(url: str, key: Ed25519PrivateKey, jobs: int) -> tuple[dict[str, object], ...]:
    """The JSON report of the sequential verifier and of the parallel one with `jobs`."""
    keys = {key_id(key.public_key()): key.public_key()}
    log = await open_audit_log(url, create=False)
    try:
        sequential = await log.verify(public_keys=keys)
        parallel = await log.verify(public_keys=keys, jobs=jobs, min_per_job=1)
    finally:
        await log.close()
    return report_json(sequential), report_json(parallel)


@pytest.mark.parametrize("statements", [*(p.values[0] for p in TAMPERING), *BOUNDARY_DAMAGE])
@pytest.mark.parametrize("jobs", [2, 3])
async def test_parallel_report_equals_sequential(
    db_url: str, signing_key: Ed25519PrivateKey, statements: list[str], jobs: int
) -> None:
    """Every kind of damage gives the same report, first bad seq included, with N jobs."""
    await build(db_url, signing_key)
    await raw_execute(db_url, statements)
    sequential, parallel = await reports(db_url, signing_key, jobs)
    assert not sequential["ok"]
    assert parallel == sequential


async def test_parallel_rewritten_chain_equals_sequential(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """A self-consistent forged chain contradicts the checkpoints in parallel too."""
    await build(db_url, signing_key)
    forged = link(0, bytes(32), [Pending.of(make_event(i + 100)) for i in range(30)])
    statements = ["DELETE FROM audit_events"]
    for item in forged:
        values = [str(item.seq), *(f"'{v}'" for v in _texts(item))]
        values += [_blob(db_url, item.prev_hash), _blob(db_url, item.hash)]
        statements.append(f"INSERT INTO audit_events VALUES ({', '.join(values)})")
    await raw_execute(db_url, statements)
    sequential, parallel = await reports(db_url, signing_key, 3)
    assert sequential["problems"]
    assert parallel == sequential


def _texts(item: object) -> list[str]:
    from audit.chain import row_of

    _seq, *texts, _prev, _hash = row_of(item)  # type: ignore[arg-type]
    return [str(t) for t in texts]


async def test_intact_log_is_checked_by_the_workers(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """On an intact log the workers' stitched result is used, and it is the sequential one."""
    await build(db_url, signing_key)
    log = await open_audit_log(db_url, create=False)
    try:
        keys = {key_id(signing_key.public_key()): signing_key.public_key()}
        verifier = ChainVerifier(await log.store.checkpoints(), keys)
        assert await verify_in_parallel(log.store, verifier, 3, min_per_job=1)
        adopted = verifier.finish()
        sequential = await log.verify(public_keys=keys, jobs=1)
    finally:
        await log.close()
    assert adopted.ok
    assert (adopted.head_seq, adopted.head_hash) == (30, sequential.head_hash)
    assert adopted.signed_seq == sequential.signed_seq == 30


async def test_a_log_below_min_per_job_for_every_job_is_left_to_the_sequential_scan(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """Starting processes only pays from `min_per_job` events a job (30 events, 2 jobs)."""
    await build(db_url, signing_key)
    log = await open_audit_log(db_url, create=False)
    try:
        verifier = ChainVerifier(await log.store.checkpoints(), {})
        assert not await verify_in_parallel(log.store, verifier, 2, min_per_job=16)
        assert verifier.head == (0, GENESIS_HASH)  # untouched: the caller scans
        assert await verify_in_parallel(log.store, verifier, 2, min_per_job=15)
        assert verifier.head[0] == 30
    finally:
        await log.close()


async def test_damaged_log_falls_back_to_the_sequential_scan(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """A segment that is not clean leaves the verifier untouched (the caller scans)."""
    await build(db_url, signing_key)
    await raw_execute(db_url, ["DELETE FROM audit_events WHERE seq = 15"])
    log = await open_audit_log(db_url, create=False)
    try:
        verifier = ChainVerifier(await log.store.checkpoints(), {})
        assert not await verify_in_parallel(log.store, verifier, 2, min_per_job=1)
    finally:
        await log.close()


def test_split_cuts_at_checkpoints_and_covers_the_log() -> None:
    assert split(100, 2, [10, 20, 30, 40, 55, 60]) == [(0, 55), (55, 100)]
    assert split(100, 4, []) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert split(3, 8, []) == [(0, 1), (1, 2), (2, 3)]
    assert split(1, 2, [1]) == [(0, 1)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", "verify", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_documents_jobs() -> None:
    done = _cli("--help")
    assert done.returncode == 0
    assert "--jobs N" in done.stdout
    assert "number of" in done.stdout


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "100000"])
def test_bad_jobs_is_a_usage_error(value: str, tmp_path: object) -> None:
    done = _cli("--db", "sqlite:////nonexistent/x.db", "--jobs", value)
    assert done.returncode == 2
    assert "argument --jobs" in done.stderr
    assert "Traceback" not in done.stderr
