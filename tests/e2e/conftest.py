"""The service and the Gmail emulator on loopback, on SQLite and on PostgreSQL.

`stack` starts the emulator (seed "e2e"), links alice's and bob's mailboxes out of band (tokens
the emulator issued, refreshed by the real token source) and serves the app on a free port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from audit.schema import WRITER_ROLE
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.ports import StoredCredentials
from connector.settings import Settings
from connector.web.app import AUDIT, create_app
from connector.web.auth import Role, mint_token
from connector.web.keys import SERVICES
from connector.web.server import ServiceRunner
from connector.wiring import PresetAccount, preset_accounts
from tests.audit.helpers import login_as

JWT_SECRET = "e2e-jwt-secret-0123456789abcdef0123456789"
HASH_KEY = "e2e-hash-key-0123456789abcdef"
ALICE, BOB = "acct-alice", "acct-bob"
MAX_BODY = 256 * 1024


@dataclass
class Stack:
    base: str
    emu: Emulator
    app: web.Application
    settings: Settings
    http: aiohttp.ClientSession
    tokens: dict[str, str] = field(default_factory=dict)
    alice_email: str = ""
    bob_email: str = ""

    def token(self, who: str) -> str:
        return self.tokens[who]

    async def call(
        self,
        method: str,
        path: str,
        who: str | None = "alice",
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        hdrs = dict(headers or {})
        if who is not None:
            hdrs["Authorization"] = f"Bearer {self.tokens[who]}"
        async with self.http.request(
            method, self.base + path, json=json, data=data, headers=hdrs, params=params
        ) as response:
            raw = await response.read()
            ctype = response.content_type
            body: Any = raw
            if ctype in ("application/json", "application/problem+json") and raw:
                import json as _json

                body = _json.loads(raw)
            return response.status, body, response

    @property
    def services(self) -> Any:
        return self.app[SERVICES]

    @property
    def audit_log(self) -> Any:
        return self.app[AUDIT]

    async def events(self, **filters: Any) -> list[Any]:
        from audit.records import QueryFilter

        return [s.event for s in await self.audit_log.query(QueryFilter(**filters), limit=10_000)]


def _creds(issued: dict[str, Any]) -> StoredCredentials:
    return StoredCredentials(
        refresh_token=issued["refresh_token"],
        access_token=issued["access_token"],
        expiry=datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"])),
        scopes=frozenset(issued["scope"].split()),
    )


def make_settings(db: str, audit_db: str, emu: Emulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db,
        "audit_database_url": audit_db,
        **emu.connector_settings(),
        "jwt_secret": JWT_SECRET,
        "audit_hash_key": HASH_KEY,
        "max_request_bytes": MAX_BODY,
        "housekeeping_seconds": 3600,
        "aggregate_k": 2,
        "feed_stream_seconds": 1.0,  # a change-feed stream read to its end ends soon
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def stack(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Emulator + service on loopback, alice and bob linked, tokens for every role."""
    async with running_stack(db_url, tmp_path) as s:
        yield s


@contextlib.asynccontextmanager
async def running_stack(db_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """The `stack` fixture's service, with these settings overridden."""
    if db_url.startswith("postgresql"):
        # As in production: the service logs in as audit_writer, migrations run as the owner.
        audit_db = login_as(db_url, WRITER_ROLE)
        overrides = {"audit_admin_database_url": db_url, **overrides}
    else:
        audit_db = f"sqlite:///{tmp_path / 'audit.db'}"
    async with run_emulator(EmulatorConfig(seed="e2e", users=2, messages_per_user=12)) as emu:
        alice_email, bob_email = emu.users[0], emu.users[1]
        presets = {
            ALICE: PresetAccount("alice", _creds(emu.issue_tokens(alice_email))),
            BOB: PresetAccount("bob", _creds(emu.issue_tokens(bob_email))),
        }
        settings = make_settings(db_url, audit_db, emu, **overrides)
        app = create_app(settings, accounts=preset_accounts(presets))
        runner = ServiceRunner(app, settings)  # as `connector serve` listens
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            s = Stack(f"http://127.0.0.1:{port}", emu, app, settings, http,
                      alice_email=alice_email, bob_email=bob_email)  # fmt: skip
            for who, role in (
                ("alice", Role.USER), ("bob", Role.USER), ("op1", Role.OPERATOR),
                ("op2", Role.OPERATOR), ("rev", Role.REVIEWER), ("adm", Role.ADMIN),
            ):  # fmt: skip
                s.tokens[who] = mint_token(settings, who, role)
            try:
                yield s
            finally:
                await runner.cleanup()


async def first_message(s: Stack, who: str = "alice", account: str = ALICE) -> dict[str, Any]:
    status, body, _ = await s.call("GET", f"/v1/accounts/{account}/messages", who,
                                   params={"max_results": "5"})  # fmt: skip
    assert status == 200, body
    return body["messages"][0]


PROBLEM = "application/problem+json"


def assert_problem(status: int, body: object, resp: object, expected: int, slug: str) -> None:
    """The answer is problem+json with this status and problem type, a title and a detail."""
    assert status == expected, body
    assert resp.content_type == PROBLEM  # type: ignore[attr-defined]
    assert isinstance(body, dict)
    assert body["type"] == f"https://connector.dev/problems/{slug}"
    assert body["status"] == expected
    assert body["title"]
    assert body["detail"]
