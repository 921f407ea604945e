"""Link state pinned on SQLite: a `state` works once, is stored only as a hash, expires on time.

Each test starts from a pending link that can be consumed and changes one thing (consume twice,
another state, a failing audit record, the clock at the expiry boundary).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.accounts.link_state import LinkStateStore, PendingLink, TicketClaims, state_hash
from connector.accounts.vault import KeyRing, SecretKind, Vault

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
def engine(sqlite_engine: AsyncEngine) -> AsyncEngine:
    return sqlite_engine


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


@pytest.mark.parametrize(
    "change",
    [{"account_id": "acct7"}, {"browser_hash": "b" * 64}, {"return_url": "https://app.example/x"}],
    ids=["relink target", "browser", "return url"],
)
async def test_optional_fields_are_kept(store: LinkStateStore, change: dict[str, str]) -> None:
    """A relink target, the binding browser and the return URL each come back as stored."""
    link = PendingLink(**{**_fields(PENDING), **change})
    await store.create(STATE, link, _nothing)
    assert await store.consume(STATE) == link


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


EXPIRES = T0 + timedelta(minutes=10)


async def ticket_rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT ticket_hash, browser_hash FROM accounts_link_ticket ORDER BY 1")
        )
        return [tuple(r) for r in result]


async def test_the_first_browser_claims_a_ticket(engine: AsyncEngine) -> None:
    """The first claim wins; the same browser again is still the owner; another is refused."""
    claims = TicketClaims(engine)
    assert await claims.claim("ticket1", "browserA", EXPIRES) is True
    assert await claims.claim("ticket1", "browserA", EXPIRES) is True
    assert await claims.claim("ticket1", "browserB", EXPIRES) is False
    assert await ticket_rows(engine) == [(state_hash("ticket1"), "browserA")]


async def test_owned_by_names_only_the_claiming_browser(engine: AsyncEngine) -> None:
    """owned_by is true for the claiming browser only, and false for an unclaimed ticket."""
    claims = TicketClaims(engine)
    assert await claims.owned_by("ticket1", "browserA") is False
    await claims.claim("ticket1", "browserA", EXPIRES)
    assert await claims.owned_by("ticket1", "browserA") is True
    assert await claims.owned_by("ticket1", "browserB") is False
    assert await claims.owned_by("ticket2", "browserA") is False


async def test_tickets_are_independent(engine: AsyncEngine) -> None:
    """Another ticket is claimed afresh by another browser."""
    claims = TicketClaims(engine)
    await claims.claim("ticket1", "browserA", EXPIRES)
    assert await claims.claim("ticket2", "browserB", EXPIRES) is True
    assert await claims.owned_by("ticket2", "browserB") is True


async def test_ticket_purge_keeps_tickets_expiring_at_now(engine: AsyncEngine) -> None:
    """purge_expired(now) removes tickets that expired before now, not one expiring at now."""
    claims = TicketClaims(engine)
    await claims.claim("old", "b", EXPIRES - timedelta(microseconds=1))
    await claims.claim("edge", "b", EXPIRES)
    await claims.purge_expired(EXPIRES)
    assert await ticket_rows(engine) == [(state_hash("edge"), "b")]
    assert await claims.claim("old", "other", EXPIRES) is True  # purged: free again
