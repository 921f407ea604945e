"""Grouped calls: the single-key calls made while one batch is running wait for it, then go
together as the next batch (group commit, for reads as well as writes).

The hot statements of the live path are one-row reads and writes by primary key (an account's
owner and credentials for each Gmail call and each delivery, a delivery cursor per change),
made by many tasks at once. Each cost a round trip of its own, and on this machine a loopback
round trip's send alone is a fifth of a service's CPU. `Grouped` makes them one statement per
batch without adding a wait: the first call of an idle group runs at the next turn of the event
loop (the calls of the same turn join it), and the calls made while it runs form the next
batch. A result is therefore never older than the call that asked for it: a read answered by a
batch was sent after the call was made.

Chosen over aiodataloader (flushes every loop turn, so calls spread over the turns of a running
batch each go alone, and it caches answers by default, which must never happen for an owner or
a credential).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

RunBatch = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]


class Grouped(Generic[K, V]):
    """`await grouped(key)` → `run(keys)[key]`, or `missing` for a key `run` did not answer.

    `run` gets each key of a batch once (callers asking for the same key share its answer) and
    at most `max_batch` keys. An exception from `run` is raised to every caller of that batch;
    the next batch runs as usual. A caller cancelled while waiting leaves the batch running for
    the others."""

    def __init__(self, run: RunBatch[K, V], *, missing: V, max_batch: int = 500) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self._missing = missing
        self._max = max_batch
        self._waiting: deque[tuple[K, asyncio.Future[V]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches run: how well calls were grouped (tests, benchmarks)

    async def __call__(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.append((key, future))
        # a task of a loop that has since closed never runs again: start one on this loop.
        # Its own empty context: the batches serve every caller, so none of them may carry
        # the first caller's context variables (its request id in the logs, its quota class).
        if self._task is None or self._task.get_loop() is not loop:
            self._task = loop.create_task(
                self._drain(), name="grouped-calls", context=contextvars.Context()
            )
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._run_one(self._take())
        finally:
            if self._task is asyncio.current_task():
                self._task = None
            # cancelled (the loop is shutting down): nobody is left waiting for an answer
            while self._waiting:
                self._waiting.popleft()[1].cancel()

    def _take(self) -> dict[K, list[asyncio.Future[V]]]:
        batch: dict[K, list[asyncio.Future[V]]] = {}
        while self._waiting and (len(batch) < self._max or self._waiting[0][0] in batch):
            key, future = self._waiting.popleft()
            if not future.done():  # a caller cancelled before its batch began
                batch.setdefault(key, []).append(future)
        return batch

    async def _run_one(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        if not batch:
            return
        self.batches += 1
        try:
            answers = await self._run(list(batch))
        except asyncio.CancelledError:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in batch.items():
            answer = answers.get(key, self._missing)
            for future in futures:
                if not future.done():
                    future.set_result(answer)
