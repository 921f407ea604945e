"""Settings: CONNECTOR_* variables, .env, *_FILE secrets, one error for every problem, and
`connector check-config` / `connector serve` refusing bad settings before touching the disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.segments import ArchivePeriod
from connector.errors import ConnectorError
from connector.gmail.quota import QuotaPolicy
from connector.settings import (
    MAX_WORKERS,
    LogFormat,
    LogLevel,
    QuotaRegime,
    Settings,
    SettingsError,
    SyncMode,
    check_workers,
)
from connector.settings_sources import SECRET_FIELDS, Origin, settable_fields, variable

CONNECTOR = Path(sys.executable).with_name("connector")
SECRET_VALUES = {
    "CONNECTOR_JWT_SECRET": "jwt-secret-value-0123456789",
    "CONNECTOR_AUDIT_HASH_KEY": "audit-hash-key-value-0123",
    "CONNECTOR_OAUTH_CLIENT_SECRET": "oauth-client-secret-value",
    "CONNECTOR_VAULT_KEYS": "k1:" + "A" * 43 + "=",
}
# A configuration `connector serve` accepts (nothing here is checked against a live service).
SERVICE = {
    **SECRET_VALUES,
    "CONNECTOR_OAUTH_CLIENT_ID": "client-id",
    "CONNECTOR_OAUTH_REDIRECT_URIS": "http://127.0.0.1:8080/v1/oauth/callback",
}

EVERY_VARIABLE = {
    "CONNECTOR_DATABASE_URL": "postgresql://db.internal/connector",
    "CONNECTOR_AUDIT_DATABASE_URL": "postgresql://db.internal/audit",
    "CONNECTOR_AUDIT_ADMIN_DATABASE_URL": "postgresql://owner@db.internal/audit",
    "CONNECTOR_GMAIL_API_ENDPOINT": "http://127.0.0.1:9000/",
    "CONNECTOR_OAUTH_AUTH_URI": "http://127.0.0.1:9000/auth",
    "CONNECTOR_OAUTH_TOKEN_URI": "http://127.0.0.1:9000/token",
    "CONNECTOR_OAUTH_REVOKE_URI": "http://127.0.0.1:9000/revoke",
    "CONNECTOR_OAUTH_USERINFO_URI": "http://127.0.0.1:9000/userinfo",
    "CONNECTOR_OAUTH_CLIENT_ID": "the-client",
    "CONNECTOR_OAUTH_CLIENT_SECRET": "the-client-secret",
    "CONNECTOR_OAUTH_REDIRECT_URIS": "https://a.example/cb,https://b.example/cb",
    "CONNECTOR_VAULT_KEYS": "k1:abc",
    "CONNECTOR_VAULT_KEY_FILE": "/run/keys/vault",
    "CONNECTOR_JWT_ISSUER": "https://issuer.example",
    "CONNECTOR_JWT_AUDIENCE": "aud",
    "CONNECTOR_JWT_SECRET": "s3",
    "CONNECTOR_JWT_PUBLIC_KEY_FILE": "/run/keys/jwt.pem",
    "CONNECTOR_JWT_LEEWAY_SECONDS": "0",
    "CONNECTOR_MAX_REQUEST_BYTES": "1024",
    "CONNECTOR_HEADER_TIMEOUT_SECONDS": "12",
    "CONNECTOR_PUBLIC_BASE_URL": "https://connector.example",
    "CONNECTOR_APP_NAME": "Acme CRM",
    "CONNECTOR_PRIVACY_POLICY_URL": "https://acme.example/privacy",
    "CONNECTOR_LINK_RETURN_URLS": "https://acme.example/gmail, https://acme.example/onboarding",
    "CONNECTOR_HOUSEKEEPING_SECONDS": "5",
    "CONNECTOR_AUDIT_SIGNING_KEY_FILE": "/run/keys/audit.pem",
    "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE": "/etc/connector/audit-trusted-keys",
    "CONNECTOR_AUDIT_WITNESS_FILE": "/var/lib/witness/audit.jsonl",
    "CONNECTOR_AUDIT_CHECKPOINT_EVERY": "10",
    "CONNECTOR_AUDIT_CHECKPOINT_SECONDS": "7",
    "CONNECTOR_AUDIT_ARCHIVE_DIR": "/var/lib/connector/audit-archive",
    "CONNECTOR_AUDIT_ARCHIVE_PERIOD": "day",
    "CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS": "400",
    "CONNECTOR_AUDIT_HASH_KEY": "hk",
    "CONNECTOR_GMAIL_QUOTA_REGIME": "per_minute",
    "CONNECTOR_SYNC_MODE": "push",
    "CONNECTOR_SYNC_POLL_SECONDS": "30",
    "CONNECTOR_SYNC_SAFETY_POLL_SECONDS": "600",
    "CONNECTOR_GMAIL_PUSH_TOPIC": "projects/demo-project/topics/gmail",
    "CONNECTOR_GMAIL_PUSH_SUBSCRIPTION": "projects/demo-project/subscriptions/connector",
    "CONNECTOR_GMAIL_WATCH_RENEW_HOURS": "12",
    "CONNECTOR_PUBSUB_API_ENDPOINT": "http://127.0.0.1:8085/",
    "CONNECTOR_PUBSUB_TOKEN": "emulator-token",
    "CONNECTOR_GMAIL_MAX_CONCURRENCY_PER_USER": "3",
    "CONNECTOR_GMAIL_MAX_QUEUE_WAIT_SECONDS": "2.5",
    "CONNECTOR_LEASE_TTL_SECONDS": "5",
    "CONNECTOR_DB_POOL_SIZE": "12",
    "CONNECTOR_GMAIL_QUOTA_SHARED": "true",
    "CONNECTOR_GMAIL_QUOTA_SLICES": "5",
    "CONNECTOR_GMAIL_QUOTA_INTERACTIVE_RESERVE_PERCENT": "30",
    "CONNECTOR_GMAIL_PROJECT_UNITS_PER_MINUTE": "600000",
    "CONNECTOR_AGGREGATE_K": "2",
    "CONNECTOR_RETENTION_DORMANT_DAYS": "30",
    "CONNECTOR_RETENTION_DORMANT_NOTICE_DAYS": "14",
    "CONNECTOR_RETENTION_RUN_HOURS": "6",
    "CONNECTOR_WEBHOOK_URL": "https://platform.example/hooks/gmail",
    "CONNECTOR_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "CONNECTOR_WEBHOOK_HORIZON_HOURS": "48",
    "CONNECTOR_WEBHOOK_BACKOFF_BASE_SECONDS": "2.5",
    "CONNECTOR_WEBHOOK_BACKOFF_CAP_SECONDS": "600",
    "CONNECTOR_WEBHOOK_TIMEOUT_SECONDS": "5",
    "CONNECTOR_WEBHOOK_POLL_SECONDS": "0.5",
    "CONNECTOR_FEED_STREAM_SECONDS": "60",
    "CONNECTOR_FEED_POLL_SECONDS": "0.25",
    "CONNECTOR_WEB_FRAME_ANCESTORS": "'self', https://platform.example",
    "CONNECTOR_WEB_SESSION_MINUTES": "30",
    "CONNECTOR_HOST": "0.0.0.0",
    "CONNECTOR_PORT": "65535",
    "CONNECTOR_WORKERS": "4",
    "CONNECTOR_LOG_FORMAT": "json",
    "CONNECTOR_LOG_LEVEL": "debug",
}
EXPECTED = {
    "database_url": "postgresql://db.internal/connector",
    "audit_database_url": "postgresql://db.internal/audit",
    "audit_admin_database_url": "postgresql://owner@db.internal/audit",
    "gmail_api_endpoint": "http://127.0.0.1:9000/",
    "oauth_auth_uri": "http://127.0.0.1:9000/auth",
    "oauth_token_uri": "http://127.0.0.1:9000/token",
    "oauth_revoke_uri": "http://127.0.0.1:9000/revoke",
    "oauth_userinfo_uri": "http://127.0.0.1:9000/userinfo",
    "oauth_client_id": "the-client",
    "oauth_client_secret": "the-client-secret",
    "oauth_redirect_uris": ("https://a.example/cb", "https://b.example/cb"),
    "vault_keys": "k1:abc",
    "vault_key_file": Path("/run/keys/vault"),
    "jwt_issuer": "https://issuer.example",
    "jwt_audience": "aud",
    "jwt_secret": "s3",
    "jwt_public_key_file": Path("/run/keys/jwt.pem"),
    "jwt_leeway_seconds": 0,
    "max_request_bytes": 1024,
    "header_timeout_seconds": 12,
    "public_base_url": "https://connector.example",
    "app_name": "Acme CRM",
    "privacy_policy_url": "https://acme.example/privacy",
    "link_return_urls": ("https://acme.example/gmail", "https://acme.example/onboarding"),
    "housekeeping_seconds": 5,
    "audit_signing_key_file": Path("/run/keys/audit.pem"),
    "audit_trusted_keys_file": Path("/etc/connector/audit-trusted-keys"),
    "audit_witness_file": Path("/var/lib/witness/audit.jsonl"),
    "audit_checkpoint_every": 10,
    "audit_checkpoint_seconds": 7,
    "audit_archive_dir": Path("/var/lib/connector/audit-archive"),
    "audit_archive_period": ArchivePeriod.DAY,
    "audit_segment_retention_days": 400,
    "audit_hash_key": "hk",
    "gmail_quota_regime": QuotaRegime.PER_MINUTE,
    "sync_mode": SyncMode.PUSH,
    "sync_poll_seconds": 30,
    "sync_safety_poll_seconds": 600,
    "gmail_push_topic": "projects/demo-project/topics/gmail",
    "gmail_push_subscription": "projects/demo-project/subscriptions/connector",
    "gmail_watch_renew_hours": 12,
    "pubsub_api_endpoint": "http://127.0.0.1:8085/",
    "pubsub_token": "emulator-token",
    "gmail_max_concurrency_per_user": 3,
    "gmail_max_queue_wait_seconds": 2.5,
    "lease_ttl_seconds": 5.0,
    "db_pool_size": 12,
    "gmail_quota_shared": True,
    "gmail_quota_slices": 5,
    "gmail_quota_interactive_reserve_percent": 30,
    "gmail_project_units_per_minute": 600000,
    "aggregate_k": 2,
    "retention_dormant_days": 30,
    "retention_dormant_notice_days": 14,
    "retention_run_hours": 6,
    "webhook_url": "https://platform.example/hooks/gmail",
    "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "webhook_horizon_hours": 48,
    "webhook_backoff_base_seconds": 2.5,
    "webhook_backoff_cap_seconds": 600.0,
    "webhook_timeout_seconds": 5.0,
    "webhook_poll_seconds": 0.5,
    "feed_stream_seconds": 60.0,
    "feed_poll_seconds": 0.25,
    "web_frame_ancestors": ("'self'", "https://platform.example"),
    "web_session_minutes": 30,
    "host": "0.0.0.0",
    "port": 65535,
    "workers": 4,
    "log_format": LogFormat.JSON,
    "log_level": LogLevel.DEBUG,
}


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}


@pytest.fixture
def no_connector_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The process environment without CONNECTOR_* variables, cwd an empty directory."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


# --- parsing -------------------------------------------------------------------------------


def test_defaults_match_direct_construction() -> None:
    """An empty environment gives the documented defaults, the same as `Settings()`."""
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == "sqlite+aiosqlite:///var/connector.db"
    assert settings.gmail_quota_regime is QuotaRegime.LEGACY
    assert settings.log_format is LogFormat.CONSOLE
    assert settings.log_level is LogLevel.INFO
    assert (settings.port, settings.workers, settings.aggregate_k) == (8080, 1, 5)
    assert settings.oauth_redirect_uris == ()
    assert settings.vault_key_file is None
    assert settings.jwt_public_key_file is None
    assert settings.extra == {}


def test_every_variable_is_parsed_into_its_type() -> None:
    """Each CONNECTOR_* variable lands in its attribute, typed (ints, paths, tuples, enums)."""
    settings = Settings.from_env(EVERY_VARIABLE)
    assert {name: getattr(settings, name) for name in EXPECTED} == EXPECTED
    # a new setting must be added to this test (and to the README table)
    assert set(EXPECTED) == set(settable_fields(Settings))
    assert {variable(name) for name in EXPECTED} == set(EVERY_VARIABLE)


def test_comma_lists_are_trimmed_and_skip_empty_items() -> None:
    """OAUTH_REDIRECT_URIS splits on commas, trims spaces and drops empty items."""
    settings = Settings.from_env(
        {"CONNECTOR_OAUTH_REDIRECT_URIS": " http://a.example/cb , ,https://b.example/cb,"}
    )
    assert settings.oauth_redirect_uris == ("http://a.example/cb", "https://b.example/cb")
    assert Settings.from_env({"CONNECTOR_OAUTH_REDIRECT_URIS": ""}).oauth_redirect_uris == ()


def test_empty_path_variables_mean_unset() -> None:
    """An empty *_FILE path setting is None, as before (shell templates often export '')."""
    settings = Settings.from_env({"CONNECTOR_VAULT_KEY_FILE": "", "CONNECTOR_JWT_SECRET_FILE": ""})
    assert settings.vault_key_file is None
    assert settings.jwt_secret == ""


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GMAIL_QUOTA_REGIME", "legacy", QuotaRegime.LEGACY),
        ("GMAIL_QUOTA_REGIME", "per_minute", QuotaRegime.PER_MINUTE),
        ("LOG_FORMAT", "json", LogFormat.JSON),
        ("LOG_FORMAT", "console", LogFormat.CONSOLE),
        ("LOG_LEVEL", "WARNING", LogLevel.WARNING),
        ("LOG_LEVEL", "error", LogLevel.ERROR),
    ],
)
def test_enum_values_are_accepted(name: str, value: str, expected: object) -> None:
    """Each valid value of a closed vocabulary parses to its member (log levels in any case)."""
    settings = Settings.from_env({f"CONNECTOR_{name}": value})
    assert getattr(settings, name.lower()) == expected


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("GMAIL_QUOTA_REGIME", "daily", "'legacy', 'per_minute'"),
        ("LOG_FORMAT", "xml", "'json', 'console'"),
        ("LOG_LEVEL", "LOUD", "'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
    ],
)
def test_enum_errors_list_the_valid_values(name: str, value: str, valid: str) -> None:
    """A value outside the vocabulary names the variable, the bad value and every valid one."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({f"CONNECTOR_{name}": value})
    assert str(caught.value) == f"CONNECTOR_{name} must be one of {valid}, got {value!r}"


