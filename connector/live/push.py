"""Gmail push, received: pull notices from the Pub/Sub subscription, sync, then acknowledge.

A notice says only "mailbox <address> changed up to historyId N". It is acknowledged once the
changes it announces are in the account's feed: the account's cursor already covers N, or a
sync run committed. A notice that could not be settled (the sync failed, or another instance is
syncing that account right now) is handed back with a short ack deadline, so Pub/Sub delivers it
again soon (in a second when only held elsewhere, later after a failure); nothing is
acknowledged on hope. Notices that are not Gmail's, or name an address no active account is
linked to (unlinked since), are acknowledged and counted: retrying cannot help.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

from connector.accounts.sync_store import SyncState
from connector.gmail.pubsub import PubSubClient, gmail_notification
from connector.live.attempt import Attempt, SyncAccount, sync_once
from connector.live.ports import AccountDirectory, AccountLocks, LocalLocks
from connector.logs import get_logger

log = get_logger(__name__)
RETRY_SECONDS = 10  # a notice whose sync failed comes back after this long
# A notice whose account another task or instance is syncing comes back after this long: that
# run ends within a second or two, and waiting the failure delay put a 10 s step into latency.
HELD_SECONDS = 1
ReadState = Callable[[str], Awaitable[SyncState]]


@dataclass(slots=True)
class _Turn:
    """One account's turn to settle in this process, and how many wait for or hold it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass(frozen=True, slots=True)
class PullReport:
    received: int = 0
    acknowledged: int = 0
    retried: int = 0  # handed back to be delivered again
    ignored: int = 0  # not a Gmail notice, or no active account for its address (acked)
    synced: int = 0  # accounts synced


def covered(state: SyncState, history_id: int) -> bool:
    """Pure: whether the stored cursor already includes the change announced at `history_id`."""
    return state.history_id is not None and int(state.history_id) >= history_id


@dataclass(eq=False)
class PushReceiver:
    pubsub: PubSubClient
    subscription: str
    directory: AccountDirectory
    sync: SyncAccount
    state: ReadState
    _: KW_ONLY
    locks: AccountLocks = field(default_factory=LocalLocks)
    max_messages: int = 100
    concurrency: int = 16
    retry_seconds: int = RETRY_SECONDS
    held_seconds: int = HELD_SECONDS
    _slots: asyncio.Semaphore = field(init=False)
    _turns: dict[str, _Turn] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def pull_once(self) -> PullReport:
        received = await self.pubsub.pull(self.subscription, max_messages=self.max_messages)
        newest: dict[str, int] = {}  # account -> the highest historyId announced
        needs: dict[str, set[str]] = {}  # ack id -> the accounts that must be settled first
        ignored: list[str] = []
        notices = [(item, gmail_notification(item)) for item in received]
        # address -> its accounts: one lookup for the whole pull
        linked = await self.directory.active_by_address(
            {notice.email for _item, notice in notices if notice is not None}
        )
        for item, notice in notices:
            accounts = linked.get(notice.email, []) if notice is not None else []
            if notice is None or not accounts:
                ignored.append(item.ack_id)
                continue
            needs[item.ack_id] = set(accounts)
            for account_id in accounts:
                newest[account_id] = max(newest.get(account_id, 0), notice.history_id)
        if ignored:
            log.info("push_notices_ignored", count=len(ignored))
        outcomes = dict(zip(newest, await asyncio.gather(
            *(self._settle(a, h) for a, h in newest.items())), strict=True))  # fmt: skip
        settled = {a for a, outcome in outcomes.items() if outcome in (None, Attempt.SYNCED)}
        failed = {a for a, outcome in outcomes.items() if outcome is Attempt.FAILED}
        ack = ignored + [i for i, accounts in needs.items() if accounts <= settled]
        later = [i for i, accounts in needs.items() if accounts & failed]
        soon = [i for i, accounts in needs.items()
                if not accounts <= settled and not accounts & failed]  # fmt: skip
        await self.pubsub.acknowledge(self.subscription, ack)
        await self.pubsub.modify_ack_deadline(self.subscription, later, self.retry_seconds)
        await self.pubsub.modify_ack_deadline(self.subscription, soon, self.held_seconds)
        synced = sum(1 for outcome in outcomes.values() if outcome is Attempt.SYNCED)
        return PullReport(len(received), len(ack), len(later) + len(soon), len(ignored), synced)

    async def _settle(self, account_id: str, history_id: int) -> Attempt | None:
        """None when the feed already holds the announced changes, else how the run went.

        Pulls run concurrently; two holding notices for one account take turns here (the
        later one usually finds its notice covered) rather than one of them handing its
        notice back as held. Only another instance's run hands a notice back."""
        async with self._slots, self._turn(account_id):
            if covered(await self.state(account_id), history_id):
                return None
            return await sync_once(self.locks, self.sync, account_id,
                                   failure_event="push_sync_failed")  # fmt: skip

    @contextlib.asynccontextmanager
    async def _turn(self, account_id: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(account_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[account_id]
