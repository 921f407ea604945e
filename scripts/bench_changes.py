"""Benchmark: mail arriving in Gmail to a signed webhook at the platform, end to end.

N linked accounts (default 1,000) on one PostgreSQL; two `connector serve` processes in push
mode against the emulator's Gmail and Pub/Sub; mail injected into the emulator at a steady rate;
a webhook receiver that verifies every delivery with the Standard Webhooks reference library.
Prints one JSON line: p50/p99 from injection to webhook receipt, changes per second delivered,
events lost (target 0), duplicate event ids delivered, Gmail quota units per change.

    .venv/bin/python scripts/bench_changes.py [--accounts 1000] [--rate 200] [--seconds 20]

PostgreSQL: CONNECTOR_BENCH_PG_URL (an owner login), else a throwaway server from scripts/pg.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import text
from standardwebhooks import Webhook

from audit.schema import WRITER_ROLE
from connector.accounts.store import AccountStore, NewTokens
from connector.accounts.vault import KeyRing, Vault, generate_key_entry
from connector.db import create_engine, migrate
from connector.emulator.quota import QuotaConfig
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "projects/bench-project/topics/gmail"
SUBSCRIPTION = "projects/bench-project/subscriptions/connector"
RAW = b"From: sender@example.com\r\nSubject: bench\r\n\r\nhello\r\n"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    given = os.environ.get("CONNECTOR_BENCH_PG_URL")
    if given:
        yield given
        return
    directory = tempfile.mkdtemp(prefix="bench-changes-pg.")
    started = subprocess.run(["bash", str(ROOT / "scripts/pg.sh"), "start", directory],
                             check=True, capture_output=True, text=True)  # fmt: skip
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        subprocess.run(["bash", str(ROOT / "scripts/pg.sh"), "stop", directory], check=False,
                       capture_output=True)  # fmt: skip


@contextlib.asynccontextmanager
async def _fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server for this run (dropped after it)."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"bench_changes_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = server_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _login_as(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


class Receiver:
    """The platform's webhook endpoint: verifies each delivery, notes when each message came."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.arrived: dict[str, float] = {}  # message id -> first receipt (monotonic)
        self.ids: Counter[str] = Counter()  # webhook-id -> deliveries
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.webhook.verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        now = time.monotonic()
        self.ids[request.headers["webhook-id"]] += 1
        for message_id in _message_ids(json.loads(body)):
            self.arrived.setdefault(message_id, now)
        return web.Response(status=204)


def _message_ids(payload: Any) -> list[str]:
    """Added-message ids in a delivery (one change, or a list of them under "changes")."""
    changes = payload.get("changes") if isinstance(payload, dict) else None
    items = changes if isinstance(changes, list) else [payload]
    found = []
    for item in items:
        data = item.get("data", item) if isinstance(item, dict) else {}
        change = data.get("change", data) if isinstance(data, dict) else {}
        if isinstance(change, dict) and change.get("kind") == "message_added":
            mid = change.get("messageId")
            if isinstance(mid, str):
                found.append(mid)
    return found


