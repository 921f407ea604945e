"""Fixtures: the emulator (OAuth consent page and token endpoint) on loopback and a real
in-memory audit log whose events the tests assert exactly (the aiohttp `session` is the root
conftest's)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.memory import MemoryAuditLog
from audit.vocab import Action
from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.credentials import RefreshingTokenSource
from connector.accounts.link_state import LinkStateStore
from connector.accounts.oauth import LinkConfig, LinkService
from connector.accounts.scopes import Feature
from connector.accounts.store import AccountStore, LinkedAccount
from connector.accounts.vault import KeyRing, Vault, generate_key_entry
from connector.db import create_engine, migrate
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.policy.authority import Authority
from connector.policy.recorder import Recorder
from connector.settings import Settings

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
FAST = (0.0, 0.0)  # retry delays for tests: bounded attempts without waiting


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator with two seeded users; the consent page is shown (no auto-approve)."""
    config = EmulatorConfig(seed="linking", users=2, messages_per_user=2, auto_approve=False)
    async with run_emulator(config) as e:
        yield e


@pytest.fixture
def audit_log() -> MemoryAuditLog:
    """A real (chained, verifiable) audit log in memory."""
    return MemoryAuditLog()


def actions(log: MemoryAuditLog) -> list[Action]:
    return [e.action for e in log.events]


def refresh_calls(emu: Emulator) -> int:
    """Token-endpoint calls that minted an access token (the emulator keeps every one)."""
    return len(emu.tokens.access_tokens)


REDIRECT = "http://127.0.0.1:8765/oauth/callback"
HASH_KEY = b"test-hash-key"


@dataclass
class Linking:
    """Everything a linking test needs, wired over one database."""

    engine: AsyncEngine
    vault: Vault
    accounts: AccountStore
    credentials: VaultCredentialStore
    service: LinkService
    emu: Emulator
    session: aiohttp.ClientSession
    audit: MemoryAuditLog
    url: str
    keys: str  # the vault's key entries ("k1:base64"), as CONNECTOR_VAULT_KEYS holds them

    def authority(self) -> Authority:
        """Decide-and-record over this wiring's accounts and audit log."""
        return Authority(Recorder(self.audit), self.accounts)

    def token_source(self) -> RefreshingTokenSource:
        return RefreshingTokenSource(
            self.credentials,
            token_uri=self.emu.token_uri,
            client_id=self.emu.client_id,
            client_secret=self.emu.client_secret,
            session=self.session,
            authority=self.authority(),
            retry_delays=FAST,
        )


def vault_keys(*kids: str) -> str:
    return ",".join(generate_key_entry(k) for k in kids)


def link_config(emu: Emulator) -> LinkConfig:
    """The link configuration the service would read from settings pointing at `emu`."""
    settings = Settings(**emu.connector_settings(), oauth_redirect_uris=(REDIRECT,))
    return LinkConfig.from_settings(settings, app_name="Acme Inbox")


@contextlib.asynccontextmanager
async def linking_over(
    url: str, emu: Emulator, session: aiohttp.ClientSession, audit: MemoryAuditLog
) -> AsyncIterator[Linking]:
    engine = create_engine(url)
    try:
        await migrate(engine)
        keys = vault_keys("k1")
        vault = Vault(KeyRing.parse(keys, source="test"))
        accounts = AccountStore(engine, vault, hash_key=HASH_KEY)
        service = LinkService(
            link_config(emu),
            accounts=accounts,
            states=LinkStateStore(engine, vault),
            session=session,
            authority=Authority(Recorder(audit), accounts),
            retry_delays=FAST,
        )
        yield Linking(
            engine, vault, accounts, VaultCredentialStore(engine, vault), service, emu, session,
            audit, url, keys,
        )  # fmt: skip
    finally:
        await engine.dispose()


@pytest.fixture
async def linking(
    db_url: str, emu: Emulator, session: aiohttp.ClientSession, audit_log: MemoryAuditLog
) -> AsyncIterator[Linking]:
    """The link service, stores and vault over a migrated database (SQLite and PostgreSQL)."""
    async with linking_over(db_url, emu, session, audit_log) as wired:
        yield wired


@pytest.fixture
async def sqlite_linking(
    tmp_path: Path, emu: Emulator, session: aiohttp.ClientSession, audit_log: MemoryAuditLog
) -> AsyncIterator[Linking]:
    """The same wiring over SQLite only, for tests whose point is not the engine."""
    async with linking_over(f"sqlite:///{tmp_path / 'l.db'}", emu, session, audit_log) as wired:
        yield wired


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.scopes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "scope":
            self.scopes.append(a.get("value", ""))


@dataclass
class Callback:
    code: str | None
    state: str | None
    error: str | None
    granted: str | None


async def consent(
    session: aiohttp.ClientSession,
    emu: Emulator,
    authorization_url: str,
    *,
    untick: tuple[str, ...] = (),
    approve: bool = True,
    login: str | None = None,
) -> Callback:
    """Act as the browser on the emulator's consent page: tick boxes, submit, catch redirect."""
    async with session.get(authorization_url, allow_redirects=False) as page:
        assert page.status == 200, await page.text()
        parser = _FormParser()
        parser.feed(await page.text())
    form = list(parser.fields)
    form += [("scope", s) for s in parser.scopes if s not in untick]
    form += [("login", login or emu.users[0]), ("action", "approve" if approve else "deny")]
    action = urljoin(authorization_url, parser.action)
    async with session.post(action, data=form, allow_redirects=False) as answer:
        assert answer.status == 302, await answer.text()
        location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)

    def one(name: str) -> str | None:
        return query[name][0] if name in query else None

    return Callback(one("code"), one("state"), one("error"), one("scope"))


async def start_and_consent(
    wired: Linking,
    features: tuple[Feature, ...] = (Feature.READ,),
    *,
    user_id: str = "user-1",
    account_id: str | None = None,
    untick: tuple[str, ...] = (),
    approve: bool = True,
    login: str | None = None,
) -> Callback:
    """Disclosure accepted, then the consent page answered: the callback the browser brings."""
    start = await wired.service.start_link(
        user_id=user_id, features=features, redirect_uri=REDIRECT, disclosure_accepted=True,
        account_id=account_id,
    )  # fmt: skip
    return await consent(
        wired.session, wired.emu, start.authorization_url, untick=untick, approve=approve,
        login=login,
    )  # fmt: skip


async def link_account(
    wired: Linking,
    features: tuple[Feature, ...] = (Feature.READ, Feature.SEND),
    *,
    user_id: str = "user-1",
    untick: tuple[str, ...] = (),
    login: str | None = None,
) -> LinkedAccount:
    """The whole happy path: disclosure accepted, consent page, callback, completion."""
    callback = await start_and_consent(wired, features, user_id=user_id, untick=untick,
                                       login=login)  # fmt: skip
    assert callback.state is not None
    return await wired.service.complete_link(
        state=callback.state, code=callback.code, user_id=user_id
    )
