"""Sync one linked account: Gmail history → change feed, through the gate, durably.

Every Gmail read is a plan run by the gate as the connector itself (actor SERVICE, purpose
`user_feature`: the `service.owner_features` grant), so sync is decided and audited like any
other access. One run:

- no cursor yet: read the profile's historyId as the baseline (nothing to report before it);
- otherwise `history.list` from the cursor; each entry becomes change events (`changes`);
- a stale cursor (Gmail's 404) triggers a bounded re-scan: the newest `resync_limit` message
  ids and the profile's historyId, reported as one `resync` event, so the platform re-reads
  instead of the gap being skipped silently;
- an entry that does not parse fails the run (the cursor stays, the entry is tried again next
  run) until it has failed `quarantine_after` times: then it is quarantined, reported as an
  `entry_quarantined` event, and passed.

The events and the new cursor are written in one transaction (`SyncStore.commit`); a failed
run writes nothing but its failure count, so no change is lost or reported twice.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from enum import StrEnum

from audit.event import Actor
from audit.vocab import ActorKind, Purpose
from connector.accounts.changes import Change, entry_changes, quarantined, resync
from connector.accounts.sync_store import SyncState, SyncStore
from connector.errors import HistoryEntryError
from connector.gmail.errors import NotFoundError
from connector.logs import get_logger
from connector.policy import plans
from connector.policy.access import AccessContext
from connector.policy.gate import Gate
from connector.ports import GmailJson

log = get_logger(__name__)
SYNC_ACTOR = Actor(ActorKind.SERVICE, "connector-sync")
RESYNC_LIMIT = 500  # message ids a re-scan reports (one messages.list page)
QUARANTINE_AFTER = 3  # failed runs on one history entry before it is quarantined


class SyncOutcome(StrEnum):
    BASELINE = "baseline"  # first run: the cursor was set, nothing reported
    SYNCED = "synced"
    RESYNCED = "resynced"  # the cursor was stale: a re-scan was reported


@dataclass(frozen=True, slots=True)
class SyncReport:
    outcome: SyncOutcome
    history_id: str
    changes: int
    quarantined: tuple[str, ...] = ()


@dataclass(eq=False)
class MailSync:
    gate: Gate
    store: SyncStore
    _: KW_ONLY
    resync_limit: int = RESYNC_LIMIT
    quarantine_after: int = QUARANTINE_AFTER

    def _ctx(self, request_id: str | None) -> AccessContext:
        return AccessContext(SYNC_ACTOR, Purpose.USER_FEATURE, request_id=request_id)

    async def sync(
        self, account_id: str, *, state: SyncState | None = None, request_id: str | None = None
    ) -> SyncReport:
        """One run; on any failure the failure is counted and the error re-raised. `state`:
        the account's sync state as read while this run already held the account's lock (a
        batch reads its accounts' states in one statement); else it is read here."""
        ctx = self._ctx(request_id)
        try:
            state = state or await self.store.state(account_id)
            if state.history_id is None:
                profile = await self.gate.run(ctx, plans.profile(account_id))
                history_id = str(profile["historyId"])
                await self.store.commit(account_id, history_id, [], full_sync=True)
                return SyncReport(SyncOutcome.BASELINE, history_id, 0)
            try:
                pages = await self.gate.run(ctx, plans.history(account_id, state.history_id))
            except NotFoundError:
                return await self._rescan(ctx, account_id)
            return await self._apply(account_id, state.history_id, pages)
        except Exception:
            failures = await self.store.failed(account_id)
            log.warning("sync_failed", account_id=account_id, consecutive_failures=failures)
            raise

    async def _rescan(self, ctx: AccessContext, account_id: str) -> SyncReport:
        # The profile is read first: whatever changes during the listing is in the next run.
        profile = await self.gate.run(ctx, plans.profile(account_id))
        history_id = str(profile["historyId"])
        page = await self.gate.run(
            ctx, plans.message_list(account_id, max_results=self.resync_limit)
        )
        ids = [stub["id"] for stub in page.get("messages", [])]
        await self.store.commit(account_id, history_id, [resync(history_id, ids)],
                                 full_sync=True)  # fmt: skip
        log.info("sync_resynced", account_id=account_id, messages=len(ids))
        return SyncReport(SyncOutcome.RESYNCED, history_id, 1)

    async def _apply(self, account_id: str, cursor: str, pages: list[GmailJson]) -> SyncReport:
        changes: list[Change] = []
        given_up: list[str] = []
        for entry in (e for page in pages for e in page.get("history", [])):
            try:
                changes += entry_changes(entry)
            except HistoryEntryError as exc:
                attempts = await self.store.entry_failed(account_id, exc.entry_id, exc.reason)
                if attempts < self.quarantine_after:
                    raise
                log.warning("sync_entry_quarantined", account_id=account_id,
                            entry_id=exc.entry_id, reason=exc.reason)  # fmt: skip
                given_up.append(exc.entry_id)
                changes.append(quarantined(exc.entry_id))
        history_id = str(pages[-1].get("historyId", cursor)) if pages else cursor
        await self.store.commit(account_id, history_id, changes, quarantined=given_up)
        return SyncReport(SyncOutcome.SYNCED, history_id, len(changes), tuple(given_up))
