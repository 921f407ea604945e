"""Benchmark the audit log; prints one JSON object.

Measures, on SQLite and PostgreSQL:
  * durable append throughput with 64 concurrent writers (group commit), and per-append latency;
  * verify throughput over a large log, sequential and with --jobs (the number of cores);
  * latency of "one account's newest 100 events" in a 1,000,000-event log.

Prints ONE JSON line: the issue's figures, each beside the figure measured before (#18), the
load average, and the details.
Events are built once up front and reused, so the figures measure the store, not event creation.
PostgreSQL: --pg-url, else CONNECTOR_TEST_PG_URL, else a throwaway server via scripts/pg.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from audit import (
    Action,
    Actor,
    ActorKind,
    AuditEvent,
    AuditLog,
    Decision,
    Outcome,
    Purpose,
    QueryFilter,
    ResourceKind,
    ResourceRef,
    open_audit_log,
)
from audit.chain import Pending
from audit.store import write_batch
from connector.testing.machine import CpuTimes, machine_load

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 1000
T0 = datetime(2025, 1, 1, tzinfo=UTC)
JOBS = os.cpu_count() or 1
PARTS = ("sqlite_append", "sqlite_big", "postgres_append", "postgres_big")


def templates(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            actor=Actor(ActorKind.USER, f"user-{i % ACCOUNTS}"),
            action=Action.GMAIL_MESSAGE_READ,
            decision=Decision.ALLOW,
            outcome=Outcome.OK,
            account_id=f"acct-{i % ACCOUNTS}",
            purpose=Purpose.USER_FEATURE,
            resources=(ResourceRef(ResourceKind.MESSAGE, f"{i:016x}"),),
            request_id=uuid.uuid4().hex,
            time=T0 + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


async def append_load(
    url: str, events: list[AuditEvent], writers: int, per_writer: int
) -> dict[str, float]:
    log = await open_audit_log(url, checkpoint_every=10_000)
    latencies: list[float] = []

    async def writer(w: int) -> None:
        for k in range(per_writer):
            event = events[(w * per_writer + k) % len(events)]
            start = time.perf_counter()
            await log.append(event)
            latencies.append(time.perf_counter() - start)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await log.close()
    latencies.sort()
    total = writers * per_writer
    return {
        "events": total,
        "writers": writers,
        "events_per_s": round(total / elapsed),
        # CPU of this process per event (the writer thread's included): less load-dependent
        "cpu_us_per_event": round(cpu / total * 1e6, 1),
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def bulk_fill(log: AuditLog, events: list[AuditEvent], total: int) -> float:
    """Fill through the store's own write path in large batches (same chain code, no queue)."""
    pendings = [Pending.of(e) for e in events]
    started = time.perf_counter()
    batch = 50_000
    done = 0
    while done < total:
        n = min(batch, total - done)
        chunk = [pendings[(done + i) % len(pendings)] for i in range(n)]
        await write_batch(log.store, chunk, lambda _f, _l, _h: None)
        done += n
    return time.perf_counter() - started


