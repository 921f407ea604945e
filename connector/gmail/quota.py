"""Per-user quota budgeting: spend Gmail's units before sending instead of bouncing off 429s.

Gmail limits each user to a moving window of "units" (costs per method) and to a few
concurrent requests. The budget keeps, per user, the units charged inside the window and makes
a caller wait until its units fit. A charge stays counted from the moment the request is sent
until one full window after its answer arrived: Google charges somewhere in between, so this
never lets two charges fall into one server-side window when they should not, whatever the
latency, at the cost of about one round trip per window of throughput.

Waiting is bounded: a call that has not got its concurrency slot and its units within
`max_wait_seconds` is refused (`QuotaWaitExceededError`, answered 429 + Retry-After) rather than
queued behind a burst on the same mailbox for as long as the burst lasts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import MappingProxyType

from connector.gmail.errors import QuotaWaitExceededError
from connector.gmail.quota_shared import SharedQuota, current_priority
from connector.gmail_facts import DEFAULT_UNITS, LEGACY_UNITS, REGIME_LIMITS, REGIME_UNITS

# One vocabulary for CONNECTOR_GMAIL_QUOTA_REGIME and the budget, re-exported by connector.gmail
from connector.settings import QuotaRegime as QuotaRegime  # noqa: PLC0414


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """Unit limit per user per window, per-method costs, and a per-user concurrency cap.

    `units_per_window=None` means no unit pacing (only the concurrency cap applies);
    `max_wait_seconds=None`, no bound on the wait for a slot and units.
    """

    units_per_window: int | None = 250
    window_seconds: float = 1.0
    method_units: Mapping[str, int] = field(default_factory=lambda: LEGACY_UNITS)
    default_units: int = DEFAULT_UNITS
    max_concurrency_per_user: int = 10
    max_wait_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.units_per_window is not None and self.units_per_window < 1:
            raise ValueError("units_per_window must be positive")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if self.max_concurrency_per_user < 1:
            raise ValueError("max_concurrency_per_user must be at least 1")
        if self.max_wait_seconds is not None and self.max_wait_seconds <= 0:
            raise ValueError("max_wait_seconds must be positive")

    @classmethod
    def for_regime(
        cls,
        regime: QuotaRegime | str,
        *,
        max_concurrency_per_user: int = 10,
        overrides: Mapping[str, int] | None = None,
        shares: int = 1,
        max_wait_seconds: float | None = None,
    ) -> QuotaPolicy:
        """Google's per-user limits; with `shares` > 1 (service worker processes, each with
        its own budget), this process's 1/shares of the units and of the concurrency cap."""
        if shares < 1:
            raise ValueError("shares must be at least 1")
        regime = QuotaRegime(regime)
        limit, window = REGIME_LIMITS[regime]
        method_units = {**REGIME_UNITS[regime], **(overrides or {})}
        # a share never below the costliest single call (or that call could never be made),
        # and never above Google's whole limit
        floor = min(limit, max(method_units.values()))
        return cls(
            units_per_window=max(limit // shares, floor),
            window_seconds=window,
            method_units=MappingProxyType(method_units),
            max_concurrency_per_user=max(1, max_concurrency_per_user // shares),
            max_wait_seconds=max_wait_seconds,
        )

    @classmethod
    def unmetered(cls, max_concurrency_per_user: int = 10) -> QuotaPolicy:
        """No unit pacing; for the emulator with quota off, or callers that pace themselves."""
        return cls(units_per_window=None, max_concurrency_per_user=max_concurrency_per_user)

    def units(self, method: str) -> int:
        return self.method_units.get(method, self.default_units)


@dataclass(eq=False, slots=True)
class Charge:
    """Units held in a user's window; `expires_at` is set when the answer arrives."""

    units: int
    expires_at: float = math.inf


@dataclass(slots=True)
class _UserWindow:
    concurrency: asyncio.Semaphore
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # FIFO: big sends are not starved
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    charges: list[Charge] = field(default_factory=list)
    used: int = 0
    paused_until: float = 0.0


class QuotaBudget:
    """Per-user moving-window unit budget plus concurrency cap, shared by all calls of a client."""

    def __init__(self, policy: QuotaPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._users: dict[str, _UserWindow] = {}
        self._shared: list[tuple[SharedQuota, Callable[[str], str]]] = []

    def share(self, quota: SharedQuota, bucket_of: Callable[[str], str]) -> None:
        """Also spend every call's units from `quota` (shared by all instances through the
        database) in the bucket `bucket_of(user)` names, at the caller's `current_priority`."""
        self._shared.append((quota, bucket_of))

    def _window(self, user: str) -> _UserWindow:
        window = self._users.get(user)
        if window is None:
            window = _UserWindow(asyncio.Semaphore(self.policy.max_concurrency_per_user))
            self._users[user] = window
        return window

    def used(self, user: str) -> int:
        """Units currently counted against `user` (in flight or inside the window)."""
        window = self._users.get(user)
        if window is None:
            return 0
        self._prune(window, self._clock())
        return window.used

    @staticmethod
    def _prune(window: _UserWindow, now: float) -> None:
        if any(c.expires_at <= now for c in window.charges):
            kept = [c for c in window.charges if c.expires_at > now]
            window.used = sum(c.units for c in kept)
            window.charges = kept

    async def acquire(self, user: str, units: int) -> Charge:
        """Wait until `units` fit in `user`'s window, then hold them until `release`."""
        limit = self.policy.units_per_window
        charge = Charge(units)
        if limit is None:
            return charge
        window = self._window(user)
        async with window.lock:
            while True:
                now = self._clock()
                if now < window.paused_until:
                    await asyncio.sleep(window.paused_until - now)
                    continue
                self._prune(window, now)
                # A call costing more than the whole window still goes, alone.
                if window.used + units <= limit or not window.charges:
                    window.charges.append(charge)
                    window.used += units
                    return charge
                next_expiry = min(c.expires_at for c in window.charges)
                timeout = None if math.isinf(next_expiry) else max(0.0, next_expiry - now)
                window.changed.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(window.changed.wait(), timeout)

    def release(self, user: str, charge: Charge) -> None:
        """The answer arrived: the units leave the window one window length from now."""
        if self.policy.units_per_window is None:
            return
        charge.expires_at = self._clock() + self.policy.window_seconds
        self._window(user).changed.set()

    def pause(self, user: str, seconds: float) -> None:
        """Google said slow down: hold every new charge for `user` for `seconds`."""
        window = self._window(user)
        window.paused_until = max(window.paused_until, self._clock() + seconds)

    @asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        """One of the user's concurrent-request slots for the duration of a request."""
        async with self._window(user).concurrency:
            yield

    @asynccontextmanager
    async def spend(self, user: str, units: int) -> AsyncIterator[None]:
        """A concurrency slot plus `units` held for one HTTP exchange; the wait for both is
        bounded by `max_wait_seconds` (QuotaWaitExceededError past it)."""
        window = self._window(user)
        bound = self.policy.max_wait_seconds
        try:
            async with asyncio.timeout(bound):
                await window.concurrency.acquire()
                try:
                    charge = await self.acquire(user, units)
                    try:
                        for quota, bucket_of in self._shared:
                            await quota.take(bucket_of(user), units, current_priority())
                    except BaseException:
                        self.release(user, charge)
                        raise
                except BaseException:
                    window.concurrency.release()
                    raise
        except TimeoutError:
            assert bound is not None
            raise QuotaWaitExceededError(
                waited=bound, retry_after=self._retry_hint(window)
            ) from None
        try:
            yield
        finally:
            self.release(user, charge)
            window.concurrency.release()

    def _retry_hint(self, window: _UserWindow) -> int:
        """Whole seconds until the queue has likely drained a window's worth: at least one."""
        paused = window.paused_until - self._clock()
        return max(1, math.ceil(max(paused, self.policy.window_seconds)))

    def max_batch_units(self) -> int | None:
        """Units one batch may carry so several batches pipeline within a window."""
        limit = self.policy.units_per_window
        return None if limit is None else max(1, limit // 5)
