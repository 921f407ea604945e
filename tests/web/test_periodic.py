"""The service's periodic upkeep (housekeeping, shared sign-outs): every step runs each tick,
a failing step is logged and does not stop the others or the loop, and it stops with the app."""

from __future__ import annotations

import asyncio

from connector.web.app import _every


async def test_each_step_runs_every_tick_and_one_failure_stops_nothing() -> None:
    calls = {"bad": 0, "good": 0}

    async def bad() -> None:
        calls["bad"] += 1
        raise RuntimeError("the database is away")

    async def good() -> None:
        calls["good"] += 1

    async with _every(0.02, "test-upkeep", (("bad_failed", bad), ("good_failed", good))):
        await asyncio.sleep(0.15)
    assert calls["bad"] >= 3
    assert calls["good"] == calls["bad"]  # the failure before it did not skip it
    stopped = dict(calls)
    await asyncio.sleep(0.06)
    assert calls == stopped  # the loop ended with the context
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "test-upkeep"]