def test_enums_compare_equal_to_their_strings_for_consumers() -> None:
    """StrEnum members still equal the strings older code compares against, and the quota
    policy takes the setting as it is."""
    settings = Settings.from_env({"CONNECTOR_GMAIL_QUOTA_REGIME": "per_minute"})
    assert settings.gmail_quota_regime == "per_minute"
    assert settings.log_format == "console"
    assert QuotaPolicy.for_regime(settings.gmail_quota_regime) == QuotaPolicy.for_regime(
        "per_minute"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "0", "CONNECTOR_PORT must be between 1 and 65535, got '0'"),
        ("PORT", "65536", "CONNECTOR_PORT must be between 1 and 65535, got '65536'"),
        ("PORT", "eighty", "CONNECTOR_PORT must be an integer, got 'eighty'"),
        ("WORKERS", "0", f"CONNECTOR_WORKERS must be between 1 and {MAX_WORKERS}, got '0'"),
        ("WORKERS", "65", f"CONNECTOR_WORKERS must be between 1 and {MAX_WORKERS}, got '65'"),
        ("AGGREGATE_K", "1", "CONNECTOR_AGGREGATE_K must be at least 2, got '1'"),
        ("HOUSEKEEPING_SECONDS", "0", "CONNECTOR_HOUSEKEEPING_SECONDS must be at least 1"),
        ("AUDIT_CHECKPOINT_EVERY", "-1", "CONNECTOR_AUDIT_CHECKPOINT_EVERY must be at least 1"),
        ("MAX_REQUEST_BYTES", "0", "CONNECTOR_MAX_REQUEST_BYTES must be at least 1"),
        ("JWT_LEEWAY_SECONDS", "-5", "CONNECTOR_JWT_LEEWAY_SECONDS must be at least 0"),
        (
            "GMAIL_MAX_CONCURRENCY_PER_USER", "0",
            "CONNECTOR_GMAIL_MAX_CONCURRENCY_PER_USER must be at least 1",
        ),
        (
            "GMAIL_API_ENDPOINT", "gmail.googleapis.com",
            "CONNECTOR_GMAIL_API_ENDPOINT must be an http:// or https:// URL",
        ),
        ("OAUTH_TOKEN_URI", "ftp://x/token", "CONNECTOR_OAUTH_TOKEN_URI must be an http://"),
        ("PUBLIC_BASE_URL", "connector.example", "CONNECTOR_PUBLIC_BASE_URL must be an http://"),
        (
            "OAUTH_REDIRECT_URIS", "https://ok.example/cb,/relative/cb",
            "CONNECTOR_OAUTH_REDIRECT_URIS item 2 must be an http:// or https:// URL",
        ),
    ],
)  # fmt: skip
def test_ranges_and_urls_are_checked(name: str, value: str, message: str) -> None:
    """Ports, counts, intervals, k-anonymity and URLs outside their range name variable and
    what is valid."""
    with pytest.raises(SettingsError, match="^" + message.replace("?", r"\?")) as caught:
        Settings.from_env({f"CONNECTOR_{name}": value})
    assert "validation error" not in str(caught.value)


