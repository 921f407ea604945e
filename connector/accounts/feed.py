"""The owner's change feed, read a page at a time or followed as a stream.

Every read is a transfer of Gmail-derived data (ids only) out of the connector, so it is decided
and recorded as `Operation.TRANSFER` through `Authority.permit` before anything is returned: one
record per page read, one record per stream when it opens (covering everything that stream
delivers until it closes). A refusal is recorded by the authority and raised as `AccessDenied`.

A stream yields batches of changes after the cursor as they are appended: it is woken at once by
this process's `FeedSignal` and otherwise reads the database every `poll_seconds`, so changes
appended by another instance arrive too. It yields an empty batch every `heartbeat_seconds`
without changes (the caller sends a keep-alive) and ends after an `unlinked` change or when the
signal is closed (shutdown).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass

from audit.event import Actor
from audit.vocab import Action, Purpose
from connector.accounts.changes import ChangeKind
from connector.accounts.feed_signal import woken
from connector.accounts.sync_store import MAX_PAGE, StoredChange, SyncStore
from connector.policy.authority import Authority
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
LIFETIME_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class FeedPage:
    changes: list[StoredChange]
    next_cursor: int  # the last seq returned, or the cursor given when nothing is new


@dataclass(eq=False)
class ChangeFeed:
    store: SyncStore
    authority: Authority
    _: KW_ONLY
    poll_seconds: float = POLL_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    lifetime_seconds: float = LIFETIME_SECONDS  # a stream's longest life (the caller's timer)

    def close(self) -> None:
        """End every open stream (shutdown)."""
        self.store.signal.close()

    async def _permit(
        self, actor: Actor, account_id: str, action: Action, request_id: str | None
    ) -> None:
        await self.authority.permit(
            Change(actor, Operation.TRANSFER, action, Purpose.USER_FEATURE,
                   account_id=account_id, request_id=request_id)
        )  # fmt: skip

    async def read(
        self,
        actor: Actor,
        account_id: str,
        *,
        after: int,
        limit: int = MAX_PAGE,
        request_id: str | None = None,
    ) -> FeedPage:
        await self._permit(actor, account_id, Action.ACCOUNT_CHANGES_READ, request_id)
        changes = await self.store.changes(account_id, after=after, limit=limit)
        return FeedPage(changes, changes[-1].seq if changes else after)

    async def open(
        self, actor: Actor, account_id: str, *, after: int, request_id: str | None = None
    ) -> AsyncIterator[list[StoredChange]]:
        """Permit (and record) the stream now; then its batches, lazily."""
        await self._permit(actor, account_id, Action.ACCOUNT_CHANGES_STREAMED, request_id)
        return self._follow(account_id, after)

    async def _follow(self, account_id: str, after: int) -> AsyncIterator[list[StoredChange]]:
        signal = self.store.signal
        idle = 0.0
        with signal.listen(account_id) as wake:
            while not signal.closed:
                batch = await self.store.changes(account_id, after=after)
                if batch:
                    idle = 0.0
                    after = batch[-1].seq
                    yield batch
                    if any(c.change.kind is ChangeKind.UNLINKED for c in batch):
                        return
                    continue
                if idle >= self.heartbeat_seconds:
                    idle = 0.0
                    yield []
                if not await woken(wake, self.poll_seconds):
                    idle += self.poll_seconds
