"""Several real `connector serve` processes on one PostgreSQL, against the emulator: the harness
of the multi-instance tests and of `scripts/bench_changes.py`.

`seed_accounts` links N emulator mailboxes straight into the database (tokens sealed as a link
would); `service_env` is the environment of one push-mode instance delivering webhooks to a
`WebhookSink`, which verifies every delivery with the Standard Webhooks reference library;
`services` starts the processes and stops them (SIGTERM, then SIGKILL); `ready` counts the
accounts the instances have watched and baselined.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import text
from standardwebhooks import Webhook

from audit.schema import WRITER_ROLE
from connector.accounts.store import AccountStore, NewTokens
from connector.accounts.vault import KeyRing, Vault
from connector.clock import system_clock
from connector.db import create_engine, migrate

if TYPE_CHECKING:  # the emulator is handed in by the caller; nothing here runs it
    from connector.emulator.server import Emulator

TOPIC = "projects/bench-project/topics/gmail"
SUBSCRIPTION = "projects/bench-project/subscriptions/connector"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a sink or an instance about to start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookSink:
    """The platform's webhook endpoint: verifies each delivery, notes when each message came."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.arrived: dict[str, float] = {}  # message id -> first receipt (monotonic)
        self.ids: Counter[str] = Counter()  # webhook-id -> deliveries
        self.events_of: dict[str, set[str]] = {}  # message id -> the webhook-ids that carried it
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.webhook.verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        now = time.monotonic()
        event_id = request.headers["webhook-id"]
        self.ids[event_id] += 1
        for message_id in added_message_ids(json.loads(body)):
            self.arrived.setdefault(message_id, now)
            self.events_of.setdefault(message_id, set()).add(event_id)
        return web.Response(status=204)

    def duplicates(self) -> int:
        """Deliveries beyond the first of one event id (allowed: the receiver dedupes)."""
        return sum(n - 1 for n in self.ids.values() if n > 1)


def added_message_ids(payload: Any) -> list[str]:
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