def test_every_bad_setting_is_reported_in_one_error() -> None:
    """Several malformed settings: one SettingsError, one line per variable, in field order."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "CONNECTOR_PORT": "eighty",
                "CONNECTOR_LOG_FORMAT": "xml",
                "CONNECTOR_WORKERS": "0",
                "CONNECTOR_AGGREGATE_K": "1",
                "CONNECTOR_OAUTH_TOKEN_URI": "token",
            }
        )
    lines = str(caught.value).splitlines()
    assert lines[0] == "5 problems with the settings:"
    assert [line.split()[0] for line in lines[1:]] == [
        "CONNECTOR_OAUTH_TOKEN_URI",
        "CONNECTOR_AGGREGATE_K",
        "CONNECTOR_PORT",
        "CONNECTOR_WORKERS",
        "CONNECTOR_LOG_FORMAT",
    ]
    assert caught.value.problems == tuple(line.strip() for line in lines[1:])
    assert "pydantic" not in str(caught.value)
    assert "type=" not in str(caught.value)


def test_settings_error_is_a_connector_error_and_a_value_error() -> None:
    """SettingsError sits in the package's exception tree and stays a ValueError for callers."""
    error = SettingsError("CONNECTOR_X is wrong")
    assert isinstance(error, ConnectorError)
    assert isinstance(error, ValueError)
    assert str(error) == "CONNECTOR_X is wrong"


