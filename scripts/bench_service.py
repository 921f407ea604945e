"""Audited reads through the service vs the same reads straight to the emulator.

N concurrent clients (default 64) read messages by id: through the service (JWT auth, policy,
two durable audit appends on SQLite, the Gmail client, the emulator) and directly against the
emulator's Gmail API with the same access token. Prints JSON: requests/s, p50, p99, ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from connector.emulator.server import EmulatorConfig, run_emulator
from connector.logs import configure_logging
from connector.ports import StoredCredentials
from connector.settings import Settings
from connector.web.app import create_app
from connector.web.auth import Role, mint_token
from connector.web.preset_accounts import PresetAccount, preset_accounts


async def _drive(
    http: aiohttp.ClientSession,
    urls: list[tuple[str, dict[str, str]]],
    clients: int,
    total: int,
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


async def main(clients: int, total: int, fmt: str) -> dict[str, object]:
    configure_logging("console", "WARNING")
    logging.getLogger("connector").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        # Gmail's per-user quota (250 units/s, messages.get = 5) caps one mailbox at 50 reads/s,
        # so the clients read from one mailbox each, as a platform's users would.
        config = EmulatorConfig(seed="bench", users=clients, messages_per_user=20)
        async with run_emulator(config) as emu:
            presets, issued = {}, {}
            for n, email in enumerate(emu.users):
                grant = emu.issue_tokens(email)
                issued[f"acct{n}"] = grant
                presets[f"acct{n}"] = PresetAccount(f"u{n}", StoredCredentials(
                    grant["refresh_token"], grant["access_token"],
                    datetime.now(UTC) + timedelta(seconds=int(grant["expires_in"])),
                    frozenset(grant["scope"].split()),
                ))  # fmt: skip
            settings = Settings(
                database_url=f"sqlite:///{Path(tmp) / 'c.db'}",
                audit_database_url=f"sqlite:///{Path(tmp) / 'a.db'}",
                gmail_api_endpoint=emu.gmail_endpoint, oauth_token_uri=emu.token_uri,
                oauth_client_id=emu.client_id, oauth_client_secret=emu.client_secret,
                jwt_secret="bench-secret-0123456789abcdef0123456789",
                audit_hash_key="bench-hash-key", log_level="WARNING",
            )  # fmt: skip
            app = create_app(settings, accounts=preset_accounts(presets))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            service_urls: list[tuple[str, dict[str, str]]] = []
            direct_urls: list[tuple[str, dict[str, str]]] = []
            connector = aiohttp.TCPConnector(limit=clients * 2)
            async with aiohttp.ClientSession(connector=connector) as http:
                for n in range(clients):
                    auth = {"Authorization": f"Bearer {mint_token(settings, f'u{n}', Role.USER)}"}
                    direct_auth = {"Authorization": f"Bearer {issued[f'acct{n}']['access_token']}"}
                    async with http.get(
                        f"{base}/v1/accounts/acct{n}/messages?format=ids&max_results=20",
                        headers=auth,
                    ) as r:
                        ids = [m["id"] for m in (await r.json())["messages"]]
                    for i in ids[:5]:
                        service_urls.append(
                            (f"{base}/v1/accounts/acct{n}/messages/{i}?format={fmt}", auth)
                        )
                        direct_urls.append(
                            (f"{emu.base_url}gmail/v1/users/me/messages/{i}?format={fmt}",
                             direct_auth)
                        )  # fmt: skip
                # interleave so that consecutive requests hit different mailboxes
                order = sorted(range(len(service_urls)), key=lambda k: (k % 5, k // 5))
                service_urls = [service_urls[k] for k in order]
                direct_urls = [direct_urls[k] for k in order]
                await _drive(http, service_urls, clients, 500)  # warm-up
                await _drive(http, direct_urls, clients, 500)
                await asyncio.sleep(1.5)  # let the per-user quota windows refill
                direct = await _drive(http, direct_urls, clients, total)
                await asyncio.sleep(1.5)
                service = await _drive(http, service_urls, clients, total)
            await runner.cleanup()
    return {
        "clients": clients,
        "format": fmt,
        "storage": "sqlite (connector + audit, WAL, synchronous=FULL for audit commits)",
        "service": service,
        "direct_to_emulator": direct,
        "overhead_ratio_time_per_request": round(
            direct["requests_per_s"] / service["requests_per_s"], 2
        ),
        "targets": {"audited_reads_per_s": 1500, "p99_ms": 50, "max_ratio": 1.5},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--format", default="full", choices=["full", "metadata", "minimal"])
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clients, args.requests, args.format)), indent=2))
