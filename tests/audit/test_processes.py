"""Several OS processes on one database make one chain; a SIGKILLed writer loses nothing acked."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit import open_audit_log
from tests.audit.helpers import make_event

ROOT = Path(__file__).resolve().parents[2]


def spawn(url: str, count: int, workers: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit.writer_proc", url, str(count), str(workers)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_three_processes_make_one_chain(db_url: str) -> None:
    """3 processes x 300 concurrent appends: seqs 1..900, each acked once, the chain verifies."""
    log = await open_audit_log(db_url)  # migrate once so the processes race only on appends
    procs = [spawn(db_url, 300, 16) for _ in range(3)]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, None, 120) for p in procs))
    assert all(p.returncode == 0 for p in procs)
    acked = sorted(int(line) for out, _ in outputs for line in out.split())
    assert acked == list(range(1, 901))
    report = await log.verify()
    assert report.ok, report.problems
    assert report.events == 900
    await log.close()


@pytest.mark.slow
async def test_sigkill_mid_load_loses_no_acknowledged_event(db_url: str) -> None:
    """Every seq acked before SIGKILL is stored intact; the chain verifies; appends resume."""
    log = await open_audit_log(db_url)
    await log.close()
    proc = spawn(db_url, 1_000_000, 32)
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 30
    while len(acked) < 2000 and time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            break
        acked.append(int(line))
    proc.send_signal(signal.SIGKILL)
    rest, _ = await asyncio.to_thread(proc.communicate)
    acked += [int(line) for line in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 2000

    log = await open_audit_log(db_url)
    try:
        report = await log.verify()
        assert report.ok, report.problems
        assert report.head_seq >= max(acked)
        stored = {s.seq for s in await log.query(limit=report.head_seq)}
        assert set(acked) <= stored
        receipt = await log.append(make_event(0))
        assert receipt.seq == report.head_seq + 1
        assert (await log.verify()).ok
    finally:
        await log.close()
