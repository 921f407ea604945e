"""A stoppable loop run as a background task for the length of an `async with` block.

The service's loops (retention, the live mailbox, webhook delivery, the feed relay) each take a
`stop` event and return once it is set, finishing what they are doing; `running` starts one,
and on leaving the block sets `stop` and awaits it, so a loop is done before what it uses closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def running(loop: Loop, name: str) -> AsyncIterator[None]:
    """`loop(stop)` as the task `name` for the body's duration; stopped and awaited after."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop(stop), name=name)
    try:
        yield
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def cancelled_after(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """`work` as the task `name` for the body's duration; cancelled and awaited after (for
    work with no stop event of its own, such as a heartbeat)."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM. A handler that sets an event, not
    one that raises: an exception out of the loop (aiohttp's `GracefulExit`) ended
    `asyncio.run`, which cancelled every task at once, the background loops under the very
    cleanup that was stopping them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
