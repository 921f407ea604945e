"""A separate OS process that appends events and prints each acknowledged seq on stdout.

Used by the multi-process and crash tests: `python -m tests.audit.writer_proc URL COUNT WORKERS`.
"""

from __future__ import annotations

import asyncio
import sys

from audit import open_audit_log
from tests.audit.helpers import make_event


async def run(url: str, count: int, workers: int) -> None:
    log = await open_audit_log(url, checkpoint_every=50)
    remaining = iter(range(count))

    async def worker() -> None:
        for i in remaining:
            receipt = await log.append(make_event(i))
            sys.stdout.write(f"{receipt.seq}\n")
            sys.stdout.flush()

    await asyncio.gather(*(worker() for _ in range(workers)))
    await log.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
