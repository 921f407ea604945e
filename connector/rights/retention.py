"""Retention: what the connector stops keeping, on a schedule, each run decided and audited.

One run, at the injected clock's `now`:

- consents past their expiry, or revoked, leave the live table `policy_consent`;
- approved access requests past their expiry leave `policy_access_request`, unless under legal
  hold (a held case is kept until the hold is lifted);
- an account with no activity (no link or token refresh, no sync) for `dormant_after` gets one
  DORMANT_NOTICE in its change feed, so the platform can tell the user before anything happens;
- an account still inactive `dormant_notice` after that notice is unlinked by the connector
  itself (`Unlinker.unlink_as_system`: revoked at Google, purged, its UNLINKED feed row and
  `account.unlinked` recorded by the unlinker, a signed receipt in the run's report). Activity
  in between cancels it: the notice predates the last activity and no longer counts;
- with an `archiver` (`connector.rights.audit_archive`), the audit log's ended periods are
  sealed into signed segments and segments past their retention dropped behind tombstones.

The audit log keeps the history of every consent and approval removed. The run is authorized
for the connector itself (SYSTEM, `Operation.RETENTION_RUN`) and recorded as `retention.run`
inside the same transaction as the deletes, so no removal goes unrecorded (with the segments
sealed and dropped as its resources; failed, `segment_refused`, if the archiver refused). On
PostgreSQL the whole run, unlinks and archiving included, holds an advisory lock, so two
instances never run at once; `connector.rights.jobs` also takes a lease for each interval.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from audit.event import Actor
from audit.vocab import Action, ActorKind
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow, SyncStateRow
from connector.accounts.store import as_utc
from connector.accounts.unlink import DeletionReceipt, Unlinker
from connector.clock import Clock, system_clock
from connector.db import session_factory
from connector.errors import AccountNotLinkedError
from connector.policy.authority import Authority
from connector.policy.facts import ApprovalStatus
from connector.policy.models import AccessRequestRow, ConsentRow, table
from connector.policy.recorder import Change
from connector.policy.vocab import Operation
from connector.rights.audit_archive import AuditArchiver, SegmentsReport

SYSTEM = Actor(ActorKind.SYSTEM, "connector.retention")
DEFAULT_DORMANT_AFTER = timedelta(days=365)
DEFAULT_DORMANT_NOTICE = timedelta(days=30)
# The advisory-lock key of retention runs (PostgreSQL): "retentio" as a 64-bit integer.
RETENTION_LOCK_KEY = int.from_bytes(b"retentio", "big") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run removed or announced (counts and account ids only)."""

    ran_at: datetime
    consents_removed: int
    approvals_removed: int
    dormant_noticed: tuple[str, ...]
    dormant_unlinked: tuple[DeletionReceipt, ...] = ()
    audit_segments: SegmentsReport | None = None  # None: the audit log is not archived

    def reasons(self) -> tuple[str, ...]:
        segments = () if self.audit_segments is None else self.audit_segments.reasons()
        return (
            f"consents_removed:{self.consents_removed}",
            f"approvals_removed:{self.approvals_removed}",
            f"dormant_noticed:{len(self.dormant_noticed)}",
            f"dormant_unlinked:{len(self.dormant_unlinked)}",
            *segments,
        )

    def as_dict(self) -> dict[str, object]:
        segments = self.audit_segments
        return {
            "ran_at": self.ran_at.isoformat(),
            "consents_removed": self.consents_removed,
            "approvals_removed": self.approvals_removed,
            "dormant_noticed": list(self.dormant_noticed),
            "dormant_unlinked": [r.as_dict() for r in self.dormant_unlinked],
            "audit_segments": None if segments is None else segments.as_dict(),
        }