def test_check_workers_names_its_source() -> None:
    """check_workers passes 1..MAX_WORKERS through and names the flag otherwise."""
    assert check_workers(MAX_WORKERS, "--workers") == MAX_WORKERS
    with pytest.raises(SettingsError, match="--workers must be between 1 and 64, got 0"):
        check_workers(0, "--workers")


# --- direct construction -------------------------------------------------------------------


def test_direct_construction_ignores_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, no_connector_env: Path
) -> None:
    """Settings(...) in code uses its arguments only; CONNECTOR_* variables and ./.env are for
    from_env()."""
    monkeypatch.setenv("CONNECTOR_PORT", "1234")
    monkeypatch.setenv("CONNECTOR_JWT_SECRET", "from-environment")
    (no_connector_env / ".env").write_text("CONNECTOR_WORKERS=3\n")
    settings = Settings(jwt_secret="x", workers=2)
    assert (settings.port, settings.jwt_secret, settings.workers) == (8080, "x", 2)
    from_env = Settings.from_env()
    assert (from_env.port, from_env.jwt_secret, from_env.workers) == (1234, "from-environment", 3)


def test_direct_construction_reports_bad_values_in_our_words() -> None:
    """A bad value given in code is a SettingsError naming the variable, not a pydantic error."""
    with pytest.raises(SettingsError) as caught:
        Settings(port=0, log_format="xml", nonsense=1)  # type: ignore[arg-type, call-arg]
    assert str(caught.value).splitlines()[1:] == [
        "  CONNECTOR_PORT must be between 1 and 65535, got 0",
        "  CONNECTOR_LOG_FORMAT must be one of 'json', 'console', got 'xml'",
        "  'nonsense' is not a setting",
    ]