async def _seed(url: str, emu: Emulator, accounts: int, keys: str, hash_key: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        store = AccountStore(engine, Vault(KeyRing.parse(keys, source="bench")),
                             hash_key=hash_key.encode())  # fmt: skip

        async def no_audit(_account_id: str, _created: bool) -> None:
            return None

        for i, email in enumerate(emu.users[:accounts]):
            issued = emu.issue_tokens(email)
            tokens = NewTokens(
                issued["refresh_token"], issued["access_token"],
                datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"])),
                frozenset(issued["scope"].split()),
            )  # fmt: skip
            await store.save_link(owner_user_id=f"user-{i}", account_id=None, email=email,
                                  tokens=tokens, before_commit=no_audit)  # fmt: skip
    finally:
        await engine.dispose()


async def _ready(url: str, accounts: int) -> tuple[int, int]:
    """(accounts watched, accounts with a cursor) as the services see them."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT count(watch_expires_at), count(history_id) FROM accounts_sync_state"
            ))).one()  # fmt: skip
        return int(row[0]), int(row[1])
    finally:
        await engine.dispose()


async def _fed_at(url: str, message_ids: Any, mono_offset: float) -> dict[str, float]:
    """When each injected message's `message_added` change was committed to the feed, on the
    monotonic clock of the injector (`created_at` is wall-clock UTC; offset = wall - mono)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT message_id, created_at FROM accounts_change WHERE kind = 'message_added'"
            ))).all()  # fmt: skip
    finally:
        await engine.dispose()
    wanted = set(message_ids)
    found: dict[str, float] = {}
    for message_id, created in rows:
        if message_id in wanted and message_id not in found:
            at = created if created.tzinfo else created.replace(tzinfo=UTC)
            found[message_id] = at.timestamp() - mono_offset
    return found


def _env(url: str, emu: Emulator, port: int, hook: str, secret: str, keys: str,
         hash_key: str) -> dict[str, str]:  # fmt: skip
    return {
        **os.environ,
        "CONNECTOR_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "CONNECTOR_AUDIT_DATABASE_URL": _login_as(url, WRITER_ROLE),
        "CONNECTOR_AUDIT_ADMIN_DATABASE_URL": url,
        "CONNECTOR_AUDIT_HASH_KEY": hash_key,
        "CONNECTOR_JWT_SECRET": "bench-jwt-secret-bench-jwt-secret",
        "CONNECTOR_VAULT_KEYS": keys,
        "CONNECTOR_OAUTH_CLIENT_ID": emu.client_id,
        "CONNECTOR_OAUTH_CLIENT_SECRET": emu.client_secret,
        "CONNECTOR_OAUTH_REDIRECT_URIS": f"http://127.0.0.1:{port}/v1/oauth/callback",
        "CONNECTOR_OAUTH_TOKEN_URI": emu.token_uri,
        "CONNECTOR_OAUTH_AUTH_URI": emu.auth_uri,
        "CONNECTOR_OAUTH_REVOKE_URI": emu.revoke_uri,
        "CONNECTOR_OAUTH_USERINFO_URI": emu.userinfo_uri,
        "CONNECTOR_GMAIL_API_ENDPOINT": emu.gmail_endpoint,
        "CONNECTOR_SYNC_MODE": "push",
        "CONNECTOR_GMAIL_PUSH_TOPIC": TOPIC,
        "CONNECTOR_GMAIL_PUSH_SUBSCRIPTION": SUBSCRIPTION,
        "CONNECTOR_PUBSUB_API_ENDPOINT": emu.pubsub_endpoint,
        "CONNECTOR_PUBSUB_TOKEN": "bench-deployment-token",
        "CONNECTOR_WEBHOOK_URL": hook,
        "CONNECTOR_WEBHOOK_SECRET": secret,
        "CONNECTOR_PORT": str(port),
        "CONNECTOR_LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def _services(envs: list[dict[str, str]]) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "connector",
            "serve",
            env=env,
            cwd=tempfile.gettempdir(),  # no stray .env is read
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for env in envs
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=20)
            if proc.returncode is None:
                proc.kill()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else -1.0


