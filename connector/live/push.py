"""Gmail push, received: pull notices from the Pub/Sub subscription, sync, then acknowledge.

A notice says only "mailbox <address> changed up to historyId N". It is acknowledged once the
changes it announces are in the account's feed: the account's cursor already covers N, or a
sync run committed. A notice whose account another instance is syncing right now is asked for
again every 0.1 s for up to a second (that run mostly ends sooner and covers it); the settled
notices are acknowledged first. A notice that could still not be settled is handed back with a
short ack deadline, so Pub/Sub delivers it again soon (in a second when only held elsewhere,
later after a failure); nothing is acknowledged on hope.

A pull's accounts are settled as one batch: their leases claimed, their states read and the
leases let go in one statement each, whatever the batch's size (per account that was four
statements, a third of what a change cost the database). An account another pull of this
process is settling waits for that pull, then goes on its own (its notice is usually covered
by then). Notices that are not Gmail's, or name an address no active account is
linked to (unlinked since), are acknowledged and counted: retrying cannot help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import KW_ONLY, dataclass, field

from connector.accounts.sync_store import SyncState
from connector.gmail.pubsub import PubSubClient, gmail_notification
from connector.live.attempt import Attempt, ReadStates, SyncAccount, run_sync, sync_batch
from connector.live.ports import AccountDirectory, AccountLocks, LocalLocks
from connector.logs import get_logger

log = get_logger(__name__)
RETRY_SECONDS = 10  # a notice whose sync failed comes back after this long
# A notice whose account another task or instance is syncing comes back after this long: that
# run ends within a second or two, and waiting the failure delay put a 10 s step into latency.
HELD_SECONDS = 1
# Before that, the pull asks again for the held account every HELD_RETRY seconds for up to
# HELD_PATIENCE: the other run mostly ends sooner, and its cursor then covers the notice.
HELD_PATIENCE = 1.0
HELD_RETRY = 0.1


class _Turns:
    """Which accounts a pull of this process is settling now. Taken without an await between
    the check and the take, so two pulls never settle one account at once."""

    def __init__(self) -> None:
        self._ends: dict[str, asyncio.Event] = {}

    def take_free(self, account_ids: Collection[str]) -> list[str]:
        """Take the turns nobody holds; the accounts taken."""
        free = [a for a in account_ids if a not in self._ends]
        for account_id in free:
            self._ends[account_id] = asyncio.Event()
        return free

    async def take(self, account_id: str) -> None:
        """Wait for the account's turn, then take it."""
        while (end := self._ends.get(account_id)) is not None:
            await end.wait()
        self._ends[account_id] = asyncio.Event()

    def give_back(self, account_ids: Collection[str]) -> None:
        for account_id in account_ids:
            self._ends.pop(account_id).set()


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
    states: ReadStates
    _: KW_ONLY
    locks: AccountLocks = field(default_factory=LocalLocks)
    max_messages: int = 100
    concurrency: int = 16
    retry_seconds: int = RETRY_SECONDS
    held_seconds: int = HELD_SECONDS
    held_patience: float = HELD_PATIENCE
    held_retry: float = HELD_RETRY
    _slots: asyncio.Semaphore = field(init=False)
    _turns: _Turns = field(init=False, default_factory=_Turns)

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
            await self.pubsub.acknowledge(self.subscription, ignored)
        outcomes = await self._settle_all(newest)
        acked, failed = await self._answer(needs, outcomes)
        if needs:  # the rest wait only on accounts another instance holds: ask again a while
            waiting = set().union(*needs.values())
            outcomes = await self._wait_out_holders({a: newest[a] for a in waiting}, outcomes)
            more_acked, more_failed = await self._answer(needs, outcomes)
            acked, failed = acked + more_acked, failed + more_failed
            await self.pubsub.modify_ack_deadline(self.subscription, list(needs), self.held_seconds)
        synced = sum(1 for outcome in outcomes.values() if outcome is Attempt.SYNCED)
        return PullReport(len(received), acked + len(ignored), failed + len(needs), len(ignored),
                          synced)  # fmt: skip

    async def _answer(
        self, needs: dict[str, set[str]], outcomes: dict[str, Attempt | None]
    ) -> tuple[int, int]:
        """Acknowledge the notices whose accounts are all settled, hand back those with a failed
        account (after the retry delay), and take both out of `needs`; (acked, handed back)."""
        settled = {a for a, outcome in outcomes.items() if outcome in (None, Attempt.SYNCED)}
        failed = {a for a, outcome in outcomes.items() if outcome is Attempt.FAILED}
        ack = [i for i, accounts in needs.items() if accounts <= settled]
        later = [i for i, accounts in needs.items() if accounts & failed and i not in ack]
        await self.pubsub.acknowledge(self.subscription, ack)
        await self.pubsub.modify_ack_deadline(self.subscription, later, self.retry_seconds)
        for ack_id in ack + later:
            del needs[ack_id]
        return len(ack), len(later)

    async def _wait_out_holders(
        self, newest: dict[str, int], outcomes: dict[str, Attempt | None]
    ) -> dict[str, Attempt | None]:
        """The accounts of `newest` another instance held, asked for again every `held_retry`
        seconds for up to `held_patience`: that run usually ends within a fraction of a second
        and covers the notice, which is then acknowledged here rather than redelivered."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.held_patience
        outcomes = dict(outcomes)
        while held := {a: h for a, h in newest.items() if outcomes[a] is Attempt.HELD}:
            if loop.time() + self.held_retry > give_up:
                break
            await asyncio.sleep(self.held_retry)
            outcomes |= await self._settle_all(held)
        return outcomes

    async def _settle_all(self, newest: dict[str, int]) -> dict[str, Attempt | None]:
        """Per account: None when the feed already holds the announced changes, else how the
        run went. The accounts free in this process go as one batch; each of the others waits
        for the pull settling it (rather than handing its notice back as held: only another
        instance's run does that)."""
        free = self._turns.take_free(newest)
        taken = set(free)
        busy = [a for a in newest if a not in taken]
        batches = await asyncio.gather(
            self._batch_of_free({a: newest[a] for a in free}),
            *(self._settle_alone(a, newest[a]) for a in busy),
        )
        return {a: outcome for batch in batches for a, outcome in batch.items()}

    async def _batch_of_free(self, newest: dict[str, int]) -> dict[str, Attempt | None]:
        # The turns go back as soon as the batch is settled, not once the whole pull is: a
        # pull that kept them while it waited for an account another pull held could wait
        # for a pull waiting on one of its own, and both hung for good (their notices, given
        # to other pulls after the ack deadline, hung those too).
        try:
            return await self._batch(newest)
        finally:
            self._turns.give_back(newest)

    async def _settle_alone(self, account_id: str, history_id: int) -> dict[str, Attempt | None]:
        await self._turns.take(account_id)
        try:
            return await self._batch({account_id: history_id})
        finally:
            self._turns.give_back([account_id])

    async def _batch(self, newest: dict[str, int]) -> dict[str, Attempt | None]:
        """Settle accounts whose turns this pull holds: the ones not covered are synced."""
        return await sync_batch(self.locks, self.states, newest, run=self._run,
                                due=lambda a, state: not covered(state, newest[a]))  # fmt: skip

    async def _run(self, account_id: str, state: SyncState) -> Attempt:
        async with self._slots:
            return await run_sync(self.sync, account_id, failure_event="push_sync_failed",
                                  state=state)  # fmt: skip
