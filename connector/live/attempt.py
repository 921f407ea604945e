"""One sync run of one account under its lock, and a batch of them under one claim of their
locks: the steps the push, poll and link paths share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from enum import StrEnum
from typing import Protocol

from connector.accounts.sync_store import SyncState
from connector.live.ports import AccountLocks, Work
from connector.logs import get_logger

log = get_logger(__name__)
ReadStates = Callable[[Collection[str]], Awaitable[Mapping[str, SyncState]]]


class SyncAccount(Protocol):
    """One sync run of an account (`MailSync.sync`), from `state` when the caller read it
    under the account's lock."""

    def __call__(
        self, account_id: str, /, *, state: SyncState | None = None
    ) -> Awaitable[object]: ...


class Attempt(StrEnum):
    SYNCED = "synced"
    FAILED = "failed"  # counted in the sync state by the run itself; tried again later
    HELD = "held"  # another task or instance is syncing the account right now


async def sync_once(
    locks: AccountLocks, sync: SyncAccount, account_id: str, *, failure_event: str
) -> Attempt:
    """Run `sync` if this instance can take the account's lock; never raises for the run."""
    async with locks.hold(Work.SYNC, account_id) as mine:
        if not mine:
            return Attempt.HELD
        return await run_sync(sync, account_id, failure_event=failure_event)


async def run_sync(
    sync: SyncAccount, account_id: str, *, failure_event: str, state: SyncState | None = None
) -> Attempt:
    """Run `sync` under a lock the caller holds; never raises for the run."""
    try:
        await sync(account_id, state=state)
    except Exception as exc:  # logged by type only: the error may quote mail
        log.warning(failure_event, account_id=account_id, error_type=type(exc).__name__)
        return Attempt.FAILED
    return Attempt.SYNCED


async def sync_batch(
    locks: AccountLocks,
    read_states: ReadStates,
    account_ids: Collection[str],
    *,
    due: Callable[[str, SyncState], bool],
    run: Callable[[str, SyncState], Awaitable[Attempt]],
) -> dict[str, Attempt | None]:
    """Per account: None when not `due` by its state, HELD when another instance (or task)
    holds it, else how `run` went. The locks are claimed, the states read and the locks let go
    in one statement each for the whole batch; the states are read under the locks, so no
    other run moves those cursors before `run` starts from them."""
    if not account_ids:
        return {}
    async with locks.hold_many(Work.SYNC, account_ids) as mine:
        outcomes: dict[str, Attempt | None] = {a: Attempt.HELD for a in account_ids
                                               if a not in mine}  # fmt: skip
        if not mine:
            return outcomes
        states = await read_states(mine)
        todo = [a for a in account_ids if a in mine and due(a, states[a])]
        chosen = set(todo)
        outcomes |= {a: None for a in mine if a not in chosen}
        runs = await asyncio.gather(*(run(a, states[a]) for a in todo))
        return outcomes | dict(zip(todo, runs, strict=True))