def test_secrets_stay_out_of_repr() -> None:
    """repr() (tracebacks, debug logs) never shows the four secrets."""
    settings = Settings.from_env(SECRET_VALUES)
    assert all(secret not in repr(settings) for secret in SECRET_VALUES.values())
    assert "jwt_audience='gmail-connector'" in repr(settings)


def test_settings_are_frozen_and_copy_with_changes() -> None:
    """Instances cannot be changed in place; model_copy makes the variant serve's pool needs."""
    settings = Settings(jwt_secret="x")
    with pytest.raises(ValueError, match="frozen"):
        settings.workers = 4  # type: ignore[misc]
    assert settings.model_copy(update={"workers": 4}).workers == 4
    assert settings.workers == 1


# --- .env and *_FILE -------------------------------------------------------------------------


def test_dotenv_in_the_current_directory_is_read_by_from_env(
    monkeypatch: pytest.MonkeyPatch, no_connector_env: Path
) -> None:
    """./.env fills what the environment does not set; the environment wins where both do."""
    (no_connector_env / ".env").write_text(
        "# deployment defaults\nCONNECTOR_PORT=9001\nexport CONNECTOR_HOST=0.0.0.0\n"
        "CONNECTOR_LOG_FORMAT='json'\nUNRELATED=1\n"
    )
    monkeypatch.setenv("CONNECTOR_PORT", "9002")
    loaded = Settings.load()
    assert loaded.env_file == no_connector_env / ".env"
    assert (loaded.settings.port, loaded.settings.host) == (9002, "0.0.0.0")
    assert loaded.settings.log_format is LogFormat.JSON
    assert loaded.origins["port"] is Origin.ENVIRONMENT
    assert loaded.origins["host"] is Origin.DOTENV
    assert loaded.origins["workers"] is Origin.DEFAULT


def test_a_given_mapping_is_the_only_source(
    monkeypatch: pytest.MonkeyPatch, no_connector_env: Path
) -> None:
    """from_env(mapping) reads neither ./.env, CONNECTOR_ENV_FILE's file nor os.environ."""
    (no_connector_env / ".env").write_text("CONNECTOR_PORT=9001\n")
    other = no_connector_env / "other.env"
    other.write_text("CONNECTOR_WORKERS=5\n")
    monkeypatch.setenv("CONNECTOR_HOST", "10.0.0.1")
    monkeypatch.setenv("CONNECTOR_ENV_FILE", str(other))
    settings = Settings.from_env({"CONNECTOR_AGGREGATE_K": "3"})
    assert (settings.port, settings.workers, settings.host) == (8080, 1, "127.0.0.1")
    assert settings.aggregate_k == 3


