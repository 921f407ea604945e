"""The polling fallback: `history.list` on a timer for every active account.

Without Pub/Sub it is how mail arrives (every `every`); with push it is the safety net Google
recommends for lost notices, at a longer interval. An account synced recently — by a notice, or
by another instance — is skipped, so several instances do not poll one account twice a round.
"""

from __future__ import annotations

import asyncio
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta

from connector.accounts.sync_store import SyncState
from connector.clock import Clock, system_clock
from connector.live.attempt import Attempt, ReadStates, SyncAccount, run_sync, sync_batch, sync_once
from connector.live.ports import AccountDirectory, AccountLocks, LocalLocks

BATCH = 100  # accounts whose states are read, and whose locks are claimed, together


def poll_due(state: SyncState, now: datetime, every: timedelta) -> bool:
    """Pure: an account never synced, or last synced (or tried) at least `every` ago."""
    return state.synced_at is None or now - state.synced_at >= every


@dataclass(frozen=True, slots=True)
class PollReport:
    due: int = 0
    synced: int = 0
    failed: int = 0


@dataclass(eq=False)
class Poller:
    directory: AccountDirectory
    sync: SyncAccount
    states: ReadStates
    _: KW_ONLY
    every: timedelta
    locks: AccountLocks = field(default_factory=LocalLocks)
    concurrency: int = 8
    batch: int = BATCH
    clock: Clock = system_clock
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def poll_once(self) -> PollReport:
        ids = await self.directory.active_ids()
        results: list[Attempt | None] = []
        for start in range(0, len(ids), self.batch):
            results += (await self._poll(ids[start : start + self.batch])).values()
        return PollReport(
            due=sum(1 for r in results if r is not None),
            synced=results.count(Attempt.SYNCED),
            failed=results.count(Attempt.FAILED),
        )

    async def sync_now(self, account_id: str) -> Attempt:
        """One run for this account whether due or not."""
        return await sync_once(self.locks, self.sync, account_id,
                               failure_event="live_adopt_sync_failed")  # fmt: skip

    async def _poll(self, account_ids: list[str]) -> dict[str, Attempt | None]:
        """Per account, None: not due; else how the attempt went. The states are read once
        without the locks to leave out what is not due (most accounts, with push), then again
        under them."""
        seen = await self.states(account_ids)
        now = self.clock()
        wanted = [a for a in account_ids if poll_due(seen[a], now, self.every)]
        found = await sync_batch(
            self.locks, self.states, wanted, run=self._run,
            due=lambda _account, state: poll_due(state, now, self.every),
        )  # fmt: skip
        return {a: found.get(a) for a in account_ids}

    async def _run(self, account_id: str, state: SyncState) -> Attempt:
        async with self._slots:
            return await run_sync(self.sync, account_id, failure_event="poll_sync_failed",
                                  state=state)  # fmt: skip
