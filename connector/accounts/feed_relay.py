"""Commits to the change feed, relayed between instances through PostgreSQL LISTEN/NOTIFY.

A process's `FeedSignal` wakes only that process's streams and webhook dispatcher. With several
`connector serve` on one PostgreSQL, a change one of them commits was seen by the others only
at their next poll (a second for webhooks, FEED_POLL_SECONDS for streams): half the changes of
an account took that detour whenever its sync and its delivery ran on different instances.

`SyncStore` sends `NOTIFY connector_feed, '<sender> <account id>'` inside the transaction that
appends (PostgreSQL delivers it only if that transaction commits, and after the commit). Every
instance runs a `FeedRelay`: one connection of its own that LISTENs and wakes the local signal
for each account another sender names. A notice carries ids only, never content. A lost
connection is reopened after a pause; meanwhile the poll is the fallback, so nothing is missed,
only later.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url

from connector.accounts.feed_signal import FeedSignal
from connector.logs import get_logger

log = get_logger(__name__)

CHANNEL = "connector_feed"
SENDER = uuid.uuid4().hex  # this process: its own notices come back and are skipped
NOTIFY = text("SELECT pg_notify(:channel, :payload)")  # in the appending transaction


def notice(account_id: str, sender: str = SENDER) -> dict[str, str]:
    """The parameters of `NOTIFY` for an append to `account_id`."""
    return {"channel": CHANNEL, "payload": f"{sender} {account_id}"}


def parse(payload: str, me: str = SENDER) -> str | None:
    """Pure: the account id a notice names, None for our own notices and malformed ones."""
    sender, _, account_id = payload.partition(" ")
    if sender == me or not account_id:
        return None
    return account_id


def listen_dsn(database_url: str) -> str:
    """The asyncpg DSN of an SQLAlchemy PostgreSQL URL (any driver suffix dropped)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class FeedRelay:
    """Wakes `signal` for appends committed by other instances, while `run` runs."""

    def __init__(
        self, database_url: str, signal: FeedSignal, *, me: str = SENDER, retry_seconds: float = 2.0
    ) -> None:
        self._dsn = listen_dsn(database_url)
        self._signal = signal
        self._me = me
        self._retry = retry_seconds
        self.listening = asyncio.Event()  # set while a LISTEN is in place (tests wait on it)

    def _on_notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        account_id = parse(payload, self._me)
        if account_id is not None:
            self._signal.notify(account_id)

    async def run(self, stop: asyncio.Event) -> None:
        """LISTEN until `stop`, reconnecting after a pause when the connection is lost."""
        while not stop.is_set():
            try:
                await self._listen(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("feed_relay_lost", error_type=type(exc).__name__)
            finally:
                self.listening.clear()
            if not stop.is_set():
                # the loop ends when asked; otherwise a pause, then a new connection
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._retry)

    async def _listen(self, stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(self._dsn)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notice)
            self.listening.set()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if lost.is_set() and not stop.is_set():
                raise ConnectionResetError("the LISTEN connection was closed")
        finally:
            if not conn.is_closed():
                await conn.close()
