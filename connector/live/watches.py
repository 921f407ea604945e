"""Gmail push upkeep: `users.watch` per linked account, renewed well before it lapses, stopped
when the account is unlinked.

A watch lasts 7 days; Google asks for a renewal about once a day, so an account is due when its
watch is missing or was made more than `renew_every` ago (its expiry is within 7 days minus
`renew_every`). Each call goes through the gate as the connector (audited like any access) and
the new expiry is kept in the account's sync state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit.vocab import Purpose
from connector.accounts.sync_store import SyncStore
from connector.clock import Clock, system_clock
from connector.errors import ConnectorError
from connector.live.ports import AccountLocks, LocalLocks, Work
from connector.logs import get_logger
from connector.policy import plans
from connector.policy.access import AccessContext
from connector.policy.gate import Gate

log = get_logger(__name__)
WATCH_LIFETIME = timedelta(days=7)  # Gmail's; the answer's `expiration` is what counts
DEFAULT_RENEW_EVERY = timedelta(days=1)


def watch_due(expires_at: datetime | None, now: datetime, renew_every: timedelta) -> bool:
    """Pure: whether an account's watch should be made or renewed now."""
    return expires_at is None or expires_at - now <= WATCH_LIFETIME - renew_every


def expiry_of(answer: object) -> datetime | None:
    """users.watch's `expiration` (ms since the epoch, a string on the wire) as a time."""
    raw = answer.get("expiration") if isinstance(answer, dict) else None
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        return None
    return datetime.fromtimestamp(raw / 1000, tz=UTC)


class WatchKeeper:
    def __init__(
        self,
        gate: Gate,
        store: SyncStore,
        topic: str,
        *,
        actor_context: AccessContext,
        locks: AccountLocks | None = None,
        renew_every: timedelta = DEFAULT_RENEW_EVERY,
        clock: Clock = system_clock,
    ) -> None:
        if not topic:
            raise ValueError("WatchKeeper needs a Pub/Sub topic")
        if actor_context.purpose is not Purpose.USER_FEATURE:
            raise ValueError("push serves the owner's feature only")
        self._gate = gate
        self._store = store
        self._topic = topic
        self._ctx = actor_context
        self._locks = locks or LocalLocks()
        self._renew_every = renew_every
        self._clock = clock

    async def renew(self, account_ids: list[str]) -> int:
        """Make or renew each due watch; the number renewed. One account failing (a revoked
        grant, a quota refusal) is logged and retried next round, never stops the others."""
        renewed = 0
        for account_id in account_ids:
            state = await self._store.state(account_id)
            if not watch_due(state.watch_expires_at, self._clock(), self._renew_every):
                continue
            async with self._locks.hold(Work.WATCH, account_id) as mine:
                if not mine:
                    continue
                try:
                    answer = await self._gate.run(self._ctx, plans.watch(account_id, self._topic))
                    await self._store.set_watch_expiry(account_id, expiry_of(answer))
                except ConnectorError as exc:
                    log.warning("watch_renew_failed", account_id=account_id,
                                error_type=type(exc).__name__)  # fmt: skip
                    continue
                renewed += 1
        return renewed

    async def stop(self, account_id: str) -> None:
        """users.stop while the grant still works (called before an unlink revokes it)."""
        try:
            await self._gate.run(self._ctx, plans.stop_watch(account_id))
            await self._store.set_watch_expiry(account_id, None)
        except ConnectorError as exc:  # the watch lapses within 7 days regardless
            log.warning("watch_stop_failed", account_id=account_id, error_type=type(exc).__name__)