async def big_log(url: str, events: list[AuditEvent], total: int) -> dict[str, float]:
    log = await open_audit_log(url)
    fill_s = await bulk_fill(log, events, total)
    rng = random.Random(7)
    for _ in range(5):  # warm the cache and the plan
        await log.query(QueryFilter(account_id="acct-1"), limit=100, newest_first=True)
    timings = []
    for _ in range(50):
        account = f"acct-{rng.randrange(ACCOUNTS)}"
        start = time.perf_counter()
        page = await log.query(QueryFilter(account_id=account), limit=100, newest_first=True)
        timings.append(time.perf_counter() - start)
        assert len(page) == 100
    verify: dict[str, float] = {}
    verify_cpu: dict[str, float] = {}
    for name, jobs in (("sequential", 1), ("parallel", JOBS)):
        started, cpu = time.perf_counter(), _cpu()
        report = await log.verify(jobs=jobs)
        verify[name], verify_cpu[name] = time.perf_counter() - started, _cpu() - cpu
        assert report.ok, report.problems
    await log.close()
    timings.sort()
    return {
        "events": total,
        "fill_s": round(fill_s, 1),
        "account_newest_100_p50_ms": round(timings[len(timings) // 2] * 1000, 2),
        "account_newest_100_p99_ms": round(timings[-1] * 1000, 2),
        "verify_events_per_s": round(report.events / verify["sequential"]),
        "verify_parallel_events_per_s": round(report.events / verify["parallel"]),
        "verify_jobs": JOBS,
        # CPU per event of this process and its finished children (the --jobs workers)
        "verify_cpu_us_per_event": round(verify_cpu["sequential"] / report.events * 1e6, 2),
        "verify_parallel_cpu_us_per_event": round(verify_cpu["parallel"] / report.events * 1e6, 2),
    }


def _cpu() -> float:
    """CPU seconds of this process and its reaped children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def headline(result: dict[str, dict[str, float]], since: CpuTimes | None) -> dict[str, object]:
    """The issue's figures, each beside the one measured before this work (issue #18, "Now")."""

    def fig(part: str, key: str) -> object:
        return result.get(part, {}).get(key)

    return {
        "appends_per_s_sqlite": fig("sqlite_append", "events_per_s"),
        "appends_per_s_sqlite_before": 22_800,
        "appends_per_s_pg": fig("postgres_append", "events_per_s"),
        "appends_per_s_pg_before": 17_800,
        "verify_seq_per_s_sqlite": fig("sqlite_big", "verify_events_per_s"),
        "verify_par_per_s_sqlite": fig("sqlite_big", "verify_parallel_events_per_s"),
        "verify_seq_per_s_pg": fig("postgres_big", "verify_events_per_s"),
        "verify_par_per_s_pg": fig("postgres_big", "verify_parallel_events_per_s"),
        "verify_per_s_before": "224000-238000",
        "jobs": JOBS,
        **machine_load(since),  # over the whole run; each part has its own in the detail
    }


async def pg_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


async def drop_pg_database(admin_url: str, url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg-url", default=os.environ.get("CONNECTOR_TEST_PG_URL", ""))
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--per-writer", type=int, default=1500)
    parser.add_argument("--big", type=int, default=1_000_000, help="events in the large log")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if unknown := parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.skip_pg:
        parts -= {"postgres_append", "postgres_big"}

    events = templates(20_000)
    result: dict[str, dict[str, float]] = {}
    started = CpuTimes.now()

    async def measured(part: str, work: Awaitable[dict[str, float]]) -> None:
        """Run one part (`work` starts when awaited) and keep its figures beside the load."""
        since = CpuTimes.now()
        figures = await work
        result[part] = {**figures, **machine_load(since)}  # type: ignore[dict-item]

    started_server = None
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite_append" in parts:
            await measured(
                "sqlite_append",
                append_load(f"sqlite:///{tmp}/append.db", events, args.writers, args.per_writer),
            )
        if "sqlite_big" in parts:
            await measured("sqlite_big", big_log(f"sqlite:///{tmp}/big.db", events, args.big))
    if parts & {"postgres_append", "postgres_big"}:
        admin = args.pg_url
        if not admin:
            started_server = tempfile.mkdtemp(prefix="bench-pg-")
            admin = subprocess.run(
                ["bash", str(ROOT / "scripts/pg.sh"), "start", started_server],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        try:
            if "postgres_append" in parts:
                url = await pg_database(admin)
                try:
                    await measured(
                        "postgres_append", append_load(url, events, args.writers, args.per_writer)
                    )
                finally:
                    await drop_pg_database(admin, url)
            if "postgres_big" in parts:
                url = await pg_database(admin)
                try:
                    await measured("postgres_big", big_log(url, events, args.big))
                finally:
                    await drop_pg_database(admin, url)
        finally:
            if started_server:
                subprocess.run(
                    ["bash", str(ROOT / "scripts/pg.sh"), "stop", started_server], check=False
                )
    print(json.dumps({**headline(result, started), "detail": result}))


if __name__ == "__main__":
    asyncio.run(main())
