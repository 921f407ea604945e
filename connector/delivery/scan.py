"""Which part of the change feed the dispatcher's next due scan reads (pure).

The feed keeps every change for its retention period, so a scan of the whole feed every run
(every second, on every instance) grows with the feed, not with what is waiting. Between full
scans the dispatcher reads only changes above a floor: the newest seq of the previous scan less
`lookback`, so a change whose transaction took its seq earlier but committed later is still
seen (seq order is commit order within one account, not across accounts). A full scan runs at
start, every `full_every`, and after a scan that hit its account limit (what it left behind may
lie below any floor). Accounts waiting on a retry, and accounts a run left unfinished, are asked
for by name, whatever their seq.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LOOKBACK = 2_000  # seqs: ten seconds of appends at 200 changes/s
FULL_EVERY = timedelta(seconds=60)


@dataclass(slots=True)
class ScanWindow:
    lookback: int = LOOKBACK
    full_every: timedelta = FULL_EVERY
    floor: int | None = None  # None: the next scan reads the whole feed
    last_full: datetime | None = None

    def after(self, now: datetime) -> int | None:
        """The seq the next scan reads above; None for a full scan."""
        if self.floor is None or self.last_full is None:
            return None
        if now - self.last_full >= self.full_every:
            return None
        return self.floor

    def scanned(self, now: datetime, after: int | None, newest: int, *, hit_limit: bool) -> None:
        """A scan above `after` ran when the feed's newest seq was `newest`."""
        if after is None:
            self.last_full = now
        if hit_limit:
            self.floor = None  # what the limit left may be anywhere: read it all next time
        else:
            self.floor = max(0, newest - self.lookback)