@dataclass(eq=False)
class Retention:
    engine: AsyncEngine
    authority: Authority
    _: KW_ONLY
    dormant_after: timedelta = DEFAULT_DORMANT_AFTER
    dormant_notice: timedelta = DEFAULT_DORMANT_NOTICE
    # None: dormant accounts are noticed, never unlinked (accounts preset by the deployment, or
    # a command line without the OAuth client to revoke with).
    unlinker: Unlinker | None = None
    archiver: AuditArchiver | None = None
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if self.dormant_after <= timedelta(0) or self.dormant_notice <= timedelta(0):
            raise ValueError("dormant_after and dormant_notice must be positive")
        self._sessions = session_factory(self.engine)
        self._postgres = self.engine.dialect.name == "postgresql"

    async def run(self) -> RetentionReport | None:
        """One retention run; raises AccessDenied (recorded) if the policy refuses it. None,
        and nothing done or recorded, while another instance's run holds the lock."""
        change = Change(SYSTEM, Operation.RETENTION_RUN, Action.RETENTION_RUN)
        await self.authority.authorize(change)
        if not self._postgres:
            return await self._run(change)
        async with self.engine.connect() as lock:
            if not await _lock_taken(lock):
                return None
            try:
                return await self._run(change)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:key)"), _KEY)
                await lock.commit()

    async def _run(self, change: Change) -> RetentionReport:
        now = self.clock()
        unlinked = await self._unlink_due(now)
        segments = None if self.archiver is None else await self.archiver.run(now)
        refused = None if segments is None else segments.error_code
        if segments is not None:
            change = replace(change, resources=segments.resources())
        async with self._sessions() as session, session.begin():
            consents = await _remove_consents(session, now)
            approvals = await _remove_approvals(session, now)
            noticed = await self._notice_dormant(session, now)
            report = RetentionReport(now, consents, approvals, noticed, unlinked, segments)
            await self.authority.record(
                change, reasons=report.reasons(), failed=refused is not None, error_code=refused
            )
        return report

    async def _unlink_due(self, now: datetime) -> tuple[DeletionReceipt, ...]:
        """Unlink each account noticed at least `dormant_notice` ago and inactive since."""
        if self.unlinker is None:
            return ()
        async with self._sessions() as session:
            until = now - self.dormant_notice
            due = [
                account_id
                for account_id, last_active in await self._dormant(session, now)
                if await _noticed_since(session, account_id, last_active, until=until)
            ]
        receipts: list[DeletionReceipt] = []
        for account_id in sorted(due):
            try:
                receipts.append(await self.unlinker.unlink_as_system(account_id, actor=SYSTEM))
            except AccountNotLinkedError:
                continue  # unlinked by its owner meanwhile
        return tuple(receipts)

    async def _dormant(self, session: AsyncSession, now: datetime) -> list[tuple[str, datetime]]:
        """Accounts inactive for `dormant_after`, with the time of their last activity."""
        cutoff = now - self.dormant_after
        accounts, syncs = table(AccountRow), table(SyncStateRow)
        last_sync = (
            select(syncs.c.updated_at).where(syncs.c.account_id == accounts.c.id).scalar_subquery()
        )
        candidates = select(accounts.c.id, accounts.c.updated_at, last_sync.label("synced")).where(
            accounts.c.updated_at < cutoff, or_(last_sync.is_(None), last_sync < cutoff)
        )
        return [
            (account_id, max(as_utc(t) or now for t in (updated_at, synced) if t is not None))
            for account_id, updated_at, synced in (await session.execute(candidates)).all()
        ]

    async def _notice_dormant(self, session: AsyncSession, now: datetime) -> tuple[str, ...]:
        noticed: list[str] = []
        for account_id, last_active in await self._dormant(session, now):
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


_KEY = {"key": RETENTION_LOCK_KEY}


async def _lock_taken(lock: AsyncConnection) -> bool:
    """On PostgreSQL, the run holds a session advisory lock on its own connection (unlocked at
    the end); a second instance finds it taken. SQLite serializes writers itself."""
    query = text("SELECT pg_try_advisory_lock(:key)")
    taken = bool((await lock.execute(query, _KEY)).scalar_one())
    await lock.commit()  # the lock is the session's, not the transaction's
    return taken


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


async def _noticed_since(
    session: AsyncSession, account_id: str, since: datetime, *, until: datetime | None = None
) -> bool:
    """A notice given at or after `since` (and, with `until`, no later than it)."""
    changes = table(ChangeRow)
    query = select(func.count()).where(
        changes.c.account_id == account_id,
        changes.c.kind == ChangeKind.DORMANT_NOTICE.value,
        changes.c.created_at >= since,
    )
    if until is not None:
        query = query.where(changes.c.created_at <= until)
    return bool((await session.execute(query)).scalar_one())
