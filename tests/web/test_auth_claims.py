"""Signed tokens with claims of any type, size or script: authentication answers a caller or a
401 problem, never an exception of another kind (which the service would turn into a 500)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.settings import Settings
from connector.web.auth import Caller, Role, TokenVerifier
from connector.web.problems import ProblemError, ProblemType

SECRET = "auth-claims-secret-0123456789abcdef0123456789"
ISSUER, AUDIENCE = "https://platform.example", "gmail-connector"
SETTINGS = Settings(jwt_secret=SECRET)

# Any JSON value: what a platform (or an attacker holding a signing key) could put in a claim.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GOOD_ROLE = st.sampled_from([r.value for r in Role])
GOOD_SUB = st.from_regex(r"[A-Za-z0-9_.:\-]{1,40}", fullmatch=True)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "alice", "role": "user", "iss": ISSUER, "aud": AUDIENCE,
                              "iat": now, "exp": now + 600}  # fmt: skip
    claims.update(overrides)
    return claims


def _verify(claims: dict[str, Any]) -> Caller | ProblemError:
    # Signed as raw JWS: PyJWT's encoder refuses some claim types a signer could still send.
    token = jwt.api_jws.encode(json.dumps(claims).encode(), SECRET, algorithm="HS256")
    try:
        return TokenVerifier(SETTINGS).caller(f"Bearer {token}")
    except ProblemError as refused:
        return refused


@pytest.mark.parametrize(
    "role", [["user"], ["admin", "user"], {"role": "user"}, 1, 1.5, True, None, "", "USER",
             "usér", "user\u2028", "u" * 2_000],
)  # fmt: skip
def test_a_role_claim_that_is_not_a_role_string_is_401(role: Any) -> None:
    """A role claim that is a list, object, number, boolean or unknown string is refused (401)."""
    answer = _verify(_claims(role=role))
    assert isinstance(answer, ProblemError)
    assert answer.kind is ProblemType.UNAUTHENTICATED
    assert "role" in answer.detail


def test_an_expiry_beyond_any_float_is_accepted_as_far_future() -> None:
    """An `exp` larger than a float can hold (PyJWT accepts it) authenticates instead of failing."""
    answer = _verify(_claims(exp=10**400))
    assert answer == Caller("alice", Role.USER)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    role=GOOD_ROLE | JSON,
    sub=GOOD_SUB | JSON,
    exp=st.just(int(time.time()) + 600) | JSON,
    iat=st.just(int(time.time())) | JSON,
    extra=st.dictionaries(st.sampled_from(["nbf", "iss", "aud", "jti", "x", "Ω"]), JSON,
                          max_size=3),
)  # fmt: skip
def test_any_claims_give_a_caller_or_a_401(
    role: Any, sub: Any, exp: Any, iat: Any, extra: dict[str, Any]
) -> None:
    """Fuzzed claim types, unicode and sizes: a valid Caller or a 401 problem, nothing else."""
    claims = _claims(role=role, sub=sub, exp=exp, iat=iat)
    claims.update(extra)
    answer = _verify(claims)
    if isinstance(answer, ProblemError):
        assert answer.kind is ProblemType.UNAUTHENTICATED
        assert answer.status == 401
    else:
        assert answer.role.value == role
        assert answer.sub == sub
