"""Link state pinned on SQLite: a `state` works once, is stored only as a hash, expires on time.

Each test starts from a pending link that can be consumed and changes one thing (consume twice,
another state, a failing audit record, the clock at the expiry boundary).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.accounts.link_state import LinkStateStore, PendingLink, state_hash
from connector.accounts.vault import KeyRing, SecretKind, Vault
from connector.db import create_engine, migrate

T0 = datetime(2026, 5, 1, 9, 30, 15, 250000, tzinfo=UTC)
VAULT = Vault(KeyRing("k1", {"k1": bytes(range(32))}))
PENDING = PendingLink(
    user_id="user1",
    account_id=None,
    code_verifier="verifier-" + "v" * 50,
    scopes=("openid", "https://www.googleapis.com/auth/gmail.readonly"),
    redirect_uri="https://app.example/callback",
    created_at=T0,
    expires_at=T0 + timedelta(minutes=10),
)
STATE = "state-0123456789abcdef"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'links.sqlite'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> LinkStateStore:
    return LinkStateStore(engine, VAULT)


async def _nothing() -> None:
    return None


async def rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT state_hash, user_id, code_verifier_sealed FROM accounts_link_state")
        )
        return [tuple(r) for r in result]


def test_state_hash_is_sha256_hex() -> None:
    """The stored key is the SHA-256 of the state's UTF-8 bytes, as lowercase hex."""
    assert state_hash("s") == hashlib.sha256(b"s").hexdigest()
    assert state_hash("é") == hashlib.sha256("é".encode()).hexdigest()
    assert len(state_hash(STATE)) == 64


async def test_create_then_consume_returns_the_link(store: LinkStateStore) -> None:
    """A stored pending link comes back whole: verifier opened, scopes, aware timestamps."""
    await store.create(STATE, PENDING, _nothing)
    got = await store.consume(STATE)
    assert got == PENDING
    assert got is not None
    assert got.expires_at.tzinfo is not None
    assert got.scopes == PENDING.scopes


async def test_relink_target_is_kept(store: LinkStateStore) -> None:
    """A relink names its account, and consume returns it."""
    relink = PendingLink(**{**_fields(PENDING), "account_id": "acct7"})
    await store.create(STATE, relink, _nothing)
    assert await store.consume(STATE) == relink


def _fields(link: PendingLink) -> dict[str, object]:
    return {f: getattr(link, f) for f in link.__dataclass_fields__}


async def test_a_state_works_once(store: LinkStateStore, engine: AsyncEngine) -> None:
    """The second consume of the same state finds nothing, and the row is gone."""
    await store.create(STATE, PENDING, _nothing)
    assert await store.consume(STATE) == PENDING
    assert await store.consume(STATE) is None
    assert await rows(engine) == []


async def test_another_state_finds_nothing(store: LinkStateStore, engine: AsyncEngine) -> None:
    """An unknown state (even one differing by a character) consumes nothing and deletes nothing."""
    await store.create(STATE, PENDING, _nothing)
    assert await store.consume(STATE + "x") is None
    assert await store.consume("") is None
    assert len(await rows(engine)) == 1
    assert await store.consume(STATE) == PENDING


async def test_only_the_hash_and_a_sealed_verifier_are_stored(
    store: LinkStateStore, engine: AsyncEngine
) -> None:
    """The row holds the state's hash and the verifier sealed for that hash, never plaintext."""
    await store.create(STATE, PENDING, _nothing)
    ((key, user, sealed),) = await rows(engine)
    assert (key, user) == (state_hash(STATE), "user1")
    assert STATE not in str(sealed)
    assert PENDING.code_verifier not in str(sealed)
    assert isinstance(sealed, str)
    opened = VAULT.open(sealed, owner_id=state_hash(STATE), kind=SecretKind.CODE_VERIFIER)
    assert opened == PENDING.code_verifier


async def test_before_commit_runs_once_inside_the_transaction(
    store: LinkStateStore, engine: AsyncEngine
) -> None:
    """The audit callback runs once, after the row is written and before it is committed."""
    seen: list[int] = []

    async def record() -> None:
        seen.append(len(await rows(engine)))

    await store.create(STATE, PENDING, record)
    assert seen == [0]  # another connection cannot see the uncommitted row yet
    assert len(await rows(engine)) == 1


async def test_a_failing_audit_record_stores_nothing(
    store: LinkStateStore, engine: AsyncEngine
) -> None:
    """If the audit record fails, the pending link is rolled back: the state never works."""

    async def fail() -> None:
        raise ConnectionError("audit store unavailable")

    with pytest.raises(ConnectionError):
        await store.create(STATE, PENDING, fail)
    assert await rows(engine) == []
    assert await store.consume(STATE) is None


async def test_purge_removes_only_links_expired_before_now(
    store: LinkStateStore, engine: AsyncEngine
) -> None:
    """purge_expired(now) deletes links whose expiry is before now; one expiring at now stays."""
    now = T0 + timedelta(minutes=10)
    for name, expires in [("old", now - timedelta(microseconds=1)), ("edge", now),
                          ("new", now + timedelta(seconds=1))]:  # fmt: skip
        link = PendingLink(**{**_fields(PENDING), "expires_at": expires})
        await store.create(name, link, _nothing)
    assert await store.purge_expired(now) == 1
    assert await store.consume("old") is None
    edge = await store.consume("edge")
    assert edge is not None
    assert edge.expires_at == now
    assert await store.consume("new") is not None
    assert await store.purge_expired(now + timedelta(days=1)) == 0


async def test_reprs_hide_secrets(store: LinkStateStore) -> None:
    """Neither the store nor a pending link shows the verifier, user or redirect in its repr."""
    assert repr(store) == "LinkStateStore()"
    text_ = repr(PENDING)
    assert text_ == f"PendingLink(account_id=None, expires_at={PENDING.expires_at!r})"
    assert PENDING.code_verifier not in text_
