"""In-process wake-ups for the change feed: one per account, set when this process appends to it.

`SyncStore` calls `notify(account_id)` after a commit that appended changes; a stream of that
account's feed waits on `listen(account_id)` with a timeout, and reads the database when woken
or when the timeout passes. The timeout is the polling fallback: a change appended by another
instance (several `connector serve` on one PostgreSQL) is seen within one poll interval.
`close()` wakes every listener for good (shutdown): streams end instead of being cancelled.
`listen_all()` is woken by an append to any account (the webhook dispatcher's wake-up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class FeedSignal:
    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Event]] = {}
        self._everything: set[asyncio.Event] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, account_id: str) -> None:
        for event in self._listeners.get(account_id, ()):
            event.set()
        for event in self._everything:
            event.set()

    def close(self) -> None:
        self._closed = True
        for events in (*self._listeners.values(), self._everything):
            for event in events:
                event.set()

    @contextlib.contextmanager
    def listen_all(self) -> Iterator[asyncio.Event]:
        """An event set on the next append to any account (or on close); clear it to rearm."""
        event = asyncio.Event()
        if self._closed:
            event.set()
        self._everything.add(event)
        try:
            yield event
        finally:
            self._everything.discard(event)

    @contextlib.contextmanager
    def listen(self, account_id: str) -> Iterator[asyncio.Event]:
        """An event set on the next append to `account_id` (or on close); clear it to rearm."""
        event = asyncio.Event()
        if self._closed:
            event.set()
        self._listeners.setdefault(account_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._listeners.get(account_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._listeners[account_id]


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """True if `event` was set within `seconds` (then cleared), False otherwise."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    event.clear()
    return True