async def bench(accounts: int, rate: float, seconds: float, settle: float) -> dict[str, Any]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    keys, hash_key = generate_key_entry("bench1"), secrets.token_urlsafe(24)
    receiver = Receiver(secret)
    hook_app = web.Application()
    hook_app.router.add_post("/hooks", receiver.handle)
    hook_runner = web.AppRunner(hook_app, access_log=None)
    await hook_runner.setup()
    hook_port = _port()
    await web.TCPSite(hook_runner, "127.0.0.1", hook_port).start()
    config = EmulatorConfig(seed="bench-changes", users=accounts, messages_per_user=1,
                            quota=QuotaConfig(), pubsub_pull_wait=0.5)  # fmt: skip
    with _postgres() as server:
        async with _fresh_database(server) as url, run_emulator(config) as emu:
            emu.pubsub.create_topic(TOPIC)
            emu.pubsub.create_subscription(SUBSCRIPTION, TOPIC, ack_deadline=30)
            await _seed(url, emu, accounts, keys, hash_key)
            hook = f"http://127.0.0.1:{hook_port}/hooks"
            envs = [_env(url, emu, _port(), hook, secret, keys, hash_key) for _ in range(2)]
            async with _services(envs) as procs:
                started = time.monotonic()
                while await _ready(url, accounts) != (accounts, accounts):
                    for proc in procs:
                        if proc.returncode is not None:
                            err = await proc.stderr.read() if proc.stderr else b""
                            raise SystemExit(f"a service exited: {err.decode()[-2000:]}")
                    if time.monotonic() - started > 600:
                        raise SystemExit(f"not ready: {await _ready(url, accounts)}")
                    await asyncio.sleep(0.5)
                warmup = round(time.monotonic() - started, 1)
                pids = " ".join(str(p.pid) for p in procs)
                print(f"bench_changes: injecting (services {pids})", file=sys.stderr, flush=True)
                emu.stats.reset()
                injected: dict[str, float] = {}
                boxes = [emu.state.mailbox(e) for e in emu.users[:accounts]]
                total = int(rate * seconds)
                begin = time.monotonic()
                for n in range(total):
                    due = begin + n / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    box = random.choice(boxes)
                    assert box is not None
                    injected[box.add_message(RAW, ["INBOX", "UNREAD"]).id] = time.monotonic()
                deadline = time.monotonic() + settle
                while (
                    time.monotonic() < deadline
                    and len(receiver.arrived.keys() & injected.keys()) < total
                ):
                    await asyncio.sleep(0.1)
                last = max(receiver.arrived.values(), default=begin)
                fed = await _fed_at(url, injected.keys(), time.time() - time.monotonic())
    await hook_runner.cleanup()
    latencies = [receiver.arrived[m] - t for m, t in injected.items() if m in receiver.arrived]
    delivered = len(latencies)
    units = emu.stats.units_charged
    to_feed = [fed[m] - t for m, t in injected.items() if m in fed]
    feed_to_hook = [receiver.arrived[m] - fed[m] for m in fed if m in receiver.arrived]
    return {
        "bench": "changes",
        "accounts": accounts,
        "instances": 2,
        "rate_target_per_s": rate,
        "injected": total,
        "delivered": delivered,
        "lost": total - delivered,
        "duplicate_event_ids": sum(n - 1 for n in receiver.ids.values() if n > 1),
        "bad_signatures": receiver.bad_signatures,
        "p50_s": round(_quantile(latencies, 0.50), 3),
        "p99_s": round(_quantile(latencies, 0.99), 3),
        "changes_per_s": round(delivered / max(1e-9, last - begin), 1),
        # where the time goes: injection -> committed to the feed -> webhook received
        "to_feed_p50_s": round(_quantile(to_feed, 0.50), 3),
        "to_feed_p99_s": round(_quantile(to_feed, 0.99), 3),
        "feed_to_webhook_p50_s": round(_quantile(feed_to_hook, 0.50), 3),
        "feed_to_webhook_p99_s": round(_quantile(feed_to_hook, 0.99), 3),
        "gmail_units_per_change": round(units / max(1, total), 2),
        "warmup_s": warmup,
        "targets": {"p99_s": 2.0, "rate_per_s": 200, "lost": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="messages injected per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to inject")
    parser.add_argument("--settle", type=float, default=30.0, help="wait for stragglers")
    args = parser.parse_args()
    if args.accounts < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--accounts, --rate and --seconds must be positive")
    print(json.dumps(asyncio.run(bench(args.accounts, args.rate, args.seconds, args.settle))))


if __name__ == "__main__":
    main()
