"""Wiring: the service objects one running app shares, built from settings and open resources.

The web layer reaches everything through `Services`; only `connector.policy.gate.build_gate`
touches the Gmail client. Accounts (owners, tokens, linking) come from `connector.accounts` and
`connector.accounts.credentials` through `AccountsBundle`, so tests and the benchmark can substitute the
emulator-issued tokens for the browser flow without touching anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.sink import AuditSink
from connector.inbox.send_keys import SqlSendKeys
from connector.inbox.service import Inbox
from connector.policy.gate import Gate, build_gate
from connector.policy.oversight import Oversight, ReadableLog
from connector.policy.ports import AccountOwners
from connector.policy.store import PolicyStore
from connector.policy.usage import BufferedUsageCounter
from connector.ports import ExchangeObserver, TokenSource
from connector.settings import Settings, SettingsError


def utc_now() -> datetime:
    return datetime.now(UTC)


class Linking(Protocol):
    """Account lifecycle as the HTTP API offers it (implemented over `connector.accounts.oauth`)."""

    async def start(self, user_id: str, *, request_id: str | None) -> dict[str, Any]:
        """Begin linking: the URL of the disclosure page, with a short-lived ticket."""
        ...

    async def disclosure(self, ticket: str) -> str:
        """The Limited Use disclosure page (HTML) shown right before Google's consent page."""
        ...

    async def begin(self, ticket: str, accepted: bool) -> str:
        """After the affirmative action on the disclosure page: Google's authorization URL."""
        ...

    async def complete(
        self, state: str, code: str | None, error: str | None, *, request_id: str | None
    ) -> dict[str, Any]:
        """Finish linking from the OAuth callback; returns the account's status."""
        ...

    async def status(self, user_id: str, account_id: str) -> dict[str, Any]: ...

    async def accounts(self, user_id: str) -> list[dict[str, Any]]: ...

    async def unlink(self, user_id: str, account_id: str) -> dict[str, Any]:
        """Revoke at Google, purge what the connector holds, return the deletion receipt."""
        ...


@dataclass
class AccountsBundle:
    owners: AccountOwners
    token_source: TokenSource
    linking: Linking | None = None


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    audit_log: ReadableLog
    sink: AuditSink
    policy: PolicyStore
    gate: Gate
    inbox: Inbox
    oversight: Oversight
    accounts: AccountsBundle
    usage: BufferedUsageCounter
    hash_key: bytes
    clock: Callable[[], datetime] = field(default=utc_now)


def build_services(
    settings: Settings,
    *,
    engine: AsyncEngine,
    audit_log: ReadableLog,
    sink: AuditSink,
    session: aiohttp.ClientSession,
    accounts: AccountsBundle,
    clock: Callable[[], datetime] = utc_now,
    observe_gmail: ExchangeObserver | None = None,
) -> Services:
    if not settings.audit_hash_key:
        raise SettingsError(
            "CONNECTOR_AUDIT_HASH_KEY is required: addresses, IPs and queries are recorded as "
            "keyed hashes"
        )
    policy = PolicyStore(engine, sink, accounts.owners, clock)
    usage = BufferedUsageCounter(engine)
    gate = build_gate(
        settings, audit=sink, owners=accounts.owners, facts=policy,
        usage=usage, token_source=accounts.token_source, session=session,
        clock=clock, observe=observe_gmail,
    )  # fmt: skip
    return Services(
        settings=settings,
        engine=engine,
        audit_log=audit_log,
        sink=sink,
        policy=policy,
        gate=gate,
        inbox=Inbox(gate, send_keys=SqlSendKeys(engine, clock)),
        oversight=Oversight(audit_log, sink, accounts.owners),
        accounts=accounts,
        usage=usage,
        hash_key=settings.audit_hash_key.encode("utf-8"),
        clock=clock,
    )