def test_connector_env_file_names_the_dotenv(
    monkeypatch: pytest.MonkeyPatch, no_connector_env: Path, tmp_path: Path
) -> None:
    """CONNECTOR_ENV_FILE replaces ./.env; naming a missing file is an error."""
    (no_connector_env / ".env").write_text("CONNECTOR_PORT=9001\n")
    named = tmp_path / "prod.env"
    named.write_text("CONNECTOR_WORKERS=6\n")
    monkeypatch.setenv("CONNECTOR_ENV_FILE", str(named))
    settings = Settings.from_env()
    assert (settings.port, settings.workers) == (8080, 6)
    monkeypatch.setenv("CONNECTOR_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(SettingsError, match="CONNECTOR_ENV_FILE names .*missing.env"):
        Settings.from_env()


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_secret_file_variant_reads_the_file(field: str, tmp_path: Path) -> None:
    """CONNECTOR_<SECRET>_FILE gives the file's content less its trailing newline."""
    secret = tmp_path / "secret"
    secret.write_text("first line\nsecond  \n")
    loaded = Settings.load({f"{variable(field)}_FILE": str(secret)})
    assert getattr(loaded.settings, field) == "first line\nsecond  "
    assert loaded.origins[field] is Origin.FILE
    assert loaded.problems == ()


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_secret_and_its_file_variant_together_are_an_error(field: str, tmp_path: Path) -> None:
    """Setting a secret both directly and by file is refused: which one wins is not obvious."""
    secret = tmp_path / "secret"
    secret.write_text("from-file")
    name = variable(field)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: "direct", f"{name}_FILE": str(secret)})
    assert str(caught.value) == f"{name} and {name}_FILE are both set; set only one of them"


def test_unreadable_secret_files_are_named_with_their_paths(tmp_path: Path) -> None:
    """Missing or undecodable secret files: one error naming each variable and path."""
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "CONNECTOR_JWT_SECRET_FILE": str(tmp_path / "nope"),
                "CONNECTOR_VAULT_KEYS_FILE": str(binary),
            }
        )
    message = str(caught.value)
    assert f"CONNECTOR_JWT_SECRET_FILE names {tmp_path / 'nope'}, which cannot be read" in message
    assert f"CONNECTOR_VAULT_KEYS_FILE names {binary}, which cannot be read" in message


def test_an_unreadable_secret_file_is_not_also_reported_missing(tmp_path: Path) -> None:
    """For serve, a secret whose file cannot be read is named once, by its _FILE variable."""
    env = {k: v for k, v in SERVICE.items() if k != "CONNECTOR_AUDIT_HASH_KEY"}
    env["CONNECTOR_AUDIT_HASH_KEY_FILE"] = str(tmp_path / "nope")
    assert Settings.load(env, for_service=True).problems == (
        f"CONNECTOR_AUDIT_HASH_KEY_FILE names {tmp_path / 'nope'}, which cannot be read: "
        "No such file or directory",
    )


def test_vault_key_file_keeps_its_meaning(tmp_path: Path) -> None:
    """CONNECTOR_VAULT_KEY_FILE stays a path for the vault to read itself (permissions checked
    there); CONNECTOR_VAULT_KEYS_FILE is the keys' value read from a file."""
    keys = tmp_path / "keys"
    keys.write_text("k1:abc\n")
    settings = Settings.from_env(
        {"CONNECTOR_VAULT_KEY_FILE": str(keys), "CONNECTOR_VAULT_KEYS_FILE": str(keys)}
    )
    assert settings.vault_key_file == keys
    assert settings.vault_keys == "k1:abc"


# --- what the service needs --------------------------------------------------------------------


def test_a_complete_service_configuration_has_no_problems() -> None:
    """The settings serve needs, all present: nothing to report."""
    assert Settings.from_env(SERVICE).problems_for_service() == []
    assert Settings.for_service(SERVICE).oauth_client_id == "client-id"


def test_everything_serve_needs_is_listed_at_once(tmp_path: Path) -> None:
    """An empty configuration lists every requirement of serve, each naming its variable."""
    problems = Settings().problems_for_service()
    assert [p.split()[0] for p in problems] == [
        "CONNECTOR_JWT_SECRET",
        "CONNECTOR_AUDIT_HASH_KEY",
        "CONNECTOR_OAUTH_CLIENT_ID",
        "CONNECTOR_OAUTH_CLIENT_SECRET",
        "CONNECTOR_OAUTH_REDIRECT_URIS",
        "CONNECTOR_VAULT_KEYS",
    ]
    assert "CONNECTOR_JWT_PUBLIC_KEY_FILE" in problems[0]
    assert "CONNECTOR_VAULT_KEY_FILE" in problems[-1]


