"""Where `Settings` values come from, and our wording for what is wrong with them.

Layers, strongest first: `*_FILE` variants of secrets, the environment, a `.env` file, defaults.
Each source is a pydantic-settings source handing raw strings to the model, so that pydantic does
the parsing and `describe` turns its errors into one line per `CONNECTOR_*` variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import annotated_types
from dotenv import dotenv_values
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from audit.signing import KeyFormatError, load_private_key
from audit.trust import fingerprint, load_trusted_keys

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

PREFIX = "CONNECTOR_"
ENV_FILE_VARIABLE = "CONNECTOR_ENV_FILE"
# Secrets that may come from a file (Docker/Kubernetes secrets) instead of the environment.
SECRET_FIELDS = (
    "jwt_secret", "audit_hash_key", "oauth_client_secret", "vault_keys", "pubsub_token",
    "webhook_secret",
)  # fmt: skip
NOT_FROM_ENVIRONMENT = frozenset({"extra"})


class Origin(StrEnum):
    DEFAULT = "default"
    ENVIRONMENT = "environment"
    DOTENV = ".env"
    FILE = "file"


def variable(field_name: str) -> str:
    return f"{PREFIX}{field_name.upper()}"


def settable_fields(settings_cls: type[BaseSettings]) -> Iterator[str]:
    return (name for name in settings_cls.model_fields if name not in NOT_FROM_ENVIRONMENT)


class VariablesSource(PydanticBaseSettingsSource):
    """`CONNECTOR_<FIELD>` entries of one mapping (the environment, or a parsed `.env`)."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._variables = variables

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._variables.get(variable(field_name)), field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {}
        for name in settable_fields(self.settings_cls):
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                found[key] = value
        return found


class SecretFilesSource(PydanticBaseSettingsSource):
    """`CONNECTOR_<SECRET>_FILE`: the named file's content, less one trailing newline."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._variables = variables
        self.problems: list[str] = []
        self.unreadable: list[str] = []  # field names

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = variable(field_name)
        path = self._variables.get(f"{name}_FILE", "")
        if not path:
            return None, field_name, False
        if self._variables.get(name):
            self.problems.append(f"{name} and {name}_FILE are both set; set only one of them")
            return None, field_name, False
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problems.append(f"{name}_FILE names {path}, which cannot be read: {reason}")
            self.unreadable.append(field_name)
            return None, field_name, False
        return text.removesuffix("\n").removesuffix("\r"), field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {}
        for name in SECRET_FIELDS:
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                found[key] = value
        return found


def dotenv_file(environ: Mapping[str, str]) -> tuple[Path | None, list[str]]:
    """The `.env` to read: CONNECTOR_ENV_FILE's (which must exist), else ./.env if present."""
    named = environ.get(ENV_FILE_VARIABLE, "")
    if named:
        if Path(named).is_file():
            return Path(named), []
        return None, [f"{ENV_FILE_VARIABLE} names {named}, which is not a readable file"]
    default = Path(".env")
    return (default.absolute(), []) if default.is_file() else (None, [])


def read_dotenv(path: Path) -> tuple[dict[str, str], list[str]]:
    try:
        parsed = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"the .env file {path} cannot be read: {exc}"]
    return {k: v for k, v in parsed.items() if v is not None}, []


def describe(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> dict[str, str]:
    """Field name -> our one-line message for each error (pydantic's wording never leaks)."""
    found: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        name = str(loc[0]) if loc else "?"
        field = fields.get(name)
        if field is None:
            found[name] = f"{name!r} is not a setting"
            continue
        where = variable(name)
        if len(loc) > 1 and isinstance(loc[1], int):
            where += f" item {loc[1] + 1}"
        found.setdefault(name, f"{where} {_what(error, field, secret=name in SECRET_FIELDS)}")
    return found


def _what(error: Any, field: FieldInfo, *, secret: bool) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = "" if secret else f", got {error['input']!r}"
    if kind == "value_error" and "error" in ctx:
        return f"{ctx['error']}{got}"
    if kind.startswith("int_"):
        return f"must be an integer{got}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return f"must be {_bounds(field)}{got}"
    if kind == "enum":
        enum = _enum_of(field)
        valid = ", ".join(repr(m.value) for m in enum) if enum else ctx.get("expected", "")
        return f"must be one of {valid}{got}"
    if kind.startswith(("string_", "path_")):
        return f"must be text{got}"
    return f"is not valid{got}"


def _bounds(field: FieldInfo) -> str:
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _enum_of(field: FieldInfo) -> type[Enum] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, Enum) else None


# -- the audit files `connector serve` will use (Settings.problems_for_service) ----------


def witness_problems(path: Path | None) -> list[str]:
    """The witness file is opened for appending at start-up: say now if that would fail (it
    is not created here, since check-config writes nothing)."""
    if path is None:
        return []
    target = path if path.exists() else path.parent
    if not target.is_dir() and not path.exists():
        return [f"CONNECTOR_AUDIT_WITNESS_FILE names {path}, whose directory does not exist"]
    if not os.access(target, os.W_OK):
        return [f"CONNECTOR_AUDIT_WITNESS_FILE names {path}, which this user cannot append to"]
    return []


def audit_key_problems(signing: Path | None, trusted: Path | None) -> list[str]:
    """The trusted-keys file must parse and pin the key the service signs with, or the
    reviewer's verify would reject the service's own checkpoints."""
    if trusted is None:
        return []
    try:
        pins = load_trusted_keys(trusted)
    except (KeyFormatError, ValueError) as exc:
        return [f"CONNECTOR_AUDIT_TRUSTED_KEYS_FILE: {exc}"]
    if signing is None:
        return []
    try:
        public = load_private_key(signing).public_key()
    except (KeyFormatError, TypeError, ValueError) as exc:
        return [f"CONNECTOR_AUDIT_SIGNING_KEY_FILE: {signing} is not an Ed25519 key: {exc}"]
    if pins.admits(public):
        return []
    return [
        f"CONNECTOR_AUDIT_SIGNING_KEY_FILE holds key {fingerprint(public)}, which "
        f"CONNECTOR_AUDIT_TRUSTED_KEYS_FILE ({trusted}) does not pin: add its public key or "
        "fingerprint (`audit pubkey --fingerprint`)"
    ]


def archive_problems(
    directory: Path | None, retention_days: int, signing: Path | None, *,
    postgres_without_owner: bool,
) -> list[str]:  # fmt: skip
    """The archive directory must be writable and its segments signable; dropping needs it,
    and on PostgreSQL the audit tables' owner."""
    if directory is None:
        return [] if not retention_days else [
            "CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS needs CONNECTOR_AUDIT_ARCHIVE_DIR: only "
            "archived segments are dropped"
        ]  # fmt: skip
    problems = []
    if not directory.is_dir():
        problems.append(f"CONNECTOR_AUDIT_ARCHIVE_DIR names {directory}, which is not a directory")
    elif not os.access(directory, os.W_OK | os.X_OK):
        problems.append(f"CONNECTOR_AUDIT_ARCHIVE_DIR names {directory}, which this user cannot "
                        "write to")  # fmt: skip
    if signing is None:
        problems.append("CONNECTOR_AUDIT_ARCHIVE_DIR needs CONNECTOR_AUDIT_SIGNING_KEY_FILE: "
                        "segments and tombstones are signed with the checkpoint key")  # fmt: skip
    if retention_days and postgres_without_owner:
        problems.append("CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS on PostgreSQL needs "
                        "CONNECTOR_AUDIT_ADMIN_DATABASE_URL: segments are dropped as the audit "
                        "tables' owner")  # fmt: skip
    return problems
