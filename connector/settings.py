"""Typed settings from `CONNECTOR_*` environment variables, a `.env` file and `*_FILE` secrets
(documented in README; `connector check-config` shows what the service would run with)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from audit.segments import ArchivePeriod
from connector.errors import ConnectorError
from connector.settings_sources import (
    Origin,
    SecretFilesSource,
    VariablesSource,
    archive_problems,
    audit_key_problems,
    describe,
    dotenv_file,
    read_dotenv,
    settable_fields,
    variable,
    witness_problems,
)

MAX_WORKERS = 64


class SettingsError(ConnectorError, ValueError):
    """Settings are missing or malformed; the message names each variable, one per line."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            lines = "".join(f"\n  {problem}" for problem in problems)
            super().__init__(f"{len(problems)} problems with the settings:{lines}")


class _InvalidFieldsError(SettingsError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(*fields.values())
        self.fields = fields


class QuotaRegime(StrEnum):
    LEGACY = "legacy"  # 250 units per user per second (moving average)
    PER_MINUTE = "per_minute"  # 6,000 units per user per minute


class SyncMode(StrEnum):
    """How new mail reaches the change feed (`connector.live`)."""

    OFF = "off"  # nothing syncs in the background
    POLL = "poll"  # history.list for every account every CONNECTOR_SYNC_POLL_SECONDS
    PUSH = "push"  # Gmail push via Pub/Sub, with polling as the safety net


_PUBSUB_NAME = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/(topics|subscriptions)/"
                          r"[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")  # fmt: skip


def _pubsub_name(kind: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        match = _PUBSUB_NAME.match(value)
        if value and (match is None or match.group(1) != kind):
            raise ValueError(f"must look like projects/<project>/{kind}/<name>")
        return value

    return check


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _http_url_or_empty(value: str) -> str:
    return _http_url(value) if value else value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


_FRAME_SOURCE = re.compile(r"^(?:'self'|'none'|https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?)$")


def _frame_source(value: str) -> str:
    # Each value goes into a Content-Security-Policy header: no spaces, quotes or ';' beyond
    # the two keywords, so a setting cannot add directives.
    if not _FRAME_SOURCE.fullmatch(value):
        raise ValueError("must be 'self', 'none' or an origin such as https://platform.example")
    return value


def _empty_is_none(value: object) -> object:
    return None if value == "" else value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
Secret = Annotated[str, Field(repr=False)]  # kept out of repr() and so out of tracebacks and logs
OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_none)]
Positive = Annotated[int, Field(ge=1)]


