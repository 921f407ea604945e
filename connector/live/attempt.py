"""One sync run of one account under its lock: the step the push, poll and link paths share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from connector.live.ports import AccountLocks, Work
from connector.logs import get_logger

log = get_logger(__name__)
SyncAccount = Callable[[str], Awaitable[object]]  # one sync run (MailSync.sync)


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
        try:
            await sync(account_id)
        except Exception as exc:  # logged by type only: the error may quote mail
            log.warning(failure_event, account_id=account_id, error_type=type(exc).__name__)
            return Attempt.FAILED
        return Attempt.SYNCED
