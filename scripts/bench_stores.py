"""Benchmark: the CPU one call of the live mailbox's hottest store operations costs, on PostgreSQL.

One process, one connection pool, calls one after another (no concurrency), so the figure is
this process's own CPU per call (SQLAlchemy, asyncpg, our code), not the server's: the sync
run's commit (one change), the sync state read, a delivery settling the cursor, the account's
owner (asked for every policy decision), a lease taken and let go. Prints one JSON line.

    .venv/bin/python scripts/bench_stores.py [--calls 1500] [--accounts 50]

PostgreSQL: CONNECTOR_BENCH_PG_URL (an owner login), else a throwaway server from scripts/pg.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from connector.accounts.changes import Change, ChangeKind
from connector.accounts.store import AccountStore, NewTokens
from connector.accounts.sync_store import SyncStore
from connector.accounts.vault import KeyRing, Vault, generate_key_entry
from connector.clock import system_clock
from connector.db import create_engine, migrate
from connector.delivery.store import DeliveryStore
from connector.live.leases import Kind, Leases
from connector.testing import fleet

Call = Callable[[int], Awaitable[Any]]


async def _link(store: AccountStore, accounts: int) -> list[str]:
    async def no_audit(_account_id: str, _created: bool) -> None:
        return None

    tokens = NewTokens("refresh", "access", system_clock() + timedelta(hours=1),
                       frozenset({"https://www.googleapis.com/auth/gmail.modify"}))  # fmt: skip
    ids = []
    for i in range(accounts):
        account_id, _created = await store.save_link(owner_user_id=f"user-{i}", account_id=None,
                                       email=f"user-{i}@example.com", tokens=tokens,
                                       before_commit=no_audit)  # fmt: skip
        ids.append(account_id)
    return ids


async def _per_call(op: Call, calls: int) -> float:
    """Microseconds of this process's CPU per call of `op`, after a warm-up."""
    for i in range(min(100, calls)):
        await op(i)
    cpu = time.process_time()
    for i in range(calls):
        await op(i)
    return round(1e6 * (time.process_time() - cpu) / calls, 1)


async def bench(calls: int, accounts: int) -> dict[str, Any]:
    with fleet.bench_postgres("bench-stores") as server:
        async with fleet.fresh_database(server, "bench_stores") as url:
            engine = create_engine(url)
            try:
                await migrate(engine)
                vault = Vault(KeyRing.parse(generate_key_entry("bench1"), source="bench"))
                accounts_store = AccountStore(engine, vault, hash_key=secrets.token_bytes(24))
                ids = await _link(accounts_store, accounts)
                sync, delivery = SyncStore(engine), DeliveryStore(engine)
                leases = Leases(engine, "bench-holder", system_clock)

                def account(i: int) -> str:
                    return ids[i % len(ids)]

                async def commit(i: int) -> Any:
                    added = Change(ChangeKind.MESSAGE_ADDED, str(i), f"m{i}", "t1")
                    return await sync.commit(account(i), str(i), [added])

                async def lease(i: int) -> None:
                    await leases.acquire(Kind.SYNC, account(i), timedelta(seconds=10))
                    await leases.release(Kind.SYNC, account(i))

                ops: dict[str, Call] = {
                    "sync_commit_us": commit,
                    "sync_state_us": lambda i: sync.state(account(i)),
                    "delivered_us": lambda i: delivery.delivered(account(i), i, system_clock()),
                    "owner_of_us": lambda i: accounts_store.owner_of(account(i)),
                    "lease_take_and_release_us": lease,
                }
                figures = {name: await _per_call(op, calls) for name, op in ops.items()}
            finally:
                await engine.dispose()
    return {"bench": "stores", "backend": "postgresql", "calls": calls, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500, help="timed calls of each operation")
    parser.add_argument("--accounts", type=int, default=50, help="linked accounts to spread over")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.calls, args.accounts))))


if __name__ == "__main__":
    main()
