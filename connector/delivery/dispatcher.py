"""Deliver what is due: per account, in seq order, each POST decided and recorded first.

For the head change of each due account this instance owns:

    authority.authorize(TRANSFER)   a refusal is recorded; the change is dead-lettered, unsent
    authority.record(sending)       durable before any byte leaves
    POST (signed)                   2xx delivered; anything else (or no answer) failed
    authority.record(delivered | failed with the status code)

A failed change is retried with exponential backoff and jitter until `horizon` after its first
attempt; then it is dead-lettered and the account continues with its next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import aiohttp

from audit.event import Actor, ResourceRef
from audit.vocab import Action, ActorKind, Purpose, ResourceKind
from connector.accounts.changes import ChangeKind
from connector.accounts.sync_store import StoredChange, SyncStore
from connector.clock import Clock, system_clock
from connector.delivery.scan import ScanWindow
from connector.delivery.signing import Signer, backoff, body, encode, event_id
from connector.delivery.store import Cursor, DeadLetter, DeliveryStore, NewDeadLetter
from connector.errors import AccessDenied, RedeliveryInProgressError
from connector.logs import get_logger
from connector.policy.authority import Authority
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

log = get_logger("connector.delivery")
DELIVERY_ACTOR = Actor(ActorKind.SERVICE, "connector-delivery")
DENIED = "policy.denied"
UNLINKED = ChangeKind.UNLINKED.value
# A redelivery claim older than this many POST timeouts belongs to a process that died mid-way.
REDELIVERY_CLAIM_TIMEOUTS = 6


class AccountOwnership(Protocol):
    """ "Which of these accounts do I own now?": the leases' answer when several instances
    share the database, asked once per run for all the due accounts (one statement, not one
    per account). `keeping()` holds what was owned for as long as the run takes (a run of many
    accounts may outlast a lease), so no other instance takes an account mid-run."""

    async def __call__(self, account_ids: Sequence[str]) -> set[str]: ...

    def keeping(self) -> contextlib.AbstractAsyncContextManager[None]: ...


class SingleInstance:
    """The default ownership: one instance delivers every account."""

    async def __call__(self, account_ids: Sequence[str]) -> set[str]:
        return set(account_ids)

    def keeping(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


single_instance = SingleInstance()


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    url: str
    secret: str
    horizon: timedelta = timedelta(hours=24)
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=30)
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0
    accounts_per_run: int = 200
    concurrency: int = 32  # accounts delivered at once (each account's changes one by one)
    changes_per_account: int = 50  # per run, so one busy account does not starve the rest


@dataclass(slots=True)
class RunCounts:
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    refused: int = 0
    errors: int = 0  # accounts left for the next run (the database or audit log failed)

    def add(self, other: RunCounts) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead_lettered += other.dead_lettered
        self.refused += other.refused
        self.errors += other.errors


def _resources(stored: StoredChange) -> tuple[ResourceRef, ...]:
    c = stored.change
    ids = [*((c.message_id,) if c.message_id else ()), *c.message_ids]
    refs = [ResourceRef(ResourceKind.MESSAGE, i) for i in ids]
    refs += [ResourceRef(ResourceKind.LABEL, i) for i in c.label_ids]
    return tuple(refs)


def _payload_resources(payload: dict[str, Any]) -> tuple[ResourceRef, ...]:
    """The ids a stored payload carries (a dead letter's), as `_resources` gives them."""
    data = payload.get("data")
    change = data.get("change") if isinstance(data, dict) else None
    if not isinstance(change, dict):
        return ()
    messages = [change.get("messageId"), *(change.get("messageIds") or [])]
    refs = [ResourceRef(ResourceKind.MESSAGE, m) for m in messages if isinstance(m, str)]
    labels = change.get("labelIds") or []
    refs += [ResourceRef(ResourceKind.LABEL, x) for x in labels if isinstance(x, str)]
    return tuple(refs)


@dataclass(eq=False)
class Dispatcher:
    config: DeliveryConfig
    store: DeliveryStore
    feed: SyncStore
    authority: Authority
    http: aiohttp.ClientSession
    _: KW_ONLY
    ownership: AccountOwnership = single_instance
    clock: Clock = system_clock
    rand: Callable[[], float] = random.random
    _signer: Signer = field(init=False)
    # which part of the feed the next due scan reads
    _window: ScanWindow = field(init=False, default_factory=ScanWindow)
    # accounts a run left with changes still to send
    _unfinished: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._signer = Signer(self.config.secret)

    async def _post(self, msg_id: str, data: str) -> str | None:
        """POST once; None when delivered, else the error code (`http.503`, `timeout`, ...)."""
        headers = self._signer.headers(msg_id, self.clock(), data)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        try:
            async with self.http.post(
                self.config.url, data=data.encode(), headers=headers, timeout=timeout,
                allow_redirects=False,
            ) as response:  # fmt: skip
                await response.read()
                return None if 200 <= response.status < 300 else f"http.{response.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError:
            return "unreachable"

    async def _attempt(
        self, account_id: str, msg_id: str, payload: dict[str, Any], change: Change
    ) -> str | None:
        """Decide, record, send, record. Raises AccessDenied (recorded) if refused."""
        await self.authority.authorize(change)
        await self.authority.record(change)  # durable before the data leaves
        error = await self._post(msg_id, encode(payload))
        if error is None:
            await self.authority.record(replace(change, action=Action.WEBHOOK_DELIVERED))
        else:
            await self.authority.record(
                replace(change, action=Action.WEBHOOK_FAILED), failed=True, error_code=error
            )
        return error

    def _change(
        self, account_id: str, msg_id: str, resources: tuple[ResourceRef, ...], kind: str
    ) -> Change:
        # `unlinked` comes after the purge: no known account for a TRANSFER, and nothing of
        # Gmail's to transfer; the policy's ACCOUNT_NOTICE grant covers exactly that event.
        operation = Operation.ACCOUNT_NOTICE if kind == UNLINKED else Operation.TRANSFER
        return Change(
            DELIVERY_ACTOR, operation, Action.WEBHOOK_SENDING, Purpose.USER_FEATURE,
            account_id=account_id, resources=resources, request_id=msg_id,
        )  # fmt: skip

    async def _deliver_head(
        self, account_id: str, stored: StoredChange, cursor: Cursor, counts: RunCounts
    ) -> bool:
        """Try the account's head change once; True if the account may go on to the next."""
        msg_id = event_id(account_id, stored.seq)
        payload = body(account_id, stored)
        kind = stored.change.kind.value
        change = self._change(account_id, msg_id, _resources(stored), kind)
        attempts = cursor.attempts if cursor.head_seq == stored.seq else 0
        try:
            error = await self._attempt(account_id, msg_id, payload, change)
        except AccessDenied:
            counts.refused += 1
            letter = NewDeadLetter(account_id, msg_id, stored.seq, kind, payload, attempts, DENIED)
            await self.store.dead_letter(letter, self.clock())
            return True
        now = self.clock()
        if error is None:
            counts.delivered += 1
            await self.store.delivered(account_id, stored.seq, now)
            return True
        counts.failed += 1
        first = cursor.first_attempt_at if cursor.head_seq == stored.seq else None
        if first is not None and now - first >= self.config.horizon:
            counts.dead_lettered += 1
            letter = NewDeadLetter(
                account_id, msg_id, stored.seq, kind, payload, attempts + 1, error
            )
            await self.store.dead_letter(letter, now)
            await self.authority.record(
                replace(change, action=Action.WEBHOOK_DEAD_LETTERED), failed=True, error_code=error
            )
            return True
        wait = backoff(attempts + 1, base=self.config.backoff_base, cap=self.config.backoff_cap,
                       rand=self.rand)  # fmt: skip
        await self.store.retry_later(account_id, stored.seq, error, now, now + wait)
        return False

    async def _deliver_account(
        self, account_id: str, cursor: Cursor, batch: list[StoredChange]
    ) -> RunCounts:
        """The account's pending `batch` (read after `cursor`), in order, until one waits."""
        counts = RunCounts()
        limit = self.config.changes_per_account
        for stored in batch:
            if not await self._deliver_head(account_id, stored, cursor, counts):
                return counts  # waits for its retry: asked for by name when due
            cursor = Cursor(account_id, stored.seq)  # settled: delivered or dead-lettered
        if len(batch) >= limit:
            self._unfinished.add(account_id)  # more behind the batch: next run, by name
        return counts

    async def _due(self) -> list[str]:
        """The accounts to deliver now: unfinished last run, retries due, then the scan's."""
        now, limit = self.clock(), self.config.accounts_per_run
        after = self._window.after(now)
        newest = await self.store.newest_seq()  # before the scan: a later append is above it
        scanned = await self.store.due(now, limit, after=after)
        self._window.scanned(now, after, newest, hit_limit=len(scanned) >= limit)
        retries = await self.store.retries_due(now, limit)
        unfinished, self._unfinished = self._unfinished, set()
        return list(dict.fromkeys([*sorted(unfinished), *retries, *scanned]))

    async def run_once(self) -> RunCounts:
        """Deliver what is due now (each owned account's changes in order); the counts."""
        due = await self._due()
        if not due:
            return RunCounts()
        async with self.ownership.keeping():
            mine = await self.ownership(due)
            return await self._deliver_all([a for a in due if a in mine])

    async def _deliver_all(self, due: list[str]) -> RunCounts:
        limit = asyncio.Semaphore(self.config.concurrency)
        if not due:
            return RunCounts()
        try:
            pending = await self.store.pending(due, self.config.changes_per_account)
        except Exception as exc:  # the database is away: nothing sent, next run
            log.warning("webhook_run_failed", error_type=type(exc).__name__)
            self._unfinished.update(due)
            return RunCounts(errors=len(due))

        async def one(account_id: str) -> RunCounts:
            cursor, batch = pending[account_id]
            if not batch:
                return RunCounts()
            async with limit:
                try:
                    return await self._deliver_account(account_id, cursor, batch)
                except Exception as exc:  # e.g. the audit log is away: nothing sent, next run
                    log.warning("webhook_account_failed", error_type=type(exc).__name__)
                    self._unfinished.add(account_id)
                    return RunCounts(errors=1)

        total = RunCounts()
        for counts in await asyncio.gather(*(one(a) for a in due)):
            total.add(counts)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """`run_once` until `stop`; between runs, sleep the poll interval or until a change is
        committed to the feed (by this process, or by another one that the feed relays)."""
        with self.feed.signal.listen_all() as wake:
            await self._run(stop, wake)

    async def _run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()  # what commits during the run wakes the next one
            try:
                await self.run_once()
            except Exception as exc:  # the database or the audit log is away: try again later
                log.warning("webhook_run_failed", error_type=type(exc).__name__)
            waiters: list[Awaitable[Any]] = [stop.wait(), wake.wait()]
            tasks = [asyncio.ensure_future(w) for w in waiters]
            try:
                await asyncio.wait(tasks, timeout=self.config.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                for task in tasks:
                    task.cancel()

    async def redeliver(self, letter: DeadLetter) -> str | None:
        """One more attempt of a dead letter (same event id); None when delivered.

        Raises RedeliveryInProgressError when another redelivery holds the letter (or it was
        redelivered since), AccessDenied (recorded) if the policy refuses it now."""
        now = self.clock()
        stale = timedelta(seconds=REDELIVERY_CLAIM_TIMEOUTS * self.config.timeout_seconds)
        if not await self.store.claim_redelivery(letter.id, now, stale):
            raise RedeliveryInProgressError(letter.id)
        resources = _payload_resources(letter.payload)
        change = self._change(letter.account_id, letter.id, resources, letter.kind)
        error: str | None = None
        try:
            error = await self._attempt(letter.account_id, letter.id, letter.payload, change)
        except BaseException:
            await self.store.redelivery_failed(letter.id, None)  # not sent: dead again
            raise
        if error is None:
            await self.store.redelivered(letter.id, self.clock())
        else:
            await self.store.redelivery_failed(letter.id, error)
        return error
