"""What the live mailbox needs from the rest of the connector, as ports with a local default.

`AccountDirectory`: which accounts to keep in sync, and which are linked to an address (Gmail's
notice names the address only). `AccountLocks`: one sync (or watch renewal) of an account at a
time: across instances through leases in the database (`connector.live.leases`), inside one
process through `LocalLocks`, which is also the single-instance default.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from typing import Protocol


class Work(StrEnum):
    """What a lock is held for: the kinds of per-account background work."""

    SYNC = "sync"  # history.list and the feed commit, whether pushed or polled
    WATCH = "watch"  # users.watch renewal


class AccountDirectory(Protocol):
    async def active_ids(self, email: str | None = None) -> list[str]: ...

    async def active_by_address(self, emails: Collection[str]) -> dict[str, list[str]]:
        """The active accounts of each address, in one lookup (addresses with none left out)."""
        ...


class AccountLocks(Protocol):
    def hold(self, work: Work, account_id: str) -> AbstractAsyncContextManager[bool]:
        """Enter with True when this instance now owns the work (released on exit), False
        when another holds it: the caller skips or retries later, never waits."""
        ...

    def hold_many(
        self, work: Work, account_ids: Collection[str]
    ) -> AbstractAsyncContextManager[set[str]]:
        """`hold` for a batch, at the cost of one: enter with the accounts this instance now
        owns (all released on exit); the rest are held elsewhere."""
        ...


class LocalLocks:
    """Per-process locks: enough for one instance (the default), and the in-process half of
    the database leases, so two tasks of one process never contend through the database."""

    def __init__(self) -> None:
        self._held: set[tuple[Work, str]] = set()

    @contextlib.asynccontextmanager
    async def hold(self, work: Work, account_id: str) -> AsyncIterator[bool]:
        key = (work, account_id)
        if key in self._held:  # checked and taken with no await between: no race
            yield False
            return
        self._held.add(key)
        try:
            yield True
        finally:
            self._held.discard(key)

    @contextlib.asynccontextmanager
    async def hold_many(self, work: Work, account_ids: Collection[str]) -> AsyncIterator[set[str]]:
        keys = {(work, a) for a in account_ids} - self._held  # no await: no race
        self._held |= keys
        try:
            yield {a for _work, a in keys}
        finally:
            self._held -= keys
