"""`connector vault`: generate keys, rotate (re-encrypt under the current key), key usage.

Rotation in three steps, with no downtime:

1. `connector vault generate-key --key-id k2 --key-file /etc/connector/vault.keys` puts a new
   key first in the file (or prints a `kid:base64` entry to put first in CONNECTOR_VAULT_KEYS);
   restart the service so new secrets are sealed with it. Old keys stay, so old ciphertexts
   remain readable.
2. `connector vault rotate --new-key-id k2` re-encrypts every sealed value under k2 (it refuses
   if k2 is not the current key) and records VAULT_KEY_ROTATED in the audit log.
3. `connector vault status` shows what each key still protects; remove a key when it is zero.

Keys are never printed except by `generate-key` without `--key-file`, on request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from audit.cli_target import check_target, sqlite_path
from audit.errors import AuditLogUnavailableError
from connector.accounts.vault import KeyRing, Vault, generate_key_entry
from connector.db import is_unavailable
from connector.errors import VaultError
from connector.settings import Settings, SettingsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vault_command", required=True, metavar="ACTION")
    gen = sub.add_parser("generate-key", help="create a new 256-bit key (first = current)")
    gen.add_argument("--key-id", required=True, help="short id stored beside each ciphertext")
    gen.add_argument("--key-file", type=Path, help="prepend the key to this file (mode 0600)")
    rot = sub.add_parser("rotate", help="re-encrypt every sealed value under the current key")
    rot.add_argument("--new-key-id", required=True, help="the key id that must be current")
    rot.add_argument("--db", help="database URL (default: CONNECTOR_DATABASE_URL)")
    rot.add_argument("--audit-db", help="audit database URL (default: CONNECTOR_AUDIT_...)")
    status = sub.add_parser("status", help="how many sealed values each key protects")
    status.add_argument("--db", help="database URL (default: CONNECTOR_DATABASE_URL)")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(f"connector vault: {text}\n")


def prepend_key(path: Path, key_id: str) -> None:
    """Add a new current key to a key file, keeping the old keys after it."""
    existing = path.read_text("utf-8") if path.exists() else ""
    if existing.strip():
        ring = KeyRing.parse(existing, source=str(path))
        if key_id in ring.keys:
            raise VaultError(f"{path} already holds a key with id {key_id!r}")
    content = generate_key_entry(key_id) + "\n" + existing
    # Create with 0600 from the start: the key never sits in a world-readable file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    path.chmod(0o600)


async def _rotate(settings: Settings, db_url: str, audit_url: str, new_key_id: str) -> int:
    from audit.log import open_audit_log
    from connector.accounts.rotation import rotate
    from connector.db import create_engine
    from connector.policy.authority import Authority
    from connector.policy.recorder import Recorder

    vault = Vault.from_settings(settings)
    engine = create_engine(db_url)
    audit = await open_audit_log(audit_url)
    try:
        # Rotation touches no account, so the policy needs no owner lookup.
        report = await rotate(engine, vault, Authority(Recorder(audit), owners=None))
    finally:
        await audit.close()
        await engine.dispose()
    _out(json.dumps({"current_key_id": report.current_key_id, "resealed": report.resealed,
                     "by_key_before": report.by_key_before}))  # fmt: skip
    return 0


async def _status(settings: Settings, db_url: str) -> int:
    from connector.accounts.rotation import key_usage
    from connector.db import create_engine

    vault = Vault.from_settings(settings)
    engine = create_engine(db_url)
    try:
        usage = await key_usage(engine, vault)
    finally:
        await engine.dispose()
    _out(json.dumps({"current_key_id": vault.current_key_id, "sealed_values": dict(usage)}))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.vault_command == "generate-key":
            if args.key_file is None:
                _out(generate_key_entry(args.key_id))
            else:
                prepend_key(args.key_file, args.key_id)
                _out(f"added key {args.key_id!r} (now current) to {args.key_file}")
            return 0
        settings = Settings.from_env()
        if args.vault_command == "rotate":  # the key ring first: no database is touched for it
            current = Vault.from_settings(settings).current_key_id
            if current != args.new_key_id:
                _err(
                    f"the current vault key is {current!r}, not {args.new_key_id!r}: put the "
                    "new key first in CONNECTOR_VAULT_KEYS or the key file (see generate-key)"
                )
                return 2
        db_url = args.db or settings.database_url
        check_target(db_url)  # an existing database: a path that is none is said, untouched
        if args.vault_command == "rotate":
            audit_url = args.audit_db or settings.audit_database_url
            check_target(audit_url, create=True)
            return asyncio.run(_rotate(settings, db_url, audit_url, args.new_key_id))
        return asyncio.run(_status(settings, db_url))
    except (VaultError, SettingsError) as exc:
        _err(str(exc))
        return 2
    except AuditLogUnavailableError as exc:
        path = sqlite_path(args.db or Settings.from_env().database_url)
        hint = "; run `connector migrate` first" if path and not Path(path).exists() else ""
        _err(f"cannot open the database: {exc}{hint}")
        return 2
    except sa_exc.DBAPIError as exc:  # a database that is not there yet, or not reachable
        _err(_database_problem(args, exc))
        return 2
    except OSError as exc:  # a PostgreSQL server that refuses the connection
        _err(f"cannot reach the database: {exc.strerror or exc}")
        return 2


def _database_problem(args: argparse.Namespace, exc: sa_exc.DBAPIError) -> str:
    url = args.db or Settings.from_env().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    if is_unavailable(exc):
        return f"cannot reach the connector database {shown}: {type(exc.orig).__name__}"
    return (
        f"the connector database {shown} has no connector tables yet: run `connector migrate` "
        f"first ({type(exc.orig).__name__})"
    )