def test_key_files_serve_reads_must_be_readable(tmp_path: Path) -> None:
    """A JWT public key, audit signing key or vault key file that cannot be opened is named."""
    missing = tmp_path / "missing.pem"
    problems = Settings.from_env(
        {
            **SERVICE,
            "CONNECTOR_JWT_PUBLIC_KEY_FILE": str(missing),
            "CONNECTOR_AUDIT_SIGNING_KEY_FILE": str(missing),
            "CONNECTOR_VAULT_KEY_FILE": str(missing),
        }
    ).problems_for_service()
    assert problems == [
        f"{name} names {missing}, which cannot be read: No such file or directory"
        for name in (
            "CONNECTOR_JWT_PUBLIC_KEY_FILE",
            "CONNECTOR_AUDIT_SIGNING_KEY_FILE",
            "CONNECTOR_VAULT_KEY_FILE",
        )
    ]


def test_for_service_reports_malformed_and_missing_together() -> None:
    """Malformed and missing settings come in the same error; a malformed list is not also
    reported as missing."""
    env = {**SERVICE, "CONNECTOR_PORT": "x", "CONNECTOR_OAUTH_REDIRECT_URIS": "callback"}
    del env["CONNECTOR_AUDIT_HASH_KEY"]
    with pytest.raises(SettingsError) as caught:
        Settings.for_service(env)
    assert [p.split()[0] for p in caught.value.problems] == [
        "CONNECTOR_OAUTH_REDIRECT_URIS",
        "CONNECTOR_PORT",
        "CONNECTOR_AUDIT_HASH_KEY",
    ]


