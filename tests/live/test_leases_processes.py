"""Leases between real processes on SQLite (one host) and PostgreSQL: a holder killed with
SIGKILL loses its leases to another within a TTL, and two competing processes never rely on
the same lease at the same time."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from connector.clock import system_clock
from connector.db import create_engine, migrate
from connector.live.leases import Kind, Leases

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"acc{i}" for i in range(20)]


@pytest.fixture
async def url(db_url: str) -> str:
    engine = create_engine(db_url)
    await migrate(engine)
    await engine.dispose()
    return db_url


async def _child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.live.lease_child",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )


async def test_killed_holder_is_taken_over_after_the_ttl(url: str) -> None:
    """A process holding 20 leases (renewed by its heartbeat) is SIGKILLed; another instance
    gets none while they are still valid and all of them once the TTL has run out."""
    ttl = timedelta(seconds=2)
    child = await _child("hold", url, "victim", str(ttl.total_seconds()), *KEYS)
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)
    assert sorted(json.loads(line)["held"]) == sorted(KEYS)
    engine = create_engine(url)
    try:
        survivor = Leases(engine, "survivor", system_clock)
        await asyncio.sleep(ttl.total_seconds() * 1.5)  # past one TTL: only the heartbeat holds
        assert await survivor.claim_many(Kind.SYNC, KEYS, ttl) == set()
        child.send_signal(signal.SIGKILL)
        await child.wait()
        killed_at = system_clock()
        taken: set[str] = set()
        while len(taken) < len(KEYS):
            taken |= await survivor.claim_many(Kind.SYNC, KEYS, ttl)
            await asyncio.sleep(0.05)
        waited = (system_clock() - killed_at).total_seconds()
        assert waited <= ttl.total_seconds() + 1  # taken over within the TTL (and a beat)
        lease = await survivor.current(Kind.SYNC, KEYS[0])
        assert lease is not None
        assert lease.holder == "survivor"
        assert lease.token == 2  # the victim's, then the survivor's
    finally:
        await engine.dispose()


async def test_competing_processes_never_overlap(url: str) -> None:
    """Two processes take, hold and give up (or abandon) one lease for 4 s: their holdings
    never overlap in time and no fencing token is seen by both."""
    ttl, seconds = "0.6", "4"
    children = [await _child("compete", url, name, ttl, seconds) for name in ("p1", "p2")]
    outputs = []
    for child in children:
        out, _ = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0
        outputs.append([json.loads(line) for line in out.decode().splitlines()])
    assert all(outputs), "each process held the lease at least once"
    tokens = [{record["token"] for record in output} for output in outputs]
    assert tokens[0].isdisjoint(tokens[1])
    first, second = outputs
    for mine in first:
        for theirs in second:
            overlap = min(mine["end"], theirs["end"]) - max(mine["start"], theirs["start"])
            assert overlap <= 0, "two processes relied on the lease at once"
