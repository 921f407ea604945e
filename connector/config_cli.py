"""`connector check-config`: the settings `connector serve` would run with, where each came from,
and every problem at once (exit 2), with secrets masked. Reads only; writes nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connector.settings import Loaded, Settings, SettingsError
from connector.settings_sources import (
    ENV_FILE_VARIABLE,
    PREFIX,
    SECRET_FIELDS,
    read_dotenv,
    settable_fields,
    variable,
)

# Database URLs may carry a password.
URL_FIELDS = frozenset({"database_url", "audit_database_url", "audit_admin_database_url"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    loaded = Settings.load(for_service=True)
    report = _report(loaded)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(_text(report))
    if loaded.problems:
        sys.stderr.write(
            f"connector serve would refuse to start: {SettingsError(*loaded.problems)}\n"
        )
        return 2
    return 0


def _report(loaded: Loaded) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in settable_fields(Settings):
        entry: dict[str, Any] = {
            "variable": variable(name),
            "value": _shown(name, getattr(loaded.settings, name)),
            "source": loaded.origins[name].value,
        }
        if name in loaded.invalid:
            entry["value"], entry["invalid"] = loaded.invalid[name], True
        settings[name] = entry
    return {
        "ok": not loaded.problems,
        "env_file": None if loaded.env_file is None else str(loaded.env_file),
        "settings": settings,
        "problems": list(loaded.problems),
        "ignored": _ignored(loaded.env_file),
    }


def _shown(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return f"set ({len(value)} chars)" if value else "unset"
    if name in URL_FIELDS:
        return _without_password(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _ignored(env_file: Path | None) -> list[str]:
    """CONNECTOR_* variables that are no setting: most likely a typo of one."""
    known = {variable(name) for name in settable_fields(Settings)}
    known |= {f"{variable(name)}_FILE" for name in SECRET_FIELDS} | {ENV_FILE_VARIABLE}
    names = set(os.environ)
    if env_file is not None:
        names |= set(read_dotenv(env_file)[0])
    return sorted(n for n in names if n.startswith(PREFIX) and n not in known)


def _text(report: dict[str, Any]) -> str:
    env_file = report["env_file"] or "none (no ./.env, CONNECTOR_ENV_FILE unset)"
    lines = [f"Settings for connector serve (.env file: {env_file})", ""]
    rows = [
        (entry["variable"], _cell(entry), entry["source"]) for entry in report["settings"].values()
    ]
    width = max(len(name) for name, _, _ in rows)
    value_width = min(60, max(len(value) for _, value, _ in rows))
    lines += [f"  {n:<{width}}  {v:<{value_width}}  {source}" for n, v, source in rows]
    if report["ignored"]:
        lines += ["", "Not settings (ignored): " + ", ".join(report["ignored"])]
    verdict = (
        "OK: connector serve can start with these settings."
        if report["ok"]
        else (f"NOT OK: {len(report['problems'])} problem(s), listed on stderr.")
    )
    lines += ["", verdict, ""]
    return "\n".join(lines)


def _cell(entry: dict[str, Any]) -> str:
    value = entry["value"]
    if entry.get("invalid"):
        return f"{value!r} (invalid)"
    if isinstance(value, list):
        return ",".join(value) or "unset"
    return "unset" if value is None or value == "" else str(value)
