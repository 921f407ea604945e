"""Typed settings from `CONNECTOR_*` environment variables (documented in README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(f"CONNECTOR_{name}", default)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _get(env, name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"CONNECTOR_{name} must be an integer, got {raw!r}") from None


def _list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _get(env, name, default).split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    # Storage
    database_url: str = "sqlite+aiosqlite:///var/connector.db"
    audit_database_url: str = "sqlite:///var/audit.db"
    # Google endpoints; point them at the emulator for demo and tests.
    gmail_api_endpoint: str = "https://gmail.googleapis.com/"
    oauth_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_token_uri: str = "https://oauth2.googleapis.com/token"
    oauth_revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    oauth_userinfo_uri: str = "https://openidconnect.googleapis.com/v1/userinfo"
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_redirect_uris: tuple[str, ...] = ()
    # Token vault keys: "kid:base64key,..." (first is current) or a key file; never the database.
    vault_keys: str = ""
    vault_key_file: Path | None = None
    # Caller authentication (JWT issued by the host platform).
    jwt_issuer: str = "https://platform.example"
    jwt_audience: str = "gmail-connector"
    jwt_secret: str = ""
    # PEM public key file for RS256/ES256/EdDSA tokens; used alongside or instead of the secret.
    jwt_public_key_file: Path | None = None
    jwt_leeway_seconds: int = 30
    # The HTTP service: largest request body accepted (a 35 MB message, base64 in JSON, fits).
    max_request_bytes: int = 50 * 1024 * 1024
    # Where the service is reachable from browsers (OAuth callback, disclosure page links).
    public_base_url: str = ""
    # Background housekeeping: how often stale access requests are swept and the audit
    # head is checkpointed when idle.
    housekeeping_seconds: int = 60
    # Audit signing key (Ed25519, PEM) for checkpoints.
    audit_signing_key_file: Path | None = None
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: int = 60
    # Keyed hashing of addresses, IPs and queries recorded in the audit log.
    audit_hash_key: str = ""
    # Gmail quota regime: "legacy" (250 units/user/s) or "per_minute" (6,000 units/user/min).
    gmail_quota_regime: str = "legacy"
    gmail_max_concurrency_per_user: int = 10
    aggregate_k: int = 5
    host: str = "127.0.0.1"
    port: int = 8080
    # `connector serve` worker processes sharing the port (SO_REUSEPORT). Each takes 1/workers
    # of every per-user Gmail quota, so together they stay within Google's limits.
    workers: int = 1
    log_format: str = "console"
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        key_file = _get(env, "VAULT_KEY_FILE", "")
        signing_key = _get(env, "AUDIT_SIGNING_KEY_FILE", "")
        regime = _get(env, "GMAIL_QUOTA_REGIME", "legacy")
        jwt_key = _get(env, "JWT_PUBLIC_KEY_FILE", "")
        if regime not in {"legacy", "per_minute"}:
            raise SettingsError(
                f"CONNECTOR_GMAIL_QUOTA_REGIME must be 'legacy' or 'per_minute', got {regime!r}"
            )
        log_format = _get(env, "LOG_FORMAT", "console")
        if log_format not in {"json", "console"}:
            raise SettingsError(
                f"CONNECTOR_LOG_FORMAT must be 'json' or 'console', got {log_format!r}"
            )
        return cls(
            database_url=_get(env, "DATABASE_URL", cls.database_url),
            audit_database_url=_get(env, "AUDIT_DATABASE_URL", cls.audit_database_url),
            gmail_api_endpoint=_get(env, "GMAIL_API_ENDPOINT", cls.gmail_api_endpoint),
            oauth_auth_uri=_get(env, "OAUTH_AUTH_URI", cls.oauth_auth_uri),
            oauth_token_uri=_get(env, "OAUTH_TOKEN_URI", cls.oauth_token_uri),
            oauth_revoke_uri=_get(env, "OAUTH_REVOKE_URI", cls.oauth_revoke_uri),
            oauth_userinfo_uri=_get(env, "OAUTH_USERINFO_URI", cls.oauth_userinfo_uri),
            oauth_client_id=_get(env, "OAUTH_CLIENT_ID", ""),
            oauth_client_secret=_get(env, "OAUTH_CLIENT_SECRET", ""),
            oauth_redirect_uris=_list(env, "OAUTH_REDIRECT_URIS", ""),
            vault_keys=_get(env, "VAULT_KEYS", ""),
            vault_key_file=Path(key_file) if key_file else None,
            jwt_issuer=_get(env, "JWT_ISSUER", cls.jwt_issuer),
            jwt_audience=_get(env, "JWT_AUDIENCE", cls.jwt_audience),
            jwt_secret=_get(env, "JWT_SECRET", ""),
            jwt_public_key_file=Path(jwt_key) if jwt_key else None,
            jwt_leeway_seconds=_int(env, "JWT_LEEWAY_SECONDS", cls.jwt_leeway_seconds),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            public_base_url=_get(env, "PUBLIC_BASE_URL", ""),
            housekeeping_seconds=_int(env, "HOUSEKEEPING_SECONDS", cls.housekeeping_seconds),
            audit_signing_key_file=Path(signing_key) if signing_key else None,
            audit_checkpoint_every=_int(env, "AUDIT_CHECKPOINT_EVERY", cls.audit_checkpoint_every),
            audit_checkpoint_seconds=_int(
                env, "AUDIT_CHECKPOINT_SECONDS", cls.audit_checkpoint_seconds
            ),
            audit_hash_key=_get(env, "AUDIT_HASH_KEY", ""),
            gmail_quota_regime=regime,
            gmail_max_concurrency_per_user=_int(
                env, "GMAIL_MAX_CONCURRENCY_PER_USER", cls.gmail_max_concurrency_per_user
            ),
            aggregate_k=_int(env, "AGGREGATE_K", cls.aggregate_k),
            host=_get(env, "HOST", cls.host),
            port=_int(env, "PORT", cls.port),
            workers=_workers(env),
            log_format=log_format,
            log_level=_get(env, "LOG_LEVEL", cls.log_level),
        )


MAX_WORKERS = 64


def _workers(env: Mapping[str, str]) -> int:
    return check_workers(_int(env, "WORKERS", 1), "CONNECTOR_WORKERS")


def check_workers(workers: int, name: str) -> int:
    """`workers` if in 1..MAX_WORKERS; else a SettingsError naming where it came from."""
    if not 1 <= workers <= MAX_WORKERS:
        raise SettingsError(f"{name} must be between 1 and {MAX_WORKERS}, got {workers}")
    return workers
