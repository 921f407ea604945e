"""`VaultCredentialStore`: the `CredentialStore` over the accounts table and the vault."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from connector.accounts.changes import Change, ChangeKind
from connector.accounts.models import AccountRow, AccountStatus
from connector.accounts.store import ACCOUNTS, as_utc
from connector.accounts.sync_store import append_rows
from connector.accounts.vault import SecretKind, Vault
from connector.clock import Clock, system_clock
from connector.db import one_statement, session_factory
from connector.errors import AccountNotLinkedError, NeedsRelinkError
from connector.grouped import Grouped
from connector.ports import StoredCredentials

# Read for every Gmail call, by many tasks at once: one statement for the rows asked for
# together (`Grouped`), built once (see `first_row`), expanding (one cache entry).
_ACCOUNT_ROWS = sa.select(ACCOUNTS).where(
    ACCOUNTS.c.id.in_(sa.bindparam("account_ids", expanding=True))
)


class VaultCredentialStore:
    """Loads and saves decrypted credentials; also a `credentials.RefreshTokenSink`."""

    def __init__(self, engine: AsyncEngine, vault: Vault, *, clock: Clock = system_clock) -> None:
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._statement = one_statement(engine)
        self._vault = vault
        self._clock = clock
        self._rows: Grouped[str, sa.Row[Any] | None] = Grouped(self._rows_of, missing=None)

    def __repr__(self) -> str:
        return "VaultCredentialStore()"

    async def load(self, account_id: str) -> StoredCredentials:
        # Read for every Gmail call, when asked (grouped with the loads of the same moment,
        # never cached): an unlink or a refresh by another instance is seen at once.
        row = await self._rows(account_id)
        if row is None:
            raise AccountNotLinkedError(account_id)
        if row.status != AccountStatus.ACTIVE:
            raise NeedsRelinkError(account_id, f"marked for relinking ({row.status_reason})")
        access = (
            self._vault.open(row.access_token_sealed, owner_id=row.id, kind=SecretKind.ACCESS_TOKEN)
            if row.access_token_sealed
            else None
        )
        return StoredCredentials(
            refresh_token=self._vault.open(
                row.refresh_token_sealed, owner_id=row.id, kind=SecretKind.REFRESH_TOKEN
            ),
            access_token=access,
            expiry=as_utc(row.access_expiry),
            scopes=frozenset(row.scopes),
        )

    async def _rows_of(self, account_ids: Sequence[str]) -> dict[str, sa.Row[Any]]:
        async with self._statement() as conn:
            rows = await conn.execute(_ACCOUNT_ROWS, {"account_ids": list(account_ids)})
            return {row.id: row for row in rows}

    async def save_access_token(
        self, account_id: str, access_token: str, expiry: datetime | None, scopes: frozenset[str]
    ) -> None:
        async with self._sessions() as session, session.begin():
            row = await self._row(session, account_id)
            row.access_token_sealed = self._vault.seal(
                access_token, owner_id=account_id, kind=SecretKind.ACCESS_TOKEN
            )
            row.access_expiry = expiry
            row.scopes = sorted(scopes)
            row.updated_at = self._clock()

    async def replace_refresh_token(self, account_id: str, refresh_token: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await self._row(session, account_id)
            row.refresh_token_sealed = self._vault.seal(
                refresh_token, owner_id=account_id, kind=SecretKind.REFRESH_TOKEN
            )
            row.updated_at = self._clock()

    async def mark_needs_relink(self, account_id: str, reason: str) -> None:
        async with self._sessions() as session, session.begin():
            row = await self._row(session, account_id)
            if row.status != AccountStatus.NEEDS_RELINK:  # one feed entry per dead grant
                append_rows(session, account_id, [Change(ChangeKind.NEEDS_RELINK)], self._clock())
            row.status = AccountStatus.NEEDS_RELINK
            row.status_reason = reason[:64]
            # The access token dies with its grant; the refresh token is kept only so that
            # unlinking can still ask Google to revoke it.
            row.access_token_sealed = None
            row.access_expiry = None
            row.updated_at = self._clock()

    @staticmethod
    async def _row(session: AsyncSession, account_id: str) -> AccountRow:
        row = await session.get(AccountRow, account_id)
        if row is None:
            raise AccountNotLinkedError(account_id)
        return row
