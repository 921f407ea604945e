"""`connector evidence --out DIR`: the assessors' evidence pack, signed with the checkpoint key.

Inputs default to the variables the service reads (CONNECTOR_AUDIT_DATABASE_URL,
CONNECTOR_AUDIT_SIGNING_KEY_FILE, CONNECTOR_AUDIT_TRUSTED_KEYS_FILE, CONNECTOR_AUDIT_WITNESS_FILE,
CONNECTOR_VAULT_KEYS or CONNECTOR_VAULT_KEY_FILE, CONNECTOR_APP_NAME), so on the service's host
the command needs only `--out`. Making the pack is an audit read by a reviewer: authorized and
recorded (AUDIT_EXPORTED) before anything is written. Exit 0 written, 2 bad arguments or inputs
(with the reason, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from audit.cli_args import iso_time
from audit.cli_target import check_target, open_cli_log
from audit.encoding import format_time
from audit.errors import AuditError, AuditLogUnavailableError, NotAnAuditLogError
from audit.event import Actor
from audit.log import AuditLog
from audit.pack_figures import Period
from audit.signing import KeyFormatError, load_private_key
from audit.trust import TrustedKeys, load_trusted_keys
from audit.vocab import Action, ActorKind, Purpose
from connector.accounts.vault import EnvKeyProvider, FileKeyProvider, KeyRing
from connector.clock import Clock, system_clock
from connector.errors import AccessDenied, EvidencePackError, VaultError
from connector.evidence.bases import basis_records
from connector.evidence.collect import ROOT, Sources, collect
from connector.evidence.manifest import write_pack
from connector.evidence.suites import run_suites, skipped
from connector.policy.authority import Authority
from connector.policy.recorder import Change, Recorder
from connector.policy.vocab import Operation

EXIT_OK, EXIT_USAGE = 0, 2
_ENV = {
    "db": "CONNECTOR_AUDIT_DATABASE_URL",
    "signing_key": "CONNECTOR_AUDIT_SIGNING_KEY_FILE",
    "trusted_keys": "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE",
    "witness": "CONNECTOR_AUDIT_WITNESS_FILE",
    "vault_key_file": "CONNECTOR_VAULT_KEY_FILE",
    "app_name": "CONNECTOR_APP_NAME",
    "database": "CONNECTOR_DATABASE_URL",
    "segments": "CONNECTOR_AUDIT_ARCHIVE_DIR",
}


class UsageError(Exception):
    """A bad argument or input, said in one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory to write the pack to (new, empty, or an earlier pack)",
    )
    parser.add_argument(
        "--since", type=iso_time, help="period start, ISO, inclusive (UTC if no offset)"
    )
    parser.add_argument("--until", type=iso_time, help="period end, ISO, exclusive (default: now)")
    parser.add_argument("--db", help=f"audit log URL (default ${_ENV['db']})")
    parser.add_argument(
        "--signing-key",
        type=Path,
        help=f"the checkpoint key that signs the pack (default ${_ENV['signing_key']})",
    )
    parser.add_argument(
        "--trusted-keys",
        type=Path,
        help=f"pinned keys the chain is verified with (default ${_ENV['trusted_keys']})",
    )
    parser.add_argument(
        "--database",
        help="the service database, for the expiry of each human access's basis "
        f"(default ${_ENV['database']}; without it the pack says they were not read)",
    )
    parser.add_argument("--witness", type=Path, help=f"witness file (default ${_ENV['witness']})")
    parser.add_argument(
        "--segments",
        type=Path,
        metavar="DIR",
        help="the audit archive (`audit archive`): the chain is verified across its segments and "
        f"tombstones, as `audit verify --segments` does (default ${_ENV['segments']})",
    )
    parser.add_argument(
        "--vault-key-file",
        type=Path,
        help="vault key ring, for its key ids only (default $CONNECTOR_VAULT_KEYS "
        f"or ${_ENV['vault_key_file']})",
    )
    parser.add_argument(
        "--app-name", help=f"the app's name in the disclosure (default ${_ENV['app_name']})"
    )
    parser.add_argument(
        "--as-reviewer",
        dest="reviewer",
        default="evidence-cli",
        metavar="ID",
        help="the reviewer making the pack, recorded in the log",
    )
    parser.add_argument(
        "--skip-tests",
        action="store_true",
        help="do not run the policy and gate suites (the pack says they were skipped)",
    )


def _default(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name)
    if value is None and os.environ.get(_ENV[name]):
        value = os.environ[_ENV[name]]
        value = value if name in ("db", "app_name", "database") else Path(value)
    return value