# --- the commands, as real processes --------------------------------------------------------


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONNECTOR), *args],
        cwd=cwd, env={**_clean_environ(), **(env or {})},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_check_config_good_configuration(tmp_path: Path) -> None:
    """A complete configuration: exit 0, every setting with value and source, secrets masked,
    nothing written to the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    secret_file = tmp_path / "jwt"
    secret_file.write_text(SECRET_VALUES["CONNECTOR_JWT_SECRET"] + "\n")
    env = {k: v for k, v in SERVICE.items() if k != "CONNECTOR_JWT_SECRET"}
    env["CONNECTOR_JWT_SECRET_FILE"] = str(secret_file)
    env["CONNECTOR_DATABASE_URL"] = "postgresql://app:db-password-42@db.internal/connector"
    result = _run(cwd, "check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    jwt_chars = len(SECRET_VALUES["CONNECTOR_JWT_SECRET"])
    vault_chars = len(SECRET_VALUES["CONNECTOR_VAULT_KEYS"])
    assert lines["CONNECTOR_JWT_SECRET"].split()[1:] == ["set", f"({jwt_chars}", "chars)", "file"]
    assert lines["CONNECTOR_VAULT_KEYS"].split()[1:] == [
        "set", f"({vault_chars}", "chars)", "environment",
    ]  # fmt: skip
    assert lines["CONNECTOR_PORT"].split()[1:] == ["8080", "default"]
    assert "postgresql://app:***@db.internal/connector" in lines["CONNECTOR_DATABASE_URL"]
    assert "OK: connector serve can start" in result.stdout
    _assert_no_secret(result, *SECRET_VALUES.values(), "db-password-42")
    assert list(cwd.iterdir()) == []


def test_check_config_bad_configuration(tmp_path: Path) -> None:
    """Malformed and missing settings: exit 2, all of them on stderr, no traceback, no
    secret, nothing written."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        "CONNECTOR_JWT_SECRET": SECRET_VALUES["CONNECTOR_JWT_SECRET"],
        "CONNECTOR_OAUTH_CLIENT_SECRET": SECRET_VALUES["CONNECTOR_OAUTH_CLIENT_SECRET"],
        "CONNECTOR_PORT": "eighty",
        "CONNECTOR_LOG_LEVEL": "LOUD",
        "CONNECTOR_DATABASE_URL": f"sqlite:///{cwd / 'data' / 'c.db'}",
    }
    result = _run(cwd, "check-config", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for expected in (
        "CONNECTOR_PORT must be an integer, got 'eighty'",
        "CONNECTOR_LOG_LEVEL must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', got 'LOUD'",
        "CONNECTOR_AUDIT_HASH_KEY (or CONNECTOR_AUDIT_HASH_KEY_FILE) is required",
        "CONNECTOR_OAUTH_CLIENT_ID is required",
        "CONNECTOR_OAUTH_REDIRECT_URIS is required",
        "CONNECTOR_VAULT_KEYS (or CONNECTOR_VAULT_KEYS_FILE) or CONNECTOR_VAULT_KEY_FILE",
    ):
        assert expected in result.stderr
    assert "6 problems with the settings" in result.stderr
    assert "'eighty' (invalid)" in result.stdout
    _assert_no_secret(result, *SECRET_VALUES.values())
    assert list(cwd.iterdir()) == []


def test_check_config_json_names_sources_and_masks_secrets(tmp_path: Path) -> None:
    """--json: every setting with variable, value and source (default, environment, .env,
    file); secrets masked; the problems list; unknown CONNECTOR_* variables flagged."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    dotenv = tmp_path / "service.env"
    dotenv.write_text("CONNECTOR_WORKERS=3\n")
    key = tmp_path / "hash-key"
    key.write_text(SECRET_VALUES["CONNECTOR_AUDIT_HASH_KEY"])
    env = {k: v for k, v in SERVICE.items() if k != "CONNECTOR_AUDIT_HASH_KEY"}
    env |= {
        "CONNECTOR_AUDIT_HASH_KEY_FILE": str(key),
        "CONNECTOR_ENV_FILE": str(dotenv),
        "CONNECTOR_WORKER": "2",
    }
    result = _run(cwd, "check-config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["env_file"] == str(dotenv)
    settings = report["settings"]
    assert settings["workers"] == {"variable": "CONNECTOR_WORKERS", "value": 3, "source": ".env"}
    chars = len(SECRET_VALUES["CONNECTOR_AUDIT_HASH_KEY"])
    assert settings["audit_hash_key"]["value"] == f"set ({chars} chars)"
    assert settings["audit_hash_key"]["source"] == "file"
    assert settings["jwt_secret"]["source"] == "environment"
    assert settings["jwt_public_key_file"] == {
        "variable": "CONNECTOR_JWT_PUBLIC_KEY_FILE", "value": None, "source": "default",
    }  # fmt: skip
    assert settings["oauth_redirect_uris"]["value"] == [SERVICE["CONNECTOR_OAUTH_REDIRECT_URIS"]]
    assert set(settings) == set(settable_fields(Settings))
    assert report["ignored"] == ["CONNECTOR_WORKER"]
    _assert_no_secret(result, *SECRET_VALUES.values())
    assert list(cwd.iterdir()) == []


def test_check_config_json_on_failure(tmp_path: Path) -> None:
    """--json with problems: exit 2, ok false, the problems in the JSON and on stderr."""
    result = _run(tmp_path, "check-config", "--json", env={"CONNECTOR_WORKERS": "100"})
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["settings"]["workers"]["invalid"] is True
    assert report["problems"][0] == "CONNECTOR_WORKERS must be between 1 and 64, got '100'"
    assert report["problems"][0] in result.stderr


def test_serve_with_bad_settings_writes_nothing(tmp_path: Path) -> None:
    """serve refuses missing and malformed settings with exit 2 before it creates the database
    directory, opens the audit log or migrates; --workers problems are listed with the rest."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        k: v for k, v in SERVICE.items()
        if k not in {"CONNECTOR_AUDIT_HASH_KEY", "CONNECTOR_OAUTH_CLIENT_ID"}
    }  # fmt: skip
    env |= {
        "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'connector.db'}",
        "CONNECTOR_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'audit.db'}",
    }
    missing = (
        "CONNECTOR_AUDIT_HASH_KEY (or CONNECTOR_AUDIT_HASH_KEY_FILE) is required",
        "CONNECTOR_OAUTH_CLIENT_ID is required",
    )
    # only settings that are needed late (once the databases were migrated, before this check)
    result = _run(cwd, "serve", env=env)
    assert result.returncode == 2
    assert "2 problems with the settings" in result.stderr
    assert all(problem in result.stderr for problem in missing)
    # and with malformed ones and a bad flag, every problem in the same message
    result = _run(
        cwd, "serve", "--workers", "0", "--port", "70000",
        env={**env, "CONNECTOR_LOG_FORMAT": "xml"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "5 problems with the settings" in result.stderr
    assert "--port must be between 1 and 65535, got 70000" in result.stderr
    assert "CONNECTOR_LOG_FORMAT must be one of 'json', 'console', got 'xml'" in result.stderr
    assert "--workers must be between 1 and 64, got 0" in result.stderr
    assert all(problem in result.stderr for problem in missing)
    _assert_no_secret(result, *SECRET_VALUES.values())
    assert not (tmp_path / "data").exists()
    assert list(cwd.iterdir()) == []


def test_other_commands_report_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    """A command that only reads settings (token mint) meets a bad one: message, exit 2."""
    result = _run(
        tmp_path, "token", "mint", "--sub", "u1", "--role", "user",
        env={"CONNECTOR_JWT_SECRET": "x", "CONNECTOR_PORT": "eighty"},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "CONNECTOR_PORT must be an integer, got 'eighty'\n"
