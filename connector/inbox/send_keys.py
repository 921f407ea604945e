"""Idempotency-Key records for sends and draft creates, shared by every service process through
the database.

A client that retries `POST .../messages/send`, `POST .../drafts` or `POST .../drafts/{id}/send`
with the same `Idempotency-Key` must get the first answer, not a second message or draft, even
when the retry reaches another worker process or the service restarted in between (as in the
IETF httpapi Idempotency-Key draft):

- a record is claimed before the send (`pending`), completed with Gmail's answer (ids only:
  id, threadId, labelIds, and a draft's message ids), and deleted when the send failed, so that
  a retry may try again;
- a key reused for a different request (another body fingerprint) is refused (422);
- a retry while the first send is still running is told so (409) rather than sending twice;
- records expire after RECORD_TTL; a `pending` record older than PENDING_STALE belonged to a
  process that died mid-send and may be taken over.

Records hold no mail content. They belong to the account and go with it on unlink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import delete, exc, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import Field, SQLModel

from connector.clock import Clock
from connector.db import aware
from connector.ports import GmailJson

RECORD_TTL = timedelta(hours=24)
# Longer than a send can take (the Gmail client's 120 s timeout plus outcome resolution).
PENDING_STALE = timedelta(minutes=5)
_CLAIM_ATTEMPTS = 3


class SendKeyRow(SQLModel, table=True):
    __tablename__ = "inbox_send_key"

    actor_id: str = Field(primary_key=True, max_length=128)
    account_id: str = Field(primary_key=True, max_length=128, index=True)
    key: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(max_length=64)
    state: str = Field(max_length=16)
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class KeyState(StrEnum):
    PENDING = "pending"
    SENT = "sent"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # ours: send, then complete() or release()
    SENT = "sent"  # already sent: answer with `result`
    IN_PROGRESS = "in_progress"  # another request is sending with this key now
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    result: GmailJson | None = None


@dataclass(frozen=True, slots=True)
class SendKey:
    actor_id: str
    account_id: str
    key: str


class SendKeys(Protocol):
    async def claim(self, key: SendKey, fingerprint: str) -> Claim: ...

    async def complete(self, key: SendKey, result: GmailJson) -> None: ...

    async def release(self, key: SendKey) -> None: ...


def ids_only(result: GmailJson) -> GmailJson:
    """What a replay answers: the ids of a sent message, or of a draft and its message."""
    kept: GmailJson = {k: result[k] for k in ("id", "threadId", "labelIds") if k in result}
    message = result.get("message")
    if isinstance(message, dict):
        kept["message"] = ids_only(message)
    return kept


@dataclass(frozen=True, slots=True)
class KeyRecord:
    fingerprint: str
    state: str
    created_at: datetime
    result: GmailJson | None = None

    def judge(self, asked: str, now: datetime) -> Claim | None:
        """What this existing record means; None when it is dead and may be taken over."""
        age = now - aware(self.created_at)
        if age >= RECORD_TTL or (self.state == KeyState.PENDING and age >= PENDING_STALE):
            return None
        if self.fingerprint != asked:
            return Claim(ClaimOutcome.MISMATCH)
        if self.state == KeyState.SENT:
            return Claim(ClaimOutcome.SENT, dict(self.result or {}))
        return Claim(ClaimOutcome.IN_PROGRESS)


class SqlSendKeys:
    """The database-backed records (SQLite or PostgreSQL, the connector's own database)."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._t = SendKeyRow.__table__  # type: ignore[attr-defined]

    def _where(self, key: SendKey) -> Any:
        t = self._t
        return (
            (t.c.actor_id == key.actor_id)
            & (t.c.account_id == key.account_id)
            & (t.c.key == key.key)
        )

    async def claim(self, key: SendKey, fingerprint: str) -> Claim:
        for _ in range(_CLAIM_ATTEMPTS):
            now = self._clock()
            try:
                async with self._engine.begin() as conn:
                    row = (await conn.execute(select(self._t).where(self._where(key)))).first()
                    if row is None:
                        await conn.execute(sa.insert(self._t).values(
                            actor_id=key.actor_id, account_id=key.account_id, key=key.key,
                            fingerprint=fingerprint, state=KeyState.PENDING.value, result=None,
                            created_at=now,
                        ))  # fmt: skip
                        # keep the account's records bounded: drop its expired ones
                        await conn.execute(
                            delete(self._t).where(
                                (self._t.c.account_id == key.account_id)
                                & (self._t.c.created_at < now - RECORD_TTL)
                            )
                        )
                        return Claim(ClaimOutcome.CLAIMED)
                    existing = KeyRecord(row.fingerprint, row.state, row.created_at, row.result)
                    verdict = existing.judge(fingerprint, now)
                    if verdict is not None:
                        return verdict
                    # dead record: take it over unless someone else just did
                    taken = await conn.execute(
                        update(self._t)
                        .where(self._where(key) & (self._t.c.created_at == row.created_at))
                        .values(fingerprint=fingerprint, state=KeyState.PENDING.value,
                                result=None, created_at=now)
                    )  # fmt: skip
                    if taken.rowcount == 1:
                        return Claim(ClaimOutcome.CLAIMED)
            except exc.IntegrityError:
                pass  # a concurrent claim inserted first: read what it is
        return Claim(ClaimOutcome.IN_PROGRESS)

    async def complete(self, key: SendKey, result: GmailJson) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(self._t)
                .where(self._where(key))
                .values(state=KeyState.SENT.value, result=ids_only(result))
            )

    async def release(self, key: SendKey) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(self._t).where(self._where(key) & (self._t.c.state == KeyState.PENDING))
            )


class SendKeysPurger:
    """Deletes an account's Idempotency-Key records inside the unlink transaction."""

    name = "inbox"

    async def purge(self, session: AsyncSession, account_id: str) -> Mapping[str, int]:
        t = SendKeyRow.__table__  # type: ignore[attr-defined]
        result = await session.execute(delete(t).where(t.c.account_id == account_id))
        return {t.name: int(getattr(result, "rowcount", 0) or 0)}
