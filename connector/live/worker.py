"""The live mailbox's loops, run in `connector serve` (one `LiveWorker` per process).

- push (when configured): pull notices and settle them, back to back;
- polling: every active account's history, every `poll_every` (the fallback without push, the
  safety net with it);
- watches (with push): make or renew each account's `users.watch`, checked every
  `watch_check_every`.

Each loop survives its own failures (logged by type, retried after a pause that grows while
failures repeat); `run` returns when `stop` is set, finishing no work half-way: a sync commits
or writes nothing, a notice not acknowledged comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

from connector.live.polling import Poller
from connector.live.ports import AccountDirectory
from connector.live.push import PushReceiver
from connector.live.watches import WatchKeeper
from connector.logs import get_logger

log = get_logger(__name__)
MAX_PAUSE = 60.0  # seconds between attempts of a loop that keeps failing


@dataclass(frozen=True, slots=True)
class Schedule:
    poll_every: timedelta
    watch_check_every: timedelta = timedelta(hours=1)
    idle_pull_pause: float = 0.2  # after an empty pull (Google's pull returns at once when idle)
    # Pulls in flight at once: one pull waited for its whole batch to settle before the next,
    # so a slow sync held back every notice behind it (Google advises several outstanding pulls).
    pullers: int = 4


@dataclass(eq=False)
class LiveWorker:
    directory: AccountDirectory
    poller: Poller
    schedule: Schedule
    _: KW_ONLY
    receiver: PushReceiver | None = None
    watches: WatchKeeper | None = None

    async def run(self, stop: asyncio.Event) -> None:
        loops: list[tuple[str, Callable[[], Awaitable[float]]]] = [("poll", self._poll)]
        if self.receiver is not None:
            loops += [(f"push-{n}", self._pull) for n in range(self.schedule.pullers)]
        if self.watches is not None:
            loops.append(("watch", self._renew))
        tasks = [asyncio.create_task(_forever(name, step, stop), name=f"live-{name}")
                 for name, step in loops]  # fmt: skip
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def adopt(self, account_id: str) -> None:
        """Watch (with push) and baseline a newly linked account at once, so the first change
        after the link is reported; a failure is logged and the loops try again later."""
        try:
            if self.watches is not None:
                await self.watches.renew([account_id])
            await self.poller.sync_now(account_id)
        except Exception as exc:  # the link itself succeeded: never fail it here
            log.warning("live_adopt_failed", account_id=account_id,
                        error_type=type(exc).__name__)  # fmt: skip

    async def release(self, account_id: str) -> None:
        if self.watches is not None:
            await self.watches.stop(account_id)

    async def _poll(self) -> float:
        report = await self.poller.poll_once()
        if report.synced or report.failed:
            log.info("live_poll", synced=report.synced, failed=report.failed)
        return self.schedule.poll_every.total_seconds()

    async def _pull(self) -> float:
        assert self.receiver is not None
        report = await self.receiver.pull_once()
        return 0.0 if report.received else self.schedule.idle_pull_pause

    async def _renew(self) -> float:
        assert self.watches is not None
        renewed = await self.watches.renew(await self.directory.active_ids())
        if renewed:
            log.info("live_watches_renewed", count=renewed)
        return self.schedule.watch_check_every.total_seconds()


async def _forever(name: str, step: Callable[[], Awaitable[float]], stop: asyncio.Event) -> None:
    """Run `step` until stopped; it returns how long to wait before the next run."""
    failures = 0
    while not stop.is_set():
        try:
            pause = await step()
            failures = 0
        except Exception as exc:  # the loop must outlive any one failure
            failures += 1
            pause = min(MAX_PAUSE, 0.5 * 2**failures)
            log.warning("live_loop_failed", loop=name, failures=failures,
                        error_type=type(exc).__name__)  # fmt: skip
        if pause:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
        else:
            await asyncio.sleep(0)
