"""Phase timings inside the service workers of scripts/bench_service.py (diagnosis only).

Usage: `PROBE=1 PYTHONPATH=docs/profiles/service-probe .venv/bin/python scripts/bench_service.py`.
Python imports this module at start-up in every process on that path; it acts only in the
`--serve` workers. It wraps, by assignment, the calls one audited read waits on and, at exit,
writes service-probe-<pid>.json into $PROBE_DIR (default: the temporary directory):
p50/p90/p99/mean in ms, the first quarter dropped as warm-up.

  handler           the whole request inside the middlewares
  append            one audit append as the gate awaits it (queue + batch + wake-up)
  gmail             one Gmail call of the client, request to decoded answer
  submit_to_settle  one SQLite batch: submitted to the writer thread .. its callback on the loop
  write             the writer thread's `_write` (link, insert, commit, identity checks)
  write_locked      the BEGIN IMMEDIATE path alone (taken when the other worker moved the head)
  batch             events per batch (the value, not ms)

Experiments: SWITCH=<seconds> sets sys.setswitchinterval in the workers; FLOCK=1 serialises the
workers' batches with an flock(2) on a side file instead of SQLite's busy handler.
"""

from __future__ import annotations

import os
import sys

if "--serve" in sys.argv and os.environ.get("SWITCH"):
    sys.setswitchinterval(float(os.environ["SWITCH"]))

if "--serve" in sys.argv and os.environ.get("PROBE"):
    import atexit
    import fcntl
    import json
    import tempfile
    import time
    from typing import Any

    from aiohttp import web

    import connector.web.app as app_module
    from audit import sqlite_store
    from connector.gmail import client as gmail_client
    from connector.web import metrics, refusals

    TIMES: dict[str, list[float]] = {
        k: [] for k in ("handler", "append", "gmail", "submit_to_settle", "write", "write_locked")
    }
    SIZES: list[int] = []

    def _timed(name: str, fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                TIMES[name].append(time.perf_counter() - started)

        return wrapper

    metrics.MeteredSink.append = _timed("append", metrics.MeteredSink.append)  # type: ignore[method-assign]
    gmail_client.GmailClient._call = _timed("gmail", gmail_client.GmailClient._call)  # type: ignore[method-assign]
    app_module.refusals = web.middleware(_timed("handler", refusals.refusals))  # type: ignore[attr-defined]

    store = sqlite_store.SqliteStore
    write, write_locked, submit = store._write, store._write_locked, store.submit_batch
    lock_files: dict[str, int] = {}

    def _write(self: Any, batch: Any, decide: Any) -> Any:
        started = time.perf_counter()
        fd = None
        if os.environ.get("FLOCK"):
            fd = lock_files.setdefault(
                self.path, os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT)
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return write(self, batch, decide)
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            TIMES["write"].append(time.perf_counter() - started)
            SIZES.append(len(batch))

    def _write_locked(self: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return write_locked(self, *args)
        finally:
            TIMES["write_locked"].append(time.perf_counter() - started)

    def _submit(self: Any, batch: Any, decide: Any, done: Any) -> None:
        started = time.perf_counter()

        def settled(outcome: Any) -> None:
            TIMES["submit_to_settle"].append(time.perf_counter() - started)
            done(outcome)

        submit(self, batch, decide, settled)

    store._write, store._write_locked, store.submit_batch = _write, _write_locked, _submit  # type: ignore[method-assign]

    def _figures(values: list[float], scale: float) -> dict[str, float]:
        kept = sorted(values[len(values) // 4 :]) or [0.0]
        n = len(kept)
        at = {"p50": n // 2, "p90": int(n * 0.9), "p99": int(n * 0.99)}
        figures = {name: round(kept[i] * scale, 2) for name, i in at.items()}
        return {"n": n, **figures, "mean": round(sum(kept) / n * scale, 2)}

    def _dump() -> None:
        out = {name: _figures(values, 1e3) for name, values in TIMES.items()}
        out["batch"] = _figures([float(s) for s in SIZES], 1.0)
        directory = os.environ.get("PROBE_DIR") or tempfile.gettempdir()
        with open(os.path.join(directory, f"service-probe-{os.getpid()}.json"), "w") as f:
            json.dump(out, f)

    atexit.register(_dump)
