"""Audited reads through the service vs the same reads straight to the emulator.

Processes as in a deployment: the Gmail emulator (`connector emulator`, standing in for Google),
the service (`--workers` processes of this script with `--serve`, sharing the port with
SO_REUSEPORT as `connector serve --workers N` does: JWT auth, policy, two durable audit appends
on one SQLite file, the Gmail client), and the load generator (this process). N concurrent
clients (default 64) read messages by id through the service, then the same messages straight
from the emulator with the same Google access tokens. Prints one JSON line: requests/s, p50, p99
and the ratio.

Each client reads its own mailbox: Gmail's per-user quota (250 units/s, messages.get = 5) caps one
mailbox at 50 reads/s, so one shared mailbox would measure the quota, not the service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from connector.logs import configure_logging
from connector.ports import StoredCredentials
from connector.settings import Settings
from connector.testing.fleet import free_port
from connector.testing.machine import CpuTimes, machine_load
from connector.web.auth import Role, mint_token
from connector.web.workers import MULTIPROC_ENV
from connector.wiring import PresetAccount, preset_accounts

JWT_SECRET = "bench-secret-0123456789abcdef0123456789"


async def _drive(
    http: aiohttp.ClientSession, urls: list[tuple[str, dict[str, str]]], clients: int, total: int
) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def client() -> None:
        for i in counter:
            started = time.perf_counter()
            url, headers = urls[i % len(urls)]
            async with http.get(url, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


# --- the service process -------------------------------------------------------------------


class _Stalls:
    """In the service process: time in the cyclic GC and event-loop lag, to say where the tail
    goes (printed as one JSON line on SIGTERM when the benchmark runs with --diagnose)."""

    def __init__(self) -> None:
        self.gc_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.lag_ms: list[float] = []
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        for pauses in self.gc_ms.values():
            pauses.clear()
        self.lag_ms.clear()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_ms[info["generation"]].append((time.perf_counter() - self._gc_started) * 1e3)

    async def watch_loop(self, period: float = 0.005) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(period)
            self.lag_ms.append((time.perf_counter() - started - period) * 1e3)

    def report(self) -> dict[str, object]:
        lag = sorted(self.lag_ms) or [0.0]
        return {
            "gc": {
                f"gen{g}": {"count": len(v), "total_ms": round(sum(v), 1),
                            "max_ms": round(max(v, default=0.0), 2)}
                for g, v in self.gc_ms.items()
            },
            "loop_lag_ms": {"p50": round(lag[len(lag) // 2], 2),
                            "p99": round(lag[int(len(lag) * 0.99)], 2),
                            "max": round(lag[-1], 2)},
        }  # fmt: skip


async def _serve(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    stalls = _Stalls() if config.get("diagnose") else None
    # WARNING by default (the figures since #18 were taken so); --log-level INFO is what
    # `connector serve` logs by default: one redacted line per request, to stderr (discarded)
    level = config["settings"]["log_level"]
    configure_logging("console", level)
    logging.getLogger("connector").setLevel(level)
    presets = {
        acc["account_id"]: PresetAccount(
            acc["owner"],
            StoredCredentials(
                acc["refresh_token"],
                acc["access_token"],
                datetime.fromisoformat(acc["expiry"]),
                frozenset(acc["scopes"]),
            ),
        )
        for acc in config["accounts"]
    }
    from connector.web.app import create_app, freeze_startup_heap

    app = create_app(Settings(**config["settings"]), accounts=preset_accounts(presets))
    app.on_startup.append(freeze_startup_heap)  # as connector serve does
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config["port"], reuse_port=True).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if stalls is not None:  # the load generator resets the figures before the measured leg
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, stalls.reset)
    print("ready", flush=True)
    watcher = asyncio.create_task(stalls.watch_loop()) if stalls is not None else None
    await stop.wait()
    if watcher is not None and stalls is not None:
        watcher.cancel()
        print(json.dumps(stalls.report()), flush=True)
    await runner.cleanup()


# --- the load generator ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _process(
    *argv: str, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def _access_token(http: aiohttp.ClientSession, info: dict[str, Any]) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": info["refresh_token"],
            "client_id": info["client_id"], "client_secret": info["client_secret"]}  # fmt: skip
    async with http.post(info["token_uri"], data=form) as r:
        assert r.status == 200, await r.text()
        grant: dict[str, Any] = await r.json()
        return grant


@contextlib.asynccontextmanager
async def _spied(pids: list[int], profile: Path | None) -> AsyncIterator[None]:
    """py-spy on every service worker for the duration of the block (all threads, idle ones
    included, so the event loop's waits show), one flame graph per worker in `profile`."""
    if profile is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    assert spy is not None, "install py-spy into the benchmark's venv to use --profile"
    profile.mkdir(parents=True, exist_ok=True)
    options = ("--rate", "250", "--idle", "--threads", "--nonblocking")
    quiet = asyncio.subprocess.DEVNULL
    spies = [
        await asyncio.create_subprocess_exec(
            spy,
            "record",
            "--pid",
            str(pid),
            *options,
            "--format",
            fmt,
            "--output",
            str(profile / f"worker{n}.{ext}"),
            stdout=quiet,
            stderr=quiet,
        )
        for n, pid in enumerate(pids)
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt"))
    ]
    await asyncio.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        for proc in spies:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in spies:
            await proc.wait()


async def main(
    clients: int,
    total: int,
    fmt: str,
    workers: int,
    *,
    profile: Path | None = None,
    diagnose: bool = False,
    log_level: str = "WARNING",
) -> dict[str, object]:
    emu_port, service_port = free_port(), free_port()
    emulator_argv = (sys.executable, "-m", "connector", "emulator", "--port", str(emu_port),
                     "--seed", "bench", "--users", str(clients), "--messages", "20",
                     "--print-credentials")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        async with _process(*emulator_argv) as emulator:
            assert emulator.stdout is not None
            infos = [json.loads(await emulator.stdout.readline()) for _ in range(clients)]
            emu_base = f"http://127.0.0.1:{emu_port}/"
            connector = aiohttp.TCPConnector(limit=clients * 2)
            async with aiohttp.ClientSession(connector=connector) as http:
                grants = await asyncio.gather(*(_access_token(http, i) for i in infos))
                expiry = datetime.now(UTC) + timedelta(seconds=int(grants[0]["expires_in"]))
                settings = {
                    "database_url": f"sqlite:///{Path(tmp) / 'c.db'}",
                    "audit_database_url": f"sqlite:///{Path(tmp) / 'a.db'}",
                    "gmail_api_endpoint": emu_base, "oauth_token_uri": infos[0]["token_uri"],
                    "oauth_client_id": infos[0]["client_id"],
                    "oauth_client_secret": infos[0]["client_secret"],
                    "jwt_secret": JWT_SECRET, "audit_hash_key": "bench-hash-key",
                    "log_level": log_level, "workers": workers,
                }  # fmt: skip
                accounts = [
                    {
                        "account_id": f"acct{n}",
                        "owner": f"u{n}",
                        "refresh_token": info["refresh_token"],
                        "access_token": g["access_token"],
                        "expiry": expiry.isoformat(),
                        "scopes": g["scope"].split(),
                    }
                    for n, (info, g) in enumerate(zip(infos, grants, strict=True))
                ]
                config = Path(tmp) / "service.json"
                config.write_text(json.dumps({
                    "port": service_port, "settings": settings, "accounts": accounts,
                    "diagnose": diagnose,
                }))  # fmt: skip
                # as `connector serve --workers` does: set before the workers import anything
                (Path(tmp) / "metrics").mkdir()
                service_env = {**os.environ, MULTIPROC_ENV: str(Path(tmp) / "metrics")}
                async with contextlib.AsyncExitStack() as services:
                    # one at a time: the first migrates both databases, as the pool's parent does
                    pool: list[asyncio.subprocess.Process] = []
                    for _ in range(workers):
                        service = await services.enter_async_context(
                            _process(
                                sys.executable, __file__, "--serve", str(config), env=service_env
                            )
                        )
                        assert service.stdout is not None
                        assert (await service.stdout.readline()).strip() == b"ready"
                        pool.append(service)
                    base = f"http://127.0.0.1:{service_port}"
                    mint = Settings(jwt_secret=JWT_SECRET)
                    service_urls: list[tuple[str, dict[str, str]]] = []
                    direct_urls: list[tuple[str, dict[str, str]]] = []
                    for n, grant in enumerate(grants):
                        auth = {"Authorization": f"Bearer {mint_token(mint, f'u{n}', Role.USER)}"}
                        direct = {"Authorization": f"Bearer {grant['access_token']}"}
                        async with http.get(
                            f"{base}/v1/accounts/acct{n}/messages?format=ids&max_results=20",
                            headers=auth,
                        ) as r:
                            assert r.status == 200, await r.text()
                            ids = [m["id"] for m in (await r.json())["messages"]]
                        for i in ids[:5]:
                            service_urls.append(
                                (f"{base}/v1/accounts/acct{n}/messages/{i}?format={fmt}", auth)
                            )
                            direct_urls.append(
                                (f"{emu_base}gmail/v1/users/me/messages/{i}?format={fmt}",
                                 direct)
                            )  # fmt: skip
                    # interleave so that consecutive requests hit different mailboxes
                    order = sorted(range(len(service_urls)), key=lambda k: (k % 5, k // 5))
                    service_urls = [service_urls[k] for k in order]
                    direct_urls = [direct_urls[k] for k in order]
                    await _drive(http, service_urls, clients, 500)  # warm-up
                    await _drive(http, direct_urls, clients, 500)
                    await asyncio.sleep(1.5)  # let the per-user quota windows refill
                    pids = {"load_generator": os.getpid(), "emulator": emulator.pid}
                    with _cpu(pids, total) as direct_cpu:
                        since = CpuTimes.now()
                        direct_result = await _drive(http, direct_urls, clients, total)
                        direct_result["machine"] = machine_load(since)
                    await asyncio.sleep(1.5)
                    for service in pool:
                        if diagnose:
                            service.send_signal(signal.SIGUSR1)  # measure this leg only
                    pids |= {f"worker{n}": p.pid for n, p in enumerate(pool)}
                    with _cpu(pids, total) as service_cpu:
                        async with _spied([p.pid for p in pool], profile):
                            since = CpuTimes.now()
                            service_result = await _drive(http, service_urls, clients, total)
                            service_result["machine"] = machine_load(since)
                    stalls = [await _stalls(service) for service in pool] if diagnose else []
                    service_result["cpu_ms_per_request"] = service_cpu
                    direct_result["cpu_ms_per_request"] = direct_cpu
    return {
        "clients": clients,
        "format": fmt,
        "processes": f"load generator | {workers} service worker(s) | emulator (2 cores shared)",
        "storage": "sqlite (connector + audit, WAL, synchronous=FULL for audit commits)",
        "log_level": log_level,
        "service": service_result,
        "direct_to_emulator": direct_result,
        "overhead_ratio_time_per_request": round(
            direct_result["requests_per_s"] / service_result["requests_per_s"], 2
        ),
        "targets": {"audited_reads_per_s": 2500, "p99_ms": 40, "max_ratio": 3.0},
        "previous": {"audited_reads_per_s": 2000, "p99_ms": 75, "ratio": 4.8},
        **({"service_stalls": stalls} if diagnose else {}),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextlib.contextmanager
def _cpu(pids: dict[str, int], requests: int) -> Iterator[dict[str, float]]:
    """CPU time (user + system) each process spent in the block, in ms per request."""
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    figures: dict[str, float] = {}
    yield figures
    for name, pid in pids.items():
        figures[name] = round((_cpu_seconds(pid) - before[name]) * 1000 / requests, 3)
    figures["total"] = round(sum(figures.values()), 3)


async def _stalls(service: asyncio.subprocess.Process) -> object:
    """Stop a --diagnose worker and read the figures it prints on SIGTERM."""
    assert service.stdout is not None
    service.terminate()
    line = await service.stdout.readline()
    await service.wait()
    return json.loads(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--format", default="full", choices=["full", "metadata", "minimal"])
    parser.add_argument(
        "--workers", type=int, default=2, help="service processes (connector serve --workers)"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy each worker during the measured leg; graphs here"
    )
    parser.add_argument(
        "--diagnose", action="store_true", help="report GC pauses and event-loop lag per worker"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING"],
        help="the workers' log level (connector serve's default is INFO)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the service process
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
    else:
        result = main(args.clients, args.requests, args.format, args.workers,
                      profile=args.profile, diagnose=args.diagnose,
                      log_level=args.log_level)  # fmt: skip
        print(json.dumps(asyncio.run(result)))
