"""TokenVerifier's cache of verified tokens: a hit still honours expiry; the cache is bounded."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from connector.settings import Settings
from connector.web import auth
from connector.web.auth import Role, TokenVerifier, mint_token
from connector.web.problems import ProblemError, ProblemType

SECRET = "auth-test-secret-0123456789abcdef0123456789"


class Clock:
    """Seconds since the epoch that the test moves by hand, as the verifier's `Clock`."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def _settings() -> Settings:
    return Settings(jwt_secret=SECRET, jwt_leeway_seconds=30)


def test_a_cached_token_is_refused_once_it_expires() -> None:
    clock = Clock()
    verifier = TokenVerifier(_settings(), clock=clock)
    token = mint_token(_settings(), "alice", Role.USER, ttl_seconds=60)
    header = f"Bearer {token}"
    first = verifier.caller(header)
    assert (first.sub, first.role) == ("alice", Role.USER)
    assert verifier.caller(header) == first  # answered from the cache
    clock.now += 60 + 29  # inside the leeway: still accepted, as PyJWT would
    assert verifier.caller(header) == first
    clock.now += 2  # past exp + leeway
    with pytest.raises(ProblemError) as refused:
        verifier.caller(header)
    assert refused.value.kind is ProblemType.UNAUTHENTICATED
    assert "expired" in refused.value.detail
    assert token not in verifier._verified  # a later call goes back to a full PyJWT decode


def test_a_bad_token_is_never_cached() -> None:
    verifier = TokenVerifier(_settings())
    now = int(time.time())
    claims = {"sub": "alice", "role": "user", "iss": "https://platform.example",
              "aud": "gmail-connector", "iat": now, "exp": now + 60}  # fmt: skip
    forged = jwt.encode(claims, "some-other-secret-0123456789abcdef012345", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(ProblemError) as refused:
            verifier.caller(f"Bearer {forged}")
        assert refused.value.kind is ProblemType.UNAUTHENTICATED


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    verifier = TokenVerifier(_settings())
    tokens = [mint_token(_settings(), f"user{i}", Role.USER) for i in range(5)]
    for token in tokens:
        verifier.caller(f"Bearer {token}")
    assert len(verifier._verified) == 3
    assert list(verifier._verified) == tokens[2:]  # least recently used went first