class Settings(BaseSettings):
    """What the service runs with. Built in code, only the arguments count (tests, demo); the
    environment, `.env` and secret files are read by `from_env`, `for_service` and `load`."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    # Storage
    database_url: str = "sqlite+aiosqlite:///var/connector.db"
    audit_database_url: str = "sqlite:///var/audit.db"
    # The audit tables' owner, for migrations only; the service itself logs in with
    # `audit_database_url` as audit_writer (INSERT and SELECT) and refuses more rights.
    audit_admin_database_url: str = ""
    # Google endpoints; point them at the emulator for demo and tests.
    gmail_api_endpoint: HttpUrl = "https://gmail.googleapis.com/"
    oauth_auth_uri: HttpUrl = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_token_uri: HttpUrl = "https://oauth2.googleapis.com/token"
    oauth_revoke_uri: HttpUrl = "https://oauth2.googleapis.com/revoke"
    oauth_userinfo_uri: HttpUrl = "https://openidconnect.googleapis.com/v1/userinfo"
    oauth_client_id: str = ""
    oauth_client_secret: Secret = ""
    oauth_redirect_uris: Annotated[tuple[HttpUrl, ...], BeforeValidator(_comma_list)] = ()
    # Token vault keys: "kid:base64key,..." (first is current) or a key file; never the database.
    vault_keys: Secret = ""
    vault_key_file: OptionalPath = None
    # Caller authentication (JWT issued by the host platform).
    jwt_issuer: str = "https://platform.example"
    jwt_audience: str = "gmail-connector"
    jwt_secret: Secret = ""
    # PEM public key file for RS256/ES256/EdDSA tokens; used alongside or instead of the secret.
    jwt_public_key_file: OptionalPath = None
    jwt_leeway_seconds: Annotated[int, Field(ge=0)] = 30
    # The HTTP service: largest request body accepted (a 35 MB message, base64 in JSON, fits).
    max_request_bytes: Positive = 50 * 1024 * 1024
    # Seconds a connection has to send a complete request head (from connecting or from the
    # previous response; also the idle keep-alive time): slow-header clients are cut off.
    header_timeout_seconds: Positive = 30
    # Where the service is reachable from browsers (OAuth callback, disclosure page links).
    public_base_url: Annotated[str, AfterValidator(_http_url_or_empty)] = ""
    # What the disclosure page calls the platform, and its privacy policy: Google's app
    # verification checks that both are shown before the consent screen.
    app_name: str = "The platform"
    privacy_policy_url: Annotated[str, AfterValidator(_http_url_or_empty)] = ""
    # Where the OAuth callback may send the browser back, with the outcome (exact match; the
    # first is the default). None set: the callback ends on a plain page.
    link_return_urls: Annotated[tuple[HttpUrl, ...], BeforeValidator(_comma_list)] = ()
    # Background housekeeping: how often stale access requests are swept and the audit
    # head is checkpointed when idle.
    housekeeping_seconds: Positive = 60
    # Audit signing key (Ed25519, PEM) for checkpoints.
    audit_signing_key_file: OptionalPath = None
    # The checkpoint keys the reviewer's verify trusts (PEM public keys or SHA-256
    # fingerprints); kept outside the audit database, which could otherwise vouch for itself.
    audit_trusted_keys_file: OptionalPath = None
    # Append-only JSON-lines file each committed checkpoint is copied to, outside the audit
    # database, so a tail deleted together with its checkpoints is still caught.
    audit_witness_file: OptionalPath = None
    audit_checkpoint_every: Positive = 1000
    audit_checkpoint_seconds: Positive = 60
    # The log's own retention, in each retention run: every ended period sealed into a signed
    # segment in the directory (unset: none), segments older than the days dropped (0: never).
    audit_archive_dir: OptionalPath = None
    audit_archive_period: ArchivePeriod = ArchivePeriod.MONTH
    audit_segment_retention_days: Annotated[int, Field(ge=0, le=36_500)] = 0
    # Keyed hashing of addresses, IPs and queries recorded in the audit log.
    audit_hash_key: Secret = ""
    # The live mailbox: polling by default; push needs the topic Gmail publishes to (the
    # Gmail publisher, gmail-api-push@system.gserviceaccount.com, granted Pub/Sub Publisher on
    # it) and a pull subscription of that topic.
    sync_mode: SyncMode = SyncMode.POLL
    sync_poll_seconds: Positive = 60  # poll mode: how often each account's history is read
    sync_safety_poll_seconds: Positive = 900  # push mode: the poll that catches lost notices
    gmail_push_topic: Annotated[str, AfterValidator(_pubsub_name("topics"))] = ""
    gmail_push_subscription: Annotated[str, AfterValidator(_pubsub_name("subscriptions"))] = ""
    gmail_watch_renew_hours: Annotated[int, Field(ge=1, le=6 * 24)] = 24
    pubsub_api_endpoint: HttpUrl = "https://pubsub.googleapis.com/"
    # A bearer token for Pub/Sub (the emulator's, or minted elsewhere); empty: Application
    # Default Credentials of the deployment's service account.
    pubsub_token: Secret = ""
    # Signed webhooks of every account's change feed (Standard Webhooks): no URL, no delivery.
    # The secret is "whsec_" + base64 of the signing key, shared with the receiver.
    webhook_url: Annotated[str, AfterValidator(_http_url_or_empty)] = ""
    webhook_secret: Secret = ""
    webhook_horizon_hours: Annotated[int, Field(ge=1, le=30 * 24)] = 24  # then dead-lettered
    webhook_backoff_base_seconds: Annotated[float, Field(gt=0)] = 5.0
    webhook_backoff_cap_seconds: Annotated[float, Field(gt=0)] = 1800.0
    webhook_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    webhook_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    # The owner's change-feed stream (SSE): closed after this long, the client resumes at once
    # with Last-Event-ID; the feed table is read this often for changes from other instances.
    feed_stream_seconds: Annotated[float, Field(gt=0)] = 300.0
    feed_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    gmail_quota_regime: QuotaRegime = QuotaRegime.LEGACY
    gmail_max_concurrency_per_user: Positive = 10
    # Longest a request waits in a mailbox's quota queue before it is refused with 429.
    gmail_max_queue_wait_seconds: Annotated[float, Field(gt=0)] = 10.0
    # Several instances on one database: leases of per-account background work run out after
    # LEASE_TTL_SECONDS without renewal (heartbeat every third of it), then another takes over.
    lease_ttl_seconds: Annotated[float, Field(ge=2, le=300)] = 10.0
    # PostgreSQL connections each process keeps, and no more; keep
    # instances x WORKERS x DB_POOL_SIZE (+ one LISTEN each) under max_connections.
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 20  # = db.DEFAULT_PG_POOL_SIZE
    # The per-user and per-project Gmail quota shared by all instances through the database (in
    # GMAIL_QUOTA_SLICES slices per window; background sync leaves the reserve to users).
    gmail_quota_shared: bool = False
    gmail_quota_slices: Annotated[int, Field(ge=1, le=250)] = 10
    gmail_quota_interactive_reserve_percent: Annotated[int, Field(ge=0, le=90)] = 20
    gmail_project_units_per_minute: Positive = 1_200_000
    # Smaller groups would let an aggregate single out one account.
    aggregate_k: Annotated[int, Field(ge=2)] = 5
    # Retention (`connector retention run`, and in the service every RETENTION_RUN_HOURS): an
    # account with no sign-in and no sync for RETENTION_DORMANT_DAYS gets a notice in its feed,
    # and is unlinked and purged RETENTION_DORMANT_NOTICE_DAYS later if still inactive.
    retention_dormant_days: Positive = 365
    retention_dormant_notice_days: Positive = 30
    retention_run_hours: Annotated[int, Field(ge=1, le=7 * 24)] = 24
    # The web client (/app): the pages that may frame it (CSP frame-ancestors) and how long a
    # signed-in browser session lasts before the platform must sign the user in again.
    web_frame_ancestors: Annotated[
        tuple[Annotated[str, AfterValidator(_frame_source)], ...], BeforeValidator(_comma_list)
    ] = ("'self'",)
    web_session_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 60
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # `connector serve` worker processes sharing the port (SO_REUSEPORT). Each takes 1/workers
    # of every per-user Gmail quota, so together they stay within Google's limits.
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] = 1
    log_format: LogFormat = LogFormat.CONSOLE
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = LogLevel.INFO
    extra: Mapping[str, str] = Field(default_factory=dict)

    if not TYPE_CHECKING:  # type checkers keep the field-checked constructor

        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise _InvalidFieldsError(describe(exc, type(self).model_fields)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Code that builds Settings says everything it means; a stray CONNECTOR_* variable in a
        # developer's shell must not leak into tests, the demo or benchmarks.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env`, or from the process environment, `.env` and secret files when
        None; a SettingsError listing every malformed setting."""
        return cls.load(env).settings_or_raise()

    @classmethod
    def for_service(cls, env: Mapping[str, str] | None = None) -> Settings:
        """As `from_env`, also refusing what `connector serve` needs and is missing."""
        return cls.load(env, for_service=True).settings_or_raise()

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, *, for_service: bool = False) -> Loaded:
        """Every value with where it came from and every problem, without raising."""
        environ: Mapping[str, str] = os.environ if env is None else env
        problems: list[str] = []
        env_file: Path | None = None
        dotenv: dict[str, str] = {}
        if env is None:  # a given mapping is the whole configuration (tests, tools)
            env_file, problems = dotenv_file(environ)
            if env_file is not None:
                dotenv, unreadable = read_dotenv(env_file)
                problems += unreadable
        secrets = SecretFilesSource(cls, {**dotenv, **environ})
        values: dict[str, Any] = {}
        origins = dict.fromkeys(settable_fields(cls), Origin.DEFAULT)
        for origin, source in (
            (Origin.DOTENV, VariablesSource(cls, dotenv)),
            (Origin.ENVIRONMENT, VariablesSource(cls, environ)),
            (Origin.FILE, secrets),
        ):
            for name, value in source().items():
                values[name], origins[name] = value, origin
        problems += secrets.problems
        try:
            settings, invalid = cls(**values), {}
        except _InvalidFieldsError as exc:
            invalid = exc.fields
            problems += [invalid[name] for name in cls.model_fields if name in invalid]
            # The rest still validates, so missing settings are reported alongside.
            settings = cls(**{k: v for k, v in values.items() if k not in invalid})
        if for_service:
            # A setting already reported as malformed or unreadable is not "missing" as well.
            reported = tuple(variable(name) for name in [*invalid, *secrets.unreadable])
            problems += [p for p in settings.problems_for_service() if not p.startswith(reported)]
        raw = {name: values[name] for name in invalid if name in values}
        return Loaded(settings, origins, tuple(problems), env_file, raw)

    def problems_for_service(self) -> list[str]:
        """What `connector serve` needs and this configuration lacks, one line per problem;
        checked before anything is written so that one run names all of them."""
        problems = []
        if self.sync_mode is SyncMode.PUSH and not (
            self.gmail_push_topic and self.gmail_push_subscription
        ):
            problems.append(
                "CONNECTOR_SYNC_MODE=push needs CONNECTOR_GMAIL_PUSH_TOPIC and "
                "CONNECTOR_GMAIL_PUSH_SUBSCRIPTION (projects/<project>/topics/<name>, "
                "projects/<project>/subscriptions/<name>)"
            )
        if not self.jwt_secret and self.jwt_public_key_file is None:
            problems.append(
                "CONNECTOR_JWT_SECRET (or CONNECTOR_JWT_SECRET_FILE) or "
                "CONNECTOR_JWT_PUBLIC_KEY_FILE is required: it verifies callers' bearer tokens"
            )
        if not self.audit_hash_key:
            problems.append(
                "CONNECTOR_AUDIT_HASH_KEY (or CONNECTOR_AUDIT_HASH_KEY_FILE) is required: "
                "addresses, IPs and queries are recorded as keyed hashes"
            )
        if not self.oauth_client_id:
            problems.append(
                "CONNECTOR_OAUTH_CLIENT_ID is required: the Google OAuth client that links "
                "mailboxes"
            )
        if not self.oauth_client_secret:
            problems.append(
                "CONNECTOR_OAUTH_CLIENT_SECRET (or CONNECTOR_OAUTH_CLIENT_SECRET_FILE) is "
                "required: the Google OAuth client's secret"
            )
        if not self.oauth_redirect_uris:
            problems.append(
                "CONNECTOR_OAUTH_REDIRECT_URIS is required: the OAuth callback URL, "
                "<public base URL>/v1/oauth/callback, first"
            )
        if not self.vault_keys and self.vault_key_file is None:
            problems.append(
                "CONNECTOR_VAULT_KEYS (or CONNECTOR_VAULT_KEYS_FILE) or CONNECTOR_VAULT_KEY_FILE "
                "is required: the keys that encrypt stored OAuth tokens "
                "(`connector vault generate-key`)"
            )
        unreadable = []
        for name in (
            "jwt_public_key_file", "audit_signing_key_file", "audit_trusted_keys_file",
            "vault_key_file",
        ):  # fmt: skip
            path: Path | None = getattr(self, name)
            if path is not None:
                try:
                    path.open("rb").close()
                except OSError as exc:
                    unreadable.append(name)
                    problems.append(
                        f"{variable(name)} names {path}, which cannot be read: {exc.strerror}"
                    )
        problems += witness_problems(self.audit_witness_file)
        if not {"audit_signing_key_file", "audit_trusted_keys_file"} & set(unreadable):
            problems += audit_key_problems(
                self.audit_signing_key_file, self.audit_trusted_keys_file
            )
        postgres = self.audit_database_url.startswith("postgres")
        return problems + archive_problems(
            self.audit_archive_dir, self.audit_segment_retention_days, self.audit_signing_key_file,
            postgres_without_owner=postgres and not self.audit_admin_database_url,
        )  # fmt: skip


@dataclass(frozen=True)
class Loaded:
    """Settings with provenance; malformed values are left at their defaults in `settings`
    (see `invalid` for what was given) so that the remaining checks still run."""

    settings: Settings
    origins: Mapping[str, Origin]
    problems: tuple[str, ...]
    env_file: Path | None
    invalid: Mapping[str, Any]

    def settings_or_raise(self) -> Settings:
        if self.problems:
            raise SettingsError(*self.problems)
        return self.settings


def check_workers(workers: int, name: str) -> int:
    """`workers` if in 1..MAX_WORKERS; else a SettingsError naming where it came from."""
    if not 1 <= workers <= MAX_WORKERS:
        raise SettingsError(f"{name} must be between 1 and {MAX_WORKERS}, got {workers}")
    return workers
