"""Caller authentication: signed bearer JWTs as the host platform issues them.

Accepted: HS256 with `CONNECTOR_JWT_SECRET`, and/or RS256 / ES256 / EdDSA with the PEM public key
in `CONNECTOR_JWT_PUBLIC_KEY_FILE`. Issuer, audience and expiry are always checked; `sub` and
`role` are required. The token itself never reaches a log or the audit trail.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from audit.event import IDENTIFIER, Actor
from audit.vocab import ActorKind
from connector.clock import Clock, system_clock
from connector.settings import Settings
from connector.web.problems import ProblemError, ProblemType

ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
# Verified tokens remembered per process: a platform client sends the same token on every call
# until it expires, and a full PyJWT decode (base64, JSON, HMAC/signature, claim checks) was
# ~10% of the service's CPU per request. Bounded so a flood of distinct tokens cannot grow it.
VERIFIED_CACHE_SIZE = 4096
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9._~+/=-]+)$")
MAX_TOKEN_CHARS = 8192


class Role(StrEnum):
    USER = "user"
    OPERATOR = "operator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


_ROLES = frozenset(r.value for r in Role)

_ACTOR_KIND = {
    Role.USER: ActorKind.USER,
    Role.OPERATOR: ActorKind.OPERATOR,
    Role.REVIEWER: ActorKind.REVIEWER,
    Role.ADMIN: ActorKind.ADMIN,
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the platform's user/staff id and the role the platform gave them."""

    sub: str
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor(_ACTOR_KIND[self.role], self.sub)


def _unauthenticated(detail: str) -> ProblemError:
    return ProblemError(
        ProblemType.UNAUTHENTICATED,
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="connector"'},
    )


class TokenVerifier:
    """Verifies bearer tokens against the configured keys, issuer and audience."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock) -> None:
        self._keys: list[tuple[Any, list[str]]] = []
        if settings.jwt_secret:
            self._keys.append((settings.jwt_secret, ["HS256"]))
        if settings.jwt_public_key_file is not None:
            pem = settings.jwt_public_key_file.read_bytes()
            self._keys.append((pem, list(ASYMMETRIC_ALGORITHMS)))
        if not self._keys:
            raise ValueError(
                "caller authentication needs CONNECTOR_JWT_SECRET or CONNECTOR_JWT_PUBLIC_KEY_FILE"
            )
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        # token -> (caller, exp): what a successful decode proved. The signature, issuer,
        # audience and nbf cannot change for the same token string under the same keys, so a
        # hit only re-checks expiry (with the same leeway PyJWT applies).
        self._verified: OrderedDict[str, tuple[Caller, int]] = OrderedDict()
        self._clock = clock

    def caller(self, authorization: str | None) -> Caller:
        """The caller named by an `Authorization: Bearer ...` header, or a 401 problem."""
        if not authorization:
            raise _unauthenticated("send 'Authorization: Bearer <token>' issued by the platform")
        match = _BEARER.fullmatch(authorization.strip())
        if match is None or len(authorization) > MAX_TOKEN_CHARS:
            raise _unauthenticated("the Authorization header is not a well-formed bearer token")
        token = match.group(1)
        known = self._verified.get(token)
        if known is not None:
            caller, exp = known
            if self._clock().timestamp() < exp + self._leeway:
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]
            raise _unauthenticated("the token has expired; ask the platform for a new one")
        claims = self._decode(token)
        sub, role = claims.get("sub"), claims.get("role")
        if not isinstance(sub, str) or not IDENTIFIER.fullmatch(sub):
            raise _unauthenticated("the token's 'sub' claim is missing or not an identifier")
        # Claims are any JSON the signer chose: check the type before using the value (a list
        # is unhashable, an integer past a float's range cannot become a float).
        if not isinstance(role, str) or role not in _ROLES:
            raise _unauthenticated(f"the token's 'role' claim must be one of {', '.join(Role)}")
        caller = Caller(sub, Role(role))
        self._verified[token] = (caller, int(claims["exp"]))  # PyJWT checked int(exp) works
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return caller

    def _decode(self, token: str) -> dict[str, Any]:
        last: jwt.PyJWTError | None = None
        for key, algorithms in self._keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                )
                return claims
            except jwt.ExpiredSignatureError:
                raise _unauthenticated(
                    "the token has expired; ask the platform for a new one"
                ) from None
            except jwt.PyJWTError as exc:
                last = exc
        reason = type(last).__name__ if last is not None else "InvalidTokenError"
        raise _unauthenticated(f"the token was rejected ({reason})")


def mint_token(
    settings: Settings,
    sub: str,
    role: Role,
    *,
    ttl_seconds: int = 3600,
    clock: Clock = system_clock,
) -> str:
    """An HS256 token as the platform would issue it (development and tests)."""
    if not settings.jwt_secret:
        raise ValueError("minting needs CONNECTOR_JWT_SECRET")
    if not IDENTIFIER.fullmatch(sub):
        raise ValueError("sub must be an identifier (letters, digits, '_.:-')")
    now = int(clock().timestamp())
    claims = {
        "sub": sub,
        "role": Role(role).value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
