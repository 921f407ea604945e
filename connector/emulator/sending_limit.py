"""Gmail's mail-sending limit: a per-user daily cap on messages sent through the API.

Past it Gmail answers `messages.send` and `drafts.send` with 429 "User-rate limit exceeded.
Retry after <RFC 3339 time> (Mail sending)" until that time; unlike the per-second unit quota
this is hours away, so a client must pause sending for the account rather than back off.
Tests and demos either set `daily_limit` or call `pause` to be at the limit now.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connector.emulator import errors

SENDING_METHODS = frozenset({"messages.send", "drafts.send"})
DAY_SECONDS = 86_400.0


@dataclass
class SendingLimit:
    daily_limit: int | None = None  # messages per user per rolling 24 h; None: no cap
    clock: Callable[[], float] = time.time
    _sent: dict[str, deque[float]] = field(default_factory=dict)
    _paused_until: dict[str, float] = field(default_factory=dict)

    def pause(self, email: str, until: datetime) -> None:
        """Answer every send of `email` with the sending-limit 429 until `until`."""
        self._paused_until[email.lower()] = until.timestamp()

    def check(self, email: str, method_id: str) -> None:
        """Raise the sending-limit error if a send by `email` must be refused now."""
        if method_id not in SENDING_METHODS:
            return
        now = self.clock()
        until = self._paused_until.get(email, 0.0)
        sent = self._sent.setdefault(email, deque())
        while sent and sent[0] <= now - DAY_SECONDS:
            sent.popleft()
        if until <= now and self.daily_limit is not None and len(sent) >= self.daily_limit:
            until = sent[0] + DAY_SECONDS  # the oldest send of the day leaves the window
        if until > now:
            raise errors.sending_limit(_utc(until), _utc(now))

    def record(self, email: str, method_id: str) -> None:
        if method_id in SENDING_METHODS:
            self._sent.setdefault(email, deque()).append(self.clock())


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
