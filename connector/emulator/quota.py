"""Per-user Gmail quota: units per method over a moving window, plus a concurrency cap.

Two regimes exist (see gmail-api.md): the legacy 250 units/user/s moving average and the newer
6,000 units/user/minute. Both are a sliding window of charged units; only the sizes differ.
The limits and the per-method unit table are Google's numbers, shared with the client
(`connector.gmail_facts`); the accounting here is the emulator's own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from connector.emulator import errors
from connector.gmail_facts import DEFAULT_UNITS, REGIME_LIMITS, REGIME_UNITS


class QuotaRegime(StrEnum):
    LEGACY = "legacy"  # 250 units per user per second, moving average
    PER_MINUTE = "per_minute"  # 6,000 units per user per minute


class RateLimitStyle(StrEnum):
    """How an exceeded quota is reported: Gmail uses both in the wild."""

    HTTP_429 = "429"
    HTTP_403 = "403"


@dataclass
class QuotaConfig:
    regime: QuotaRegime = QuotaRegime.LEGACY
    units_per_window: int | None = None  # None: the regime's documented limit
    window_seconds: float | None = None
    method_units: dict[str, int] | None = None  # overrides merged over the regime's table
    style: RateLimitStyle = RateLimitStyle.HTTP_429
    max_concurrent_per_user: int | None = None

    @property
    def limit(self) -> int:
        if self.units_per_window is not None:
            return self.units_per_window
        return REGIME_LIMITS[self.regime][0]

    @property
    def window(self) -> float:
        if self.window_seconds is not None:
            return self.window_seconds
        return REGIME_LIMITS[self.regime][1]

    def units(self, method: str) -> int:
        if self.method_units and method in self.method_units:
            return self.method_units[method]
        return REGIME_UNITS[self.regime].get(method, DEFAULT_UNITS)


@dataclass
class _Window:
    events: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0


class QuotaTracker:
    """Charges units per user; `charge` raises the configured Gmail error when over the limit."""

    def __init__(self, config: QuotaConfig | None) -> None:
        self.config = config
        self._windows: dict[str, _Window] = {}
        self._in_flight: dict[str, int] = {}

    def set_config(self, config: QuotaConfig | None) -> None:
        self.config = config
        self._windows.clear()

    def units_for(self, method: str) -> int:
        config = self.config or QuotaConfig()
        return config.units(method)

    def charge(self, user: str, method: str, now: float | None = None) -> int:
        """Charge `method` to `user`; returns units charged. Unconfigured quota charges nothing."""
        config = self.config
        if config is None:
            return 0
        units = config.units(method)
        moment = time.monotonic() if now is None else now
        window = self._windows.setdefault(user, _Window())
        horizon = moment - config.window
        while window.events and window.events[0][0] <= horizon:
            window.total -= window.events.popleft()[1]
        if window.total + units > config.limit:
            if config.style is RateLimitStyle.HTTP_403:
                raise errors.user_rate_limited_403()
            # Retry-After: when the oldest charge leaves the window (whole seconds, at least 1)
            oldest = window.events[0][0] if window.events else moment
            raise errors.rate_limited_429(math.ceil(oldest + config.window - moment))
        window.events.append((moment, units))
        window.total += units
        return units

    def enter(self, user: str) -> None:
        """Count one in-flight request; over the cap raises 429 'Too many concurrent requests'."""
        cap = self.config.max_concurrent_per_user if self.config else None
        current = self._in_flight.get(user, 0)
        if cap is not None and current >= cap:
            raise errors.too_many_concurrent()
        self._in_flight[user] = current + 1

    def leave(self, user: str) -> None:
        self._in_flight[user] = max(0, self._in_flight.get(user, 1) - 1)