def _ring(args: argparse.Namespace) -> KeyRing | None:
    path = _default(args, "vault_key_file")
    if path is not None:
        return FileKeyProvider(path).load()
    if os.environ.get("CONNECTOR_VAULT_KEYS"):
        return EnvKeyProvider(os.environ["CONNECTOR_VAULT_KEYS"]).load()
    return None


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    db, key_path = _default(args, "db"), _default(args, "signing_key")
    if not db:
        raise UsageError(f"name the audit log with --db URL or set {_ENV['db']}")
    if key_path is None:
        raise UsageError(
            f"the pack is signed with the checkpoint key: pass --signing-key or set "
            f"{_ENV['signing_key']}"
        )
    trusted_path, witness = _default(args, "trusted_keys"), _default(args, "witness")
    if witness is not None and not witness.is_file():
        raise UsageError(f"the witness file {witness} does not exist")
    trusted = None if trusted_path is None else load_trusted_keys(trusted_path)
    segments = _default(args, "segments")
    if segments is not None and not segments.is_dir():
        raise UsageError(f"the audit archive {segments} (--segments) is not a directory")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"{args.out} exists and is not a directory; choose another --out")
    if args.since and args.until and args.since >= args.until:
        raise UsageError("--since must be before --until")
    database = _default(args, "database")
    try:
        if database:  # read only: a path that is no database is said, not created
            check_target(database)
    except AuditLogUnavailableError as exc:
        raise UsageError(f"the service database (--database) cannot be read: {exc}") from None
    return {
        "db": db, "key": load_private_key(key_path), "trusted": trusted, "witness": witness,
        "ring": _ring(args), "app_name": _default(args, "app_name") or "The platform",
        "database": database, "segments": segments,
    }  # fmt: skip


async def generate(
    log: AuditLog,
    args: argparse.Namespace,
    inputs: dict[str, Any],
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Authorize and record the read, collect, and write the pack; its manifest."""
    now = clock()
    period = Period(args.since, args.until or now)
    authority = Authority(Recorder(log, clock), None, clock)
    change = Change(Actor(ActorKind.REVIEWER, args.reviewer), Operation.AUDIT_READ,
                    Action.AUDIT_EXPORTED, Purpose.SECURITY)  # fmt: skip
    await authority.permit(change)
    tests = skipped() if args.skip_tests else await asyncio.to_thread(run_suites)
    trusted: TrustedKeys | None = inputs["trusted"]
    sources = Sources(log, trusted, inputs["witness"], period, inputs["ring"], inputs["app_name"],
                      segments=inputs["segments"])  # fmt: skip
    evidence = await collect(sources, tests, format_time(now))
    humans = evidence["figures"]["human_accesses"]
    database = inputs["database"]
    evidence["bases"] = None if database is None else await basis_records(database, humans)
    return write_pack(args.out, evidence, inputs["key"], root=ROOT, app_name=inputs["app_name"])


async def _run(args: argparse.Namespace, inputs: dict[str, Any]) -> dict[str, Any]:
    log = await open_cli_log(inputs["db"])  # a path that is no database is said, untouched
    try:
        return await generate(log, args, inputs)
    finally:
        await log.close()


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        inputs = _inputs(args)
        manifest = asyncio.run(_run(args, inputs))
    except UsageError as exc:
        sys.stderr.write(f"connector evidence: {exc}\n")
        return EXIT_USAGE
    except (NotAnAuditLogError, AuditLogUnavailableError) as exc:
        sys.stderr.write(f"connector evidence: the audit log is not usable: {exc}\n")
        return EXIT_USAGE
    except (EvidencePackError, AccessDenied, VaultError, KeyFormatError, AuditError) as exc:
        sys.stderr.write(f"connector evidence: {exc}\n")
        return EXIT_USAGE
    except (OSError, ValueError, SQLAlchemyError) as exc:
        sys.stderr.write(f"connector evidence: {type(exc).__name__}: {exc}\n")
        return EXIT_USAGE
    chain = manifest["chain"]
    sys.stdout.write(
        f"wrote {args.out} ({len(manifest['files']) + 1} files) in "
        f"{time.monotonic() - started:.1f}s: audit log through seq {chain['head_seq']} "
        f"{chain['authenticity']}; tests {manifest['tests']['status']}; signed by key "
        f"{manifest['signature']['key_id']}\n"
        f"check it: audit verify-pack {args.out} --db AUDIT_LOG_URL --trusted-keys PINNED_KEYS\n"
    )
    return EXIT_OK
