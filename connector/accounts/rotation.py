"""Re-encrypt every sealed value under the vault's current key (key rotation).

Rotation is: put a new key first in the ring (it becomes current; old keys stay so existing
ciphertexts remain readable), then run this (`connector vault rotate`). Rows are re-sealed in
batches, each in its own transaction, so a large table does not hold one long lock; a crash
midway is harmless because every value carries its own key id. When the report says nothing is
left under an old key, that key can be removed from the ring.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from audit.vocab import Action
from connector.accounts import events
from connector.accounts.models import AccountRow, LinkStateRow
from connector.accounts.vault import SecretKind, Vault
from connector.db import session_factory
from connector.policy.authority import Authority
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

BATCH = 200
_ACCOUNT_FIELDS = (
    ("refresh_token_sealed", SecretKind.REFRESH_TOKEN),
    ("access_token_sealed", SecretKind.ACCESS_TOKEN),
    ("email_sealed", SecretKind.EMAIL),
)


@dataclass(frozen=True)
class RotationReport:
    current_key_id: str
    resealed: int  # values re-encrypted by this run
    by_key_before: dict[str, int]  # key id -> sealed values found under it


async def key_usage(engine: AsyncEngine, vault: Vault) -> Counter[str]:
    """How many sealed values each key id protects (for `connector vault status`)."""
    usage: Counter[str] = Counter()
    sessions = session_factory(engine)
    async with sessions() as session:
        for row in (await session.execute(select(AccountRow))).scalars():
            for name, _ in _ACCOUNT_FIELDS:
                value = getattr(row, name)
                if value:
                    usage[vault.key_id_of(value)] += 1
        for state in (await session.execute(select(LinkStateRow))).scalars():
            usage[vault.key_id_of(state.code_verifier_sealed)] += 1
    return usage


async def rotate(engine: AsyncEngine, vault: Vault, authority: Authority) -> RotationReport:
    change = Change(events.SYSTEM, Operation.VAULT_ROTATE, Action.VAULT_KEY_ROTATED)
    await authority.authorize(change)
    before = await key_usage(engine, vault)
    sessions = session_factory(engine)
    resealed = await _rotate_accounts(sessions, vault) + await _rotate_states(sessions, vault)
    await authority.record(change, reasons=(f"current:{vault.current_key_id.lower()}",))
    return RotationReport(vault.current_key_id, resealed, dict(before))


async def _rotate_accounts(sessions: async_sessionmaker[AsyncSession], vault: Vault) -> int:
    count, after = 0, ""
    while True:
        async with sessions() as session, session.begin():
            query = (
                select(AccountRow)
                .where(col(AccountRow.id) > after)
                .order_by(col(AccountRow.id))
                .limit(BATCH)
            )
            rows = (await session.execute(query)).scalars().all()
            for row in rows:
                for name, kind in _ACCOUNT_FIELDS:
                    value = getattr(row, name)
                    if value and vault.needs_reseal(value):
                        setattr(row, name, vault.reseal(value, owner_id=row.id, kind=kind))
                        count += 1
        if len(rows) < BATCH:
            return count
        after = rows[-1].id


async def _rotate_states(sessions: async_sessionmaker[AsyncSession], vault: Vault) -> int:
    # Link states live ten minutes; there are few, so one transaction is enough.
    count = 0
    async with sessions() as session, session.begin():
        for row in (await session.execute(select(LinkStateRow))).scalars():
            if vault.needs_reseal(row.code_verifier_sealed):
                row.code_verifier_sealed = vault.reseal(
                    row.code_verifier_sealed, owner_id=row.state_hash, kind=SecretKind.CODE_VERIFIER
                )
                count += 1
    return count
