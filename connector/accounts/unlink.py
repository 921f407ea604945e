"""Unlink and delete-my-data: revoke at Google, purge every row for the account, receipt.

Order: revoke first (retried with backoff), then delete the account's rows from every table in
`ACCOUNT_TABLES` (and any registered `AccountPurger`s) in one transaction that also appends the
audit events, so no purge goes unrecorded. A failed revocation does not keep the token: the user
asked for deletion, so the token is deleted anyway, the failure is audited as
ACCOUNT_TOKEN_REVOKE_FAILED and stated in the receipt with what to do. Audit events are kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from audit.event import Actor, AppendReceipt
from audit.receipts import sign_receipt
from audit.vocab import Action, ActorKind
from connector.accounts import events
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.endpoints import OAuthEndpoints, RevokeOutcome
from connector.accounts.models import ACCOUNT_TABLES, AccountRow, AccountStatus
from connector.accounts.sync_store import append_rows
from connector.accounts.vault import SecretKind, Vault
from connector.clock import Clock, system_clock
from connector.db import session_factory
from connector.errors import AccessDenied, AccountNotLinkedError, VaultError
from connector.policy import recorder
from connector.policy.authority import Authority
from connector.policy.vocab import Operation

MANUAL_REVOKE_URL = "https://myaccount.google.com/permissions"
RECEIPT_TYPE = "connector.deletion_receipt.v1"


class AccountPurger(Protocol):
    """Another component's per-account data (e.g. the policy layer's consents), purged too."""

    name: str

    async def purge(self, session: AsyncSession, account_id: str) -> Mapping[str, int]:
        """Delete the account's rows inside `session`'s transaction; rows deleted per table."""
        ...


@dataclass(frozen=True)
class DeletionReceipt:
    """What unlinking deleted, when, and whether Google revoked the grant."""

    account_id: str
    owner_user_id: str
    deleted_at: datetime
    revocation: RevokeOutcome
    rows_deleted: Mapping[str, int]  # table -> rows
    status: AccountStatus = AccountStatus.UNLINKED
    notes: tuple[str, ...] = field(default=())
    # The audit event that records the deletion (its place in the chain), and the checkpoint
    # key's signature over the claims (`audit.receipts`), so the receipt can be checked offline
    # with `audit verify-receipt`.
    audit_event: AppendReceipt | None = None
    signature: Mapping[str, str] | None = None

    def claims(self) -> dict[str, Any]:
        """Everything the signature covers."""
        claims: dict[str, Any] = {
            "type": RECEIPT_TYPE,
            "account_id": self.account_id,
            "status": self.status.value,
            "deleted_at": self.deleted_at.isoformat(),
            "revocation": self.revocation.value,
            "rows_deleted": dict(self.rows_deleted),
            "notes": list(self.notes),
        }
        if self.audit_event is not None:
            event = self.audit_event
            claims["audit_event"] = {"seq": event.seq, "hash": event.hash, "id": event.event_id}
        return claims

    def as_dict(self) -> dict[str, Any]:
        document = self.claims()
        if self.signature is not None:
            document["signature"] = dict(self.signature)
        return document

    def signed(self, key: Ed25519PrivateKey) -> DeletionReceipt:
        return replace(self, signature=sign_receipt(key, self.claims())["signature"])



# Work that needs the account's grant, done after the unlink is allowed and before the token is
# revoked; it must not raise (a failure to tidy up at Google never blocks an unlink).
BeforeRevoke = Callable[[str], Awaitable[None]]


class Unlinker:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: Vault,
        endpoints: OAuthEndpoints,
        authority: Authority,
        *,
        purgers: Sequence[AccountPurger] = (),
        clock: Clock = system_clock,
        signing_key: Ed25519PrivateKey | None = None,
        before_revoke: Sequence[BeforeRevoke] = (),
    ) -> None:
        # `signing_key`: the audit checkpoint key, which signs the deletion receipts.
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._vault = vault
        self._endpoints = endpoints
        self._authority = authority
        self._purgers = tuple(purgers)
        self._clock = clock
        self._signing_key = signing_key
        self._before_revoke = tuple(before_revoke)

    def __repr__(self) -> str:
        return f"Unlinker(purgers={[p.name for p in self._purgers]})"

    async def unlink(self, account_id: str, *, user_id: str) -> DeletionReceipt:
        """Revoke, purge and audit; only the owner may unlink (others get AccountNotLinked, and
        their attempt is recorded as a refusal)."""
        change = events.change(
            user_id, Action.ACCOUNT_UNLINKED, account_id, Operation.ACCOUNT_UNLINK
        )
        return await self._unlink(change, account_id)

    async def unlink_as_system(self, account_id: str, *, actor: Actor) -> DeletionReceipt:
        """The same unlink for the connector itself (retention of a dormant account), allowed
        to SYSTEM actors only by the policy's own grant; the receipt names the owner."""
        if actor.kind is not ActorKind.SYSTEM:
            raise ValueError("unlink_as_system is for SYSTEM actors")
        system = events.change(None, Action.ACCOUNT_UNLINKED, account_id, Operation.ACCOUNT_UNLINK)
        return await self._unlink(replace(system, actor=actor), account_id)

    async def _unlink(self, change: recorder.Change, account_id: str) -> DeletionReceipt:
        async with self._sessions() as session:
            row = await session.get(AccountRow, account_id)
        if row is None:
            raise AccountNotLinkedError(account_id)
        try:
            await self._authority.authorize(change)  # a refusal is recorded (high severity)
        except AccessDenied:
            raise AccountNotLinkedError(account_id) from None  # no hint that it exists
        for hook in self._before_revoke:  # e.g. stop Gmail push while the token still works
            await hook(account_id)
        revocation = await self._revoke(row)
        notes: list[str] = []
        if revocation is RevokeOutcome.FAILED:
            notes.append(
                "Google could not be reached to revoke the connector's access; the tokens were "
                f"deleted here anyway. Remove the app's access at {MANUAL_REVOKE_URL}."
            )
            failed = replace(change, action=Action.ACCOUNT_TOKEN_REVOKE_FAILED)
            await self._authority.record(failed, reasons=("revoke_failed",), failed=True)
        counts: dict[str, int] = {}
        async with self._sessions() as session, session.begin():
            for table, column in ACCOUNT_TABLES:
                name = str(table.__tablename__)
                result = await session.execute(
                    delete(table).where(getattr(table, column) == account_id)
                )
                counts[name] = int(getattr(result, "rowcount", 0) or 0)
            for purger in self._purgers:
                for name, n in (await purger.purge(session, account_id)).items():
                    counts[name] = counts.get(name, 0) + n
            # The feed's one row that outlives the purge (account id, kind, time; no Gmail
            # data): open streams and the webhook outbox deliver it after the account is gone.
            append_rows(session, account_id, [Change(ChangeKind.UNLINKED)], self._clock())
            recorded = await self._authority.record(
                change, reasons=(f"revocation:{revocation.value}",)
            )
        receipt = DeletionReceipt(
            account_id=account_id,
            owner_user_id=row.owner_user_id,
            deleted_at=self._clock(),
            revocation=revocation,
            rows_deleted=counts,
            notes=tuple(notes),
            audit_event=recorded,
        )
        return receipt if self._signing_key is None else receipt.signed(self._signing_key)

    async def _revoke(self, row: AccountRow) -> RevokeOutcome:
        # Revoking the refresh token ends the whole grant (its access tokens too).
        try:
            token = self._vault.open(
                row.refresh_token_sealed, owner_id=row.id, kind=SecretKind.REFRESH_TOKEN
            )
        except VaultError:
            return RevokeOutcome.FAILED  # unreadable token: say so rather than pretend
        if not token:
            return RevokeOutcome.NOT_ATTEMPTED
        return await self._endpoints.revoke(token)
