"""OAuth clients, authorization codes, refresh and access tokens. Pure data, no I/O."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

ACCESS_TOKEN_LIFETIME = 3599  # seconds; the value live Google returns
CODE_LIFETIME = 600


@dataclass(slots=True)
class AuthCode:
    code: str
    client_id: str
    email: str
    redirect_uri: str
    scopes: tuple[str, ...]
    offline: bool
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass(slots=True)
class RefreshToken:
    token: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass(slots=True)
class AccessToken:
    token: str
    client_id: str
    email: str
    scopes: frozenset[str]
    expires_at: float
    refresh_token: str | None
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass
class TokenStore:
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    lifetime: int = ACCESS_TOKEN_LIFETIME

    def new_code(self, **kwargs: object) -> AuthCode:
        code = AuthCode(
            code="4/0Aemu" + secrets.token_urlsafe(32),
            expires_at=time.time() + CODE_LIFETIME,
            **kwargs,  # type: ignore[arg-type]
        )
        self.codes[code.code] = code
        return code

    def new_refresh(self, client_id: str, email: str, scopes: tuple[str, ...]) -> RefreshToken:
        token = RefreshToken("1//0emu" + secrets.token_urlsafe(40), client_id, email, scopes)
        self.refresh_tokens[token.token] = token
        return token

    def new_access(
        self, client_id: str, email: str, scopes: tuple[str, ...], refresh: str | None
    ) -> AccessToken:
        token = AccessToken(
            "ya29.emu" + secrets.token_urlsafe(48),
            client_id,
            email,
            frozenset(scopes),
            time.time() + self.lifetime,
            refresh,
        )
        self.access_tokens[token.token] = token
        return token

    def lookup_access(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or not found.valid(time.time()):
            return None
        return found

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; revoking either kills the grant's pair."""
        refresh = self.refresh_tokens.get(token)
        access = self.access_tokens.get(token)
        if refresh is None and access is None:
            return False
        if access is not None:
            if access.revoked:
                return False
            access.revoked = True
            if access.refresh_token:
                refresh = self.refresh_tokens.get(access.refresh_token)
        if refresh is not None:
            if refresh.revoked and access is None:
                return False
            refresh.revoked = True
            for other in self.access_tokens.values():
                if other.refresh_token == refresh.token:
                    other.revoked = True
        return True

    def revoke_user(self, email: str) -> None:
        for refresh in self.refresh_tokens.values():
            if refresh.email == email:
                refresh.revoked = True
        for access in self.access_tokens.values():
            if access.email == email:
                access.revoked = True

    def expire_access(self, email: str | None = None) -> None:
        for access in self.access_tokens.values():
            if email is None or access.email == email:
                access.expires_at = 0.0
