"""Retention: what the connector stops keeping, on a schedule, each run decided and audited.

One run, at the injected clock's `now`:

- consents past their expiry, or revoked, leave the live table `policy_consent`;
- approved access requests past their expiry leave `policy_access_request`, unless under legal
  hold (a held case is kept until the hold is lifted);
- an account with no activity (no link or token refresh, no sync) for `dormant_after` gets one
  DORMANT_NOTICE in its change feed, so the platform can tell the user before anything happens.

The audit log keeps the history of every consent and approval removed. The run is authorized
for the connector itself (SYSTEM, `Operation.RETENTION_RUN`) and recorded as `retention.run`
inside the same transaction as the deletes, so no removal goes unrecorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from audit.event import Actor
from audit.vocab import Action, ActorKind
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow, SyncStateRow
from connector.accounts.store import as_utc
from connector.clock import Clock, system_clock
from connector.db import session_factory
from connector.policy.authority import Authority
from connector.policy.facts import ApprovalStatus
from connector.policy.models import AccessRequestRow, ConsentRow, table
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

SYSTEM = Actor(ActorKind.SYSTEM, "connector.retention")
DEFAULT_DORMANT_AFTER = timedelta(days=365)
# The advisory-lock key of retention runs (PostgreSQL): "retentio" as a 64-bit integer.
RETENTION_LOCK_KEY = int.from_bytes(b"retentio", "big") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run removed or announced (counts and account ids only)."""

    ran_at: datetime
    consents_removed: int
    approvals_removed: int
    dormant_noticed: tuple[str, ...]

    def reasons(self) -> tuple[str, ...]:
        return (
            f"consents_removed:{self.consents_removed}",
            f"approvals_removed:{self.approvals_removed}",
            f"dormant_noticed:{len(self.dormant_noticed)}",
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "ran_at": self.ran_at.isoformat(),
            "consents_removed": self.consents_removed,
            "approvals_removed": self.approvals_removed,
            "dormant_noticed": list(self.dormant_noticed),
        }


class Retention:
    def __init__(
        self,
        engine: AsyncEngine,
        authority: Authority,
        *,
        dormant_after: timedelta = DEFAULT_DORMANT_AFTER,
        clock: Clock = system_clock,
    ) -> None:
        if dormant_after <= timedelta(0):
            raise ValueError("dormant_after must be positive")
        self._sessions = session_factory(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._authority = authority
        self._dormant_after = dormant_after
        self._clock = clock

    async def run(self) -> RetentionReport | None:
        """One retention run; raises AccessDenied (recorded) if the policy refuses it. None,
        and nothing done or recorded, while another instance's run holds the lock."""
        change = Change(SYSTEM, Operation.RETENTION_RUN, Action.RETENTION_RUN)
        await self._authority.authorize(change)
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if self._postgres and not await _lock_taken(session):
                return None
            consents = await _remove_consents(session, now)
            approvals = await _remove_approvals(session, now)
            noticed = await self._notice_dormant(session, now)
            report = RetentionReport(now, consents, approvals, noticed)
            await self._authority.record(change, reasons=report.reasons())
        return report

    async def _notice_dormant(self, session: AsyncSession, now: datetime) -> tuple[str, ...]:
        cutoff = now - self._dormant_after
        accounts, syncs = table(AccountRow), table(SyncStateRow)
        last_sync = (
            select(syncs.c.updated_at).where(syncs.c.account_id == accounts.c.id).scalar_subquery()
        )
        candidates = select(accounts.c.id, accounts.c.updated_at, last_sync.label("synced")).where(
            accounts.c.updated_at < cutoff, or_(last_sync.is_(None), last_sync < cutoff)
        )
        noticed: list[str] = []
        for account_id, updated_at, synced in (await session.execute(candidates)).all():
            last_active = max(as_utc(t) or now for t in (updated_at, synced) if t is not None)
            if await _noticed_since(session, account_id, last_active):
                continue  # one notice per dormant spell
            session.add(
                ChangeRow(
                    account_id=account_id, kind=ChangeKind.DORMANT_NOTICE.value, label_ids=[],
                    message_ids=[], created_at=now,
                )
            )  # fmt: skip
            noticed.append(account_id)
        return tuple(sorted(noticed))


async def _lock_taken(session: AsyncSession) -> bool:
    """On PostgreSQL, the run's transaction holds an advisory lock (released at commit); a
    second instance finds it taken. SQLite serializes writers itself (one file, one writer)."""
    query = text("SELECT pg_try_advisory_xact_lock(:key)")
    return bool((await session.execute(query, {"key": RETENTION_LOCK_KEY})).scalar_one())


async def _remove_consents(session: AsyncSession, now: datetime) -> int:
    rows = table(ConsentRow)
    gone = or_(rows.c.expires_at <= now, rows.c.revoked_at.is_not(None))
    result = await session.execute(delete(rows).where(gone))
    return int(getattr(result, "rowcount", 0) or 0)


async def _remove_approvals(session: AsyncSession, now: datetime) -> int:
    rows = table(AccessRequestRow)
    expired = and_(
        rows.c.status == ApprovalStatus.APPROVED.value,
        rows.c.expires_at.is_not(None),
        rows.c.expires_at <= now,
        rows.c.legal_hold.is_(False),
    )
    result = await session.execute(delete(rows).where(expired))
    return int(getattr(result, "rowcount", 0) or 0)


async def _noticed_since(session: AsyncSession, account_id: str, since: datetime) -> bool:
    changes = table(ChangeRow)
    query = select(func.count()).where(
        changes.c.account_id == account_id,
        changes.c.kind == ChangeKind.DORMANT_NOTICE.value,
        changes.c.created_at >= since,
    )
    return bool((await session.execute(query)).scalar_one())
