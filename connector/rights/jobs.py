"""Retention in the service: a background loop that runs `Retention` every interval.

Only one instance runs at a time: `may_run` is asked before each run (the composition root
plugs in the `retention` lease, held for one interval, whenever instances share the work, so one
of them runs per interval); whatever it answers, `Retention.run` itself holds an advisory lock
on PostgreSQL and skips when another instance holds it. A failed run is logged
(type only) and retried at the next interval; it never stops the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from connector.background import running
from connector.logs import get_logger
from connector.rights.retention import Retention, RetentionReport

MayRun = Callable[[], Awaitable[bool]]
log = get_logger(__name__)


async def always() -> bool:
    """The single-instance default: the advisory lock in `Retention.run` is the guard."""
    return True


class RetentionLoop:
    def __init__(self, retention: Retention, *, every: timedelta, may_run: MayRun = always) -> None:
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        self._retention = retention
        self._every = every.total_seconds()
        self._may_run = may_run

    async def tick(self) -> RetentionReport | None:
        """One run if this instance may run now; None if it may not or another one is running."""
        if not await self._may_run():
            return None
        return await self._retention.run()

    async def run(self, stop: asyncio.Event) -> None:
        """A run every interval, the first one interval after start, until `stop` is set (so
        instances starting together, and short-lived test services, do not all run at once)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every)
            if stop.is_set():
                return
            try:
                report = await self.tick()
            except Exception as exc:  # retried at the next interval; the audit log has any denial
                log.warning("retention_failed", error_type=type(exc).__name__)
            else:
                if report is not None:
                    log.info("retention_ran", reasons=list(report.reasons()))

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The loop as a background task for the body's duration; stopped and awaited after."""
        return running(self.run, "retention")
