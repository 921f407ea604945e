"""Server-side state of links in progress: `state` -> user, PKCE verifier, scopes, redirect.

Rows are created only after the user confirms the disclosure, live ten minutes, and are consumed
by one atomic DELETE, so a `state` value works once even with several connector processes.
The `state` itself is stored only as its SHA-256; the verifier is sealed by the vault.

Browser binding: a disclosure ticket is a bearer URL, so the first browser that opens it claims
it (`TicketClaims`, keyed by the SHA-256 of the ticket and of the browser's link cookie) and the
pending link remembers that browser, so a forwarded disclosure link or a forwarded Google URL
cannot finish in someone else's browser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from connector.accounts.models import LinkStateRow, LinkTicketRow
from connector.accounts.vault import SecretKind, Vault
from connector.db import aware, session_factory


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PendingLink:
    user_id: str
    account_id: str | None
    code_verifier: str
    scopes: tuple[str, ...]
    redirect_uri: str
    created_at: datetime
    expires_at: datetime
    browser_hash: str | None = None  # the browser it belongs to (see the module docstring)
    return_url: str | None = None  # where the callback sends the browser back (allow-listed)

    def __repr__(self) -> str:
        return f"PendingLink(account_id={self.account_id!r}, expires_at={self.expires_at!r})"


class LinkStateStore:
    def __init__(self, engine: AsyncEngine, vault: Vault) -> None:
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._vault = vault

    def __repr__(self) -> str:
        return "LinkStateStore()"

    async def create(
        self, state: str, pending: PendingLink, before_commit: Callable[[], Awaitable[None]]
    ) -> None:
        """Store a pending link; `before_commit` (the audit record) runs in the transaction."""
        key = state_hash(state)
        row = LinkStateRow(
            state_hash=key,
            user_id=pending.user_id,
            account_id=pending.account_id,
            code_verifier_sealed=self._vault.seal(
                pending.code_verifier, owner_id=key, kind=SecretKind.CODE_VERIFIER
            ),
            scopes=list(pending.scopes),
            redirect_uri=pending.redirect_uri,
            created_at=pending.created_at,
            expires_at=pending.expires_at,
            browser_hash=pending.browser_hash,
            return_url=pending.return_url,
        )
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            await before_commit()

    async def consume(self, state: str) -> PendingLink | None:
        """Take the pending link for `state` (deleting it), or None if unknown or already used."""
        key = state_hash(state)
        async with self._sessions() as session, session.begin():
            row = await session.get(LinkStateRow, key)
            if row is None:
                return None
            result = await session.execute(
                delete(LinkStateRow).where(col(LinkStateRow.state_hash) == key)
            )
            if getattr(result, "rowcount", 0) != 1:  # another process consumed it first
                return None
        return PendingLink(
            user_id=row.user_id,
            account_id=row.account_id,
            code_verifier=self._vault.open(
                row.code_verifier_sealed, owner_id=key, kind=SecretKind.CODE_VERIFIER
            ),
            scopes=tuple(row.scopes),
            redirect_uri=row.redirect_uri,
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
            browser_hash=row.browser_hash,
            return_url=row.return_url,
        )

    async def purge_expired(self, now: datetime) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(LinkStateRow).where(col(LinkStateRow.expires_at) < now)
            )
        return int(getattr(result, "rowcount", 0) or 0)


class TicketClaims:
    """Which browser first opened each disclosure ticket (rows expire with the ticket)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    async def claim(self, ticket: str, browser_hash: str, expires_at: datetime) -> bool:
        """True if `ticket` is now, or already was, this browser's; False if another's."""
        key = state_hash(ticket)
        try:
            async with self._sessions() as session, session.begin():
                session.add(LinkTicketRow(ticket_hash=key, browser_hash=browser_hash,
                                          expires_at=expires_at))  # fmt: skip
        except IntegrityError:  # claimed before, by this browser or another
            return await self.owned_by(ticket, browser_hash)
        return True

    async def owned_by(self, ticket: str, browser_hash: str) -> bool:
        async with self._sessions() as session:
            row = await session.get(LinkTicketRow, state_hash(ticket))
        return row is not None and row.browser_hash == browser_hash

    async def purge_expired(self, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(LinkTicketRow).where(col(LinkTicketRow.expires_at) < now))
