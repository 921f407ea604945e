"""`connector serve --workers N`: N service processes sharing one port.

Why processes: one Python process runs every request on one core (the GIL). On the benchmark
machine a single process tops out near 1,000 audited reads/s with that core busy, so a second
core only helps through a second process.

The parent does what must happen once, before any worker takes traffic: it migrates the
connector and audit databases (so workers never race to create a schema) and prepares the
Prometheus multiprocess directory (so `/metrics`, answered by whichever worker the kernel
picks, reports the whole pool). Then it starts N `connector serve` children bound with
SO_REUSEPORT; the kernel spreads connections across them.

Everything a worker shares with its siblings lives in the databases: the audit chain (each
store links under a write lock), OAuth link state, Idempotency-Key records, consents. What is
per process is sized for it: each takes 1/N of every per-user Gmail quota (`Settings.workers`).

SIGTERM/SIGINT are passed on and each worker drains its requests (aiohttp graceful shutdown).
If a worker dies, the others are stopped and the pool exits non-zero: the supervisor (systemd,
Kubernetes) restarts the unit rather than the pool limping on with fewer workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from types import FrameType

import structlog

from audit.log import migrate_audit_log
from connector.settings import Settings
from connector.web.metrics import MULTIPROC_ENV

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE_SECONDS = 35.0  # aiohttp's shutdown_timeout (30 s) plus cleanup


async def _migrate_once(settings: Settings) -> None:
    # The connector database: already migrated in this process by `connector serve`, before
    # the pool (connector.db.migrate_or_explain). The audit schema as its owner when given;
    # the workers then log in as audit_writer.
    await migrate_audit_log(settings.audit_admin_database_url or settings.audit_database_url)


def run_pool(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run `workers` service processes on host:port until signalled; the exit status."""
    asyncio.run(_migrate_once(settings))
    with tempfile.TemporaryDirectory(prefix="connector-metrics-") as metrics_dir:
        env = {**os.environ, "CONNECTOR_WORKERS": str(workers), MULTIPROC_ENV: metrics_dir}
        argv = [sys.executable, "-m", "connector", "serve", "--host", host, "--port", str(port)]
        children = [
            # argv is this interpreter and our own module with validated host/port: no shell
            subprocess.Popen([*argv, "--worker-index", str(i)], env=env)  # noqa: S603
            for i in range(workers)
        ]
        stopping = False

        def stop(signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            failed = _supervise(children, lambda: stopping)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _stop_all(children)
        if failed is not None:
            index, code = failed
            sys.stderr.write(f"worker {index} exited with status {code}; stopped the pool\n")
            return 1
        return 0


def _supervise(
    children: list[subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> tuple[int, int] | None:
    """Wait until signalled (None) or until a worker exits on its own ((index, status))."""
    while not stopping():
        for index, child in enumerate(children):
            code = child.poll()
            if code is not None:
                log.error("worker_exited", worker=index, status=code)
                return index, code
        time.sleep(0.2)
    return None


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

