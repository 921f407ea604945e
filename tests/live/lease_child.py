"""A process that holds leases, for the tests with real processes (`python -m` this module).

`hold URL HOLDER TTL KEY...`: claim the keys, print them as one JSON line, renew forever.
`compete URL HOLDER TTL SECONDS`: for SECONDS, take and give up one lease over and over; print
each holding as a JSON line {token, start, end} where end is when it stopped relying on it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import timedelta

from connector.clock import system_clock
from connector.db import create_engine
from connector.live.leases import Heartbeat, Kind, Leases


async def hold(url: str, holder: str, ttl: timedelta, keys: list[str]) -> None:
    engine = create_engine(url)
    leases = Leases(engine, holder, system_clock)
    taken = sorted(await leases.claim_many(Kind.SYNC, keys, ttl))
    print(json.dumps({"held": taken}), flush=True)
    await Heartbeat(leases, [Kind.SYNC], ttl, ttl / 4).run()


async def compete(url: str, holder: str, ttl: timedelta, seconds: float) -> None:
    engine = create_engine(url)
    leases = Leases(engine, holder, system_clock)
    started = system_clock()
    while (system_clock() - started).total_seconds() < seconds:
        before = system_clock()  # the lease runs at least ttl from here
        if await leases.acquire(Kind.SYNC, "contended", ttl):
            start = system_clock()  # relied on from now
            lease = await leases.current(Kind.SYNC, "contended")
            assert lease is not None
            await asyncio.sleep(random.uniform(0, ttl.total_seconds() * 0.5))
            if random.random() < 0.5:
                end = system_clock()  # no longer relied on from now
                await leases.release(Kind.SYNC, "contended")
            else:  # walk away: the lease runs out on its own
                end = before + ttl
            record = {"token": lease.token, "start": start.timestamp(), "end": end.timestamp()}
            print(json.dumps(record), flush=True)
            await asyncio.sleep(max(0.0, (end - system_clock()).total_seconds()))
            # Step back a moment before trying again, or the holder re-takes the lease the
            # instant it frees and a loaded machine can starve the other process for 4 s.
            await asyncio.sleep(random.uniform(0.02, 0.1))
        else:
            await asyncio.sleep(0.01)
    await engine.dispose()


def main() -> None:
    mode, url, holder, ttl = sys.argv[1:5]
    ttl_delta = timedelta(seconds=float(ttl))
    if mode == "hold":
        asyncio.run(hold(url, holder, ttl_delta, sys.argv[5:]))
    else:
        asyncio.run(compete(url, holder, ttl_delta, float(sys.argv[5])))


if __name__ == "__main__":
    main()