@contextlib.asynccontextmanager
async def sink_server(sink: WebhookSink, port: int) -> AsyncIterator[str]:
    """Serve `sink` on 127.0.0.1:`port`; the hook URL."""
    app = web.Application()
    app.router.add_post("/hooks", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        await runner.cleanup()


async def seed_accounts(url: str, emu: Emulator, accounts: int, keys: str, hash_key: str) -> None:
    """Link the first `accounts` emulator mailboxes (user-0, user-1, ...) into the database."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        store = AccountStore(engine, Vault(KeyRing.parse(keys, source="fleet")),
                             hash_key=hash_key.encode())  # fmt: skip

        async def no_audit(_account_id: str, _created: bool) -> None:
            return None

        for i, email in enumerate(emu.users[:accounts]):
            issued = emu.issue_tokens(email)
            tokens = NewTokens(
                issued["refresh_token"], issued["access_token"],
                system_clock() + timedelta(seconds=int(issued["expires_in"])),
                frozenset(issued["scope"].split()),
            )  # fmt: skip
            await store.save_link(owner_user_id=f"user-{i}", account_id=None, email=email,
                                  tokens=tokens, before_commit=no_audit)  # fmt: skip
    finally:
        await engine.dispose()


_PG_SH = Path(__file__).resolve().parents[2] / "scripts" / "pg.sh"


@contextlib.contextmanager
def bench_postgres(prefix: str) -> Iterator[str]:
    """A benchmark's PostgreSQL server: CONNECTOR_BENCH_PG_URL (an owner login), else a
    throwaway one from scripts/pg.sh, stopped (and its directory removed) afterwards."""
    given = os.environ.get("CONNECTOR_BENCH_PG_URL")
    if given:
        yield given
        return
    directory = tempfile.mkdtemp(prefix=f"{prefix}-pg.")
    pg_sh = [shutil.which("bash") or "/bin/bash", str(_PG_SH)]
    started = subprocess.run([*pg_sh, "start", directory],  # noqa: S603 (our script, our args)
                             check=True, capture_output=True, text=True)  # fmt: skip
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([*pg_sh, "stop", directory], check=False,  # noqa: S603 (as above)
                       capture_output=True)  # fmt: skip


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new, empty database on the server for one run (dropped after it)."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = server_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def query(url: str, sql: str) -> list[Any]:
    """The rows of one read-only `sql` on the database `url` (its own short-lived engine)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def ready(url: str) -> tuple[int, int]:
    """(accounts watched, accounts with a cursor) as the services see them."""
    [row] = await query(
        url, "SELECT count(watch_expires_at), count(history_id) FROM accounts_sync_state"
    )
    return int(row[0]), int(row[1])


def _login_as(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def service_env(
    url: str, emu: Emulator, *, port: int, hook: str, secret: str, keys: str, hash_key: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """One push-mode instance on the database `url` (an owner login), delivering to `hook`."""
    return {
        **os.environ,
        "CONNECTOR_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://", 1),
        "CONNECTOR_AUDIT_DATABASE_URL": _login_as(url, WRITER_ROLE),
        "CONNECTOR_AUDIT_ADMIN_DATABASE_URL": url,
        "CONNECTOR_AUDIT_HASH_KEY": hash_key,
        "CONNECTOR_JWT_SECRET": "fleet-jwt-secret-fleet-jwt-secret",
        "CONNECTOR_VAULT_KEYS": keys,
        **emu.connector_env(),
        "CONNECTOR_OAUTH_REDIRECT_URIS": f"http://127.0.0.1:{port}/v1/oauth/callback",
        "CONNECTOR_SYNC_MODE": "push",
        "CONNECTOR_GMAIL_PUSH_TOPIC": TOPIC,
        "CONNECTOR_GMAIL_PUSH_SUBSCRIPTION": SUBSCRIPTION,
        "CONNECTOR_PUBSUB_API_ENDPOINT": emu.pubsub_endpoint,
        "CONNECTOR_PUBSUB_TOKEN": "fleet-deployment-token",
        "CONNECTOR_WEBHOOK_URL": hook,
        "CONNECTOR_WEBHOOK_SECRET": secret,
        "CONNECTOR_PORT": str(port),
        "CONNECTOR_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }


@dataclass(eq=False)
class Service:
    """One `connector serve` process and the file its stderr goes to. A file, not a pipe: a
    pipe nobody reads fills at 64 KiB of warnings, and the service then blocks in its logger,
    stalling its event loop mid-run (a benchmark's stragglers)."""

    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, limit: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-limit:]


@contextlib.asynccontextmanager
async def services(envs: list[dict[str, str]]) -> AsyncIterator[list[Service]]:
    """`connector serve` per environment; stopped with SIGTERM (SIGKILL after 20 s) on exit.
    Their stderr is kept in a temporary directory, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="fleet-") as logs:
        started: list[Service] = []
        try:
            for n, env in enumerate(envs):
                log = Path(logs) / f"serve-{n}.log"
                with log.open("wb") as sink:  # the child keeps its own descriptor
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "connector", "serve", env=env,
                        cwd=tempfile.gettempdir(),  # no stray .env is read
                        stdout=asyncio.subprocess.DEVNULL, stderr=sink,
                    )  # fmt: skip
                started.append(Service(proc, log))
            yield started
        finally:
            for service in started:
                if service.proc.returncode is None:
                    service.proc.send_signal(signal.SIGTERM)
            for service in started:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(service.proc.wait(), timeout=20)
                if service.proc.returncode is None:
                    service.proc.kill()
                    await service.proc.wait()


async def wait_ready(url: str, accounts: int, procs: list[Service], give_up: float = 600) -> None:
    """Until every account is watched and baselined; SystemExit if a service exits first."""
    started = time.monotonic()
    while await ready(url) != (accounts, accounts):
        for service in procs:
            if service.proc.returncode is not None:
                raise SystemExit(f"a service exited: {service.log_tail()}")
        if time.monotonic() - started > give_up:
            raise SystemExit(f"not ready: {await ready(url)}")
        await asyncio.sleep(0.5)
