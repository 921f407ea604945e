"""Linked accounts in the database: link/relink, owner and scope checks, the sync cursor.

Secrets go through the vault; the store never returns or logs a token. The credential side
(`CredentialStore` for the token source) is `connector.accounts.credential_store`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from audit.hashing import keyed_hash
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, AccountStatus, ChangeRow, SyncStateRow
from connector.accounts.scopes import Feature, check_feature, features_granted
from connector.accounts.vault import SecretKind, Vault
from connector.clock import Clock, system_clock
from connector.db import aware, one_statement, read_sessions, session_factory
from connector.errors import AccountConflictError, AccountNotLinkedError
from connector.grouped import Grouped


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here was UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """What the owner may see about a linked account. No tokens."""

    id: str
    owner_user_id: str
    email: str | None  # the linked Google address (decrypted for its owner)
    status: AccountStatus
    status_reason: str | None
    scopes: frozenset[str]
    linked_at: datetime

    @property
    def features(self) -> frozenset[Feature]:
        return features_granted(self.scopes)

    def __repr__(self) -> str:  # the address is personal data: keep it out of logs
        return (
            f"LinkedAccount(id={self.id!r}, status={self.status.value!r}, "
            f"features={sorted(self.features)})"
        )


@dataclass(frozen=True, slots=True)
class NewTokens:
    """Tokens from a code exchange, handed to `save_link`."""

    refresh_token: str | None
    access_token: str
    expiry: datetime | None
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"NewTokens(expiry={self.expiry!r}, scopes={sorted(self.scopes)})"


# The accounts table as Core sees it, for reads made for every access (no ORM object).
ACCOUNTS = AccountRow.__table__  # type: ignore[attr-defined]
# Asked for every decision about an account, by many tasks at once: one statement for the
# owners asked for together (`Grouped`), built once (see `connector.db.first_row`); expanding,
# so one cache entry whatever the count.
_OWNERS_OF = sa.select(ACCOUNTS.c.id, ACCOUNTS.c.owner_user_id).where(
    ACCOUNTS.c.id.in_(sa.bindparam("account_ids", expanding=True))
)

BeforeCommit = Callable[[str, bool], Awaitable[None]]  # (account_id, created) -> None


class AccountStore:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: Vault,
        *,
        hash_key: bytes,
        clock: Clock = system_clock,
    ) -> None:
        if not hash_key:
            raise ValueError("AccountStore needs a non-empty hash key (CONNECTOR_AUDIT_HASH_KEY)")
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._reads = read_sessions(engine)
        self._statement = one_statement(engine)
        self._vault = vault
        self._hash_key = hash_key
        self._clock = clock
        self._owners: Grouped[str, str | None] = Grouped(self._owners_of, missing=None)

    def __repr__(self) -> str:
        return "AccountStore()"

    def email_hash(self, email: str) -> str:
        return keyed_hash(self._hash_key, email.strip().lower())

    def _view(self, row: AccountRow) -> LinkedAccount:
        email = (
            self._vault.open(row.email_sealed, owner_id=row.id, kind=SecretKind.EMAIL)
            if row.email_sealed
            else None
        )
        return LinkedAccount(
            id=row.id,
            owner_user_id=row.owner_user_id,
            email=email,
            status=AccountStatus(row.status),
            status_reason=row.status_reason,
            scopes=frozenset(row.scopes),
            linked_at=aware(row.linked_at),
        )

    async def get(self, account_id: str) -> LinkedAccount:
        async with self._reads() as session:
            row = await session.get(AccountRow, account_id)
        if row is None:
            raise AccountNotLinkedError(account_id)
        return self._view(row)

    async def list_for_owner(self, owner_user_id: str) -> list[LinkedAccount]:
        query = (
            select(AccountRow)
            .where(col(AccountRow.owner_user_id) == owner_user_id)
            .order_by(col(AccountRow.linked_at))
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).scalars().all()
        return [self._view(r) for r in rows]

    async def active_ids(self, email: str | None = None) -> list[str]:
        """Accounts the connector may sync (status active), oldest link first; with `email`,
        those linked to that Google address (one address may be linked by several users)."""
        query = select(AccountRow.id).where(col(AccountRow.status) == AccountStatus.ACTIVE)
        if email is not None:
            query = query.where(col(AccountRow.email_hash) == self.email_hash(email))
        async with self._reads() as session:
            rows = await session.execute(query.order_by(col(AccountRow.linked_at)))
        return list(rows.scalars().all())

    async def active_by_address(self, emails: Collection[str]) -> dict[str, list[str]]:
        """`active_ids(email)` for each of `emails` in one query: the address's active
        accounts, oldest link first (addresses with none are left out)."""
        by_hash = {self.email_hash(email): email for email in emails}
        if not by_hash:
            return {}
        query = (
            select(AccountRow.id, AccountRow.email_hash)
            .where(col(AccountRow.status) == AccountStatus.ACTIVE)
            .where(col(AccountRow.email_hash).in_(by_hash))
            .order_by(col(AccountRow.linked_at))
        )
        found: dict[str, list[str]] = {}
        async with self._reads() as session:
            for account_id, email_hash in (await session.execute(query)).all():
                found.setdefault(by_hash[email_hash], []).append(account_id)
        return found

    async def owner_of(self, account_id: str) -> str | None:
        """`connector.policy.ports.AccountOwners`: the platform user who linked the account,
        read when asked (grouped with the owners asked for at the same time, never cached)."""
        return await self._owners(account_id)

    async def _owners_of(self, account_ids: Sequence[str]) -> dict[str, str | None]:
        async with self._statement() as conn:
            rows = await conn.execute(_OWNERS_OF, {"account_ids": list(account_ids)})
            return {row.id: row.owner_user_id for row in rows}

    async def require_feature(self, account_id: str, feature: Feature) -> None:
        """Raise `ScopeNotGrantedError` (saying how to grant it) unless `feature` is on."""
        account = await self.get(account_id)
        check_feature(account_id, feature, account.scopes)

    async def save_link(
        self,
        *,
        owner_user_id: str,
        account_id: str | None,
        email: str | None,
        tokens: NewTokens,
        before_commit: BeforeCommit,
    ) -> tuple[str, bool]:
        """Create or update the account for a completed link; returns (account id, created).

        `before_commit` runs inside the transaction (it writes the audit events): if it raises,
        nothing is stored.
        """
        now = self._clock()
        email_hash = self.email_hash(email) if email else None
        async with self._sessions() as session, session.begin():
            row = await self._find(session, owner_user_id, account_id, email_hash)
            created = row is None
            if row is None:
                if tokens.refresh_token is None:
                    raise AccountConflictError(
                        "Google returned no refresh token; link again and approve offline access"
                    )
                row = AccountRow(
                    id=uuid.uuid4().hex,
                    owner_user_id=owner_user_id,
                    status=AccountStatus.ACTIVE,
                    scopes=[],
                    refresh_token_sealed="",
                    linked_at=now,
                    updated_at=now,
                )
            before = None if created else features_granted(frozenset(row.scopes))
            self._apply(row, email, email_hash, tokens, now)
            session.add(row)
            await session.flush()
            if before is not None and before != features_granted(frozenset(row.scopes)):
                # a relink granted other features: the account's change feed says so
                session.add(ChangeRow(account_id=row.id, kind=ChangeKind.SCOPES_CHANGED.value,
                                      label_ids=[], message_ids=[], created_at=now))  # fmt: skip
            await before_commit(row.id, created)
        return row.id, created

    async def _find(
        self,
        session: AsyncSession,
        owner_user_id: str,
        account_id: str | None,
        email_hash: str | None,
    ) -> AccountRow | None:
        if account_id is not None:
            row = await session.get(AccountRow, account_id)
            if row is None:
                raise AccountNotLinkedError(account_id)
            if row.owner_user_id != owner_user_id:
                raise AccountConflictError(f"account {account_id} belongs to another user")
            if email_hash and row.email_hash and row.email_hash != email_hash:
                raise AccountConflictError(
                    f"account {account_id} is linked to a different Google account; "
                    "sign in with that account, or unlink it and link the new one"
                )
            return row
        if email_hash is None:
            return None
        query = select(AccountRow).where(
            col(AccountRow.owner_user_id) == owner_user_id,
            col(AccountRow.email_hash) == email_hash,
        )
        return (await session.execute(query)).scalars().first()

    def _apply(
        self,
        row: AccountRow,
        email: str | None,
        email_hash: str | None,
        tokens: NewTokens,
        now: datetime,
    ) -> None:
        seal = self._vault.seal
        if email:
            row.email_hash = email_hash
            row.email_sealed = seal(email, owner_id=row.id, kind=SecretKind.EMAIL)
        if tokens.refresh_token is not None:
            row.refresh_token_sealed = seal(
                tokens.refresh_token, owner_id=row.id, kind=SecretKind.REFRESH_TOKEN
            )
        row.access_token_sealed = seal(
            tokens.access_token, owner_id=row.id, kind=SecretKind.ACCESS_TOKEN
        )
        row.access_expiry = tokens.expiry
        row.scopes = sorted(tokens.scopes)
        row.status = AccountStatus.ACTIVE
        row.status_reason = None
        row.updated_at = now

    # -- cached mail state -----------------------------------------------------------------

    async def get_history_id(self, account_id: str) -> str | None:
        async with self._reads() as session:
            row = await session.get(SyncStateRow, account_id)
        return row.history_id if row is not None else None

    async def set_history_id(self, account_id: str, history_id: str | None) -> None:
        async with self._sessions() as session, session.begin():
            if await session.get(AccountRow, account_id) is None:
                raise AccountNotLinkedError(account_id)
            row = await session.get(SyncStateRow, account_id)
            if row is None:
                row = SyncStateRow(account_id=account_id, updated_at=self._clock())
            row.history_id = history_id
            row.updated_at = self._clock()
            session.add(row)
