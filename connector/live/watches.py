"""Gmail push upkeep: `users.watch` per linked account, renewed well before it lapses, stopped
when the account is unlinked.

A watch lasts 7 days; Google asks for a renewal about once a day, so an account is due when its
watch is missing or was made more than `renew_every` ago (its expiry is within 7 days minus
`renew_every`). Each call goes through the gate as the connector (audited like any access) and
the new expiry is kept in the account's sync state.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
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


@dataclass(eq=False)
class WatchKeeper:
    gate: Gate
    store: SyncStore
    topic: str
    _: KW_ONLY
    actor_context: AccessContext
    locks: AccountLocks = field(default_factory=LocalLocks)
    renew_every: timedelta = DEFAULT_RENEW_EVERY
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if not self.topic:
            raise ValueError("WatchKeeper needs a Pub/Sub topic")
        if self.actor_context.purpose is not Purpose.USER_FEATURE:
            raise ValueError("push serves the owner's feature only")

    async def renew(self, account_ids: list[str]) -> int:
        """Make or renew each due watch; the number renewed. One account failing (a revoked
        grant, a quota refusal) is logged and retried next round, never stops the others."""
        renewed = 0
        for account_id in account_ids:
            state = await self.store.state(account_id)
            if not watch_due(state.watch_expires_at, self.clock(), self.renew_every):
                continue
            async with self.locks.hold(Work.WATCH, account_id) as mine:
                if not mine:
                    continue
                try:
                    watch = plans.watch(account_id, self.topic)
                    answer = await self.gate.run(self.actor_context, watch)
                    await self.store.set_watch_expiry(account_id, expiry_of(answer))
                except ConnectorError as exc:
                    log.warning("watch_renew_failed", account_id=account_id,
                                error_type=type(exc).__name__)  # fmt: skip
                    continue
                renewed += 1
        return renewed

    async def stop(self, account_id: str) -> None:
        """users.stop while the grant still works (called before an unlink revokes it)."""
        try:
            await self.gate.run(self.actor_context, plans.stop_watch(account_id))
            await self.store.set_watch_expiry(account_id, None)
        except ConnectorError as exc:  # the watch lapses within 7 days regardless
            log.warning("watch_stop_failed", account_id=account_id, error_type=type(exc).__name__)
