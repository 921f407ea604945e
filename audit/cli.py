"""The `audit` command: verify, verify-receipt, query, export, checkpoints, migrate, pubkey, keygen.

Exit codes (`audit.cli_common`): 0 success (`verify`: intact, and authentic under pinned keys),
1 damage found, 2 usage error or the database is not an audit log, 3 intact but not authenticated
(no pinned keys: consistency only). Queries, exports and verifications are themselves recorded in
the log (actor `system:audit-cli`, or `reviewer:<id>` with `--actor`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg  # type: ignore[import-untyped]

from audit.cli_args import add_db, counted, enum_arg, quiet_broken_pipe, resolve_db
from audit.cli_common import EXIT_CODES_TEXT, EXIT_OK, EXIT_USAGE, err, record
from audit.cli_pack import add_verify_pack_parser, verify_pack_command
from audit.cli_segments import SEGMENT_HANDLERS, add_segment_parsers
from audit.cli_target import migrate_cli_log, open_cli_log, redacted
from audit.cli_verify import (
    add_jobs_argument,
    add_receipt_parser,
    add_trust_arguments,
    add_witness_argument,
    verify,
    verify_receipt_command,
)
from audit.encoding import format_time
from audit.errors import AuditError, AuditLogUnavailableError, NotAnAuditLogError
from audit.event import InvalidEventError
from audit.export import ExportFormat, export_lines
from audit.log import AuditLog
from audit.records import QueryFilter, StoredEvent
from audit.schema import WRITER_ROLE
from audit.signing import (
    KeyFormatError,
    checkpoint_json,
    generate_key,
    key_id,
    load_private_key,
    public_pem,
    save_private_key,
)
from audit.trust import fingerprint
from audit.vocab import Action, Decision, Outcome, Purpose


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The filter flags, each with the QueryFilter field it sets: one table for the parser and for
# `_filters`, so that a flag cannot be added to one and forgotten in the other.
_FILTERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--account", "account_id", {"help": "account id"}),
    ("--actor-id", "actor_id", {"help": "events done by this actor id (a filter)"}),
    ("--action", "action", {"type": enum_arg(Action), "metavar": "ACTION",
                            "help": "action, e.g. gmail.message.read"}),
    ("--purpose", "purpose", {"type": enum_arg(Purpose), "metavar": "PURPOSE"}),
    ("--decision", "decision", {"type": enum_arg(Decision), "metavar": "DECISION"}),
    ("--since", "since", {"type": _time, "help": "ISO time, inclusive (UTC if no offset)"}),
    ("--until", "until", {"type": _time, "help": "ISO time, exclusive (UTC if no offset)"}),
    ("--resource", "resource_id", {"help": "message, thread, draft or attachment id"}),
)  # fmt: skip


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (all must match)")
    for flag, _field, options in _FILTERS:
        group.add_argument(flag, **options)


_add_db = add_db  # --db (or $CONNECTOR_AUDIT_DATABASE_URL) and --as-reviewer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audit",
        description="Verify, query and export the append-only, hash-chained audit log.",
        epilog=EXIT_CODES_TEXT,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser(
        "verify", help="recompute every hash and check every checkpoint against pinned keys"
    )
    _add_db(verify)
    add_trust_arguments(verify)
    add_witness_argument(verify)
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_jobs_argument(verify)
    verify.add_argument(
        "--segments", type=Path, metavar="DIR",
        help="archive directory (`audit archive`): verify its segments and tombstones and the "
        "live log as one chain (in one process: --jobs does not apply)",
    )  # fmt: skip

    add_receipt_parser(sub)
    add_segment_parsers(sub, _add_db)
    add_verify_pack_parser(sub, _add_db)

    migrate = sub.add_parser(
        "migrate",
        help="create or migrate the audit schema, as the tables' owner",
        description="Run as the owner (an administrator's URL). The service then logs in as "
        "audit_writer, which may only INSERT and SELECT.",
    )
    migrate.add_argument("--db", required=True, help="the owner's audit log URL")

    query = sub.add_parser("query", help="list events matching filters")
    _add_db(query)
    _add_filters(query)
    query.add_argument("--limit", type=int, default=100, help="page size (default 100)")
    query.add_argument("--after", type=int, metavar="SEQ", help="cursor: events after this seq")
    query.add_argument("--before", type=int, metavar="SEQ", help="cursor: events before this seq")
    query.add_argument("--newest-first", action="store_true", help="newest events first")
    query.add_argument("--format", choices=["table", "json"], default="table")

    export = sub.add_parser("export", help="export matching events")
    _add_db(export)
    _add_filters(export)
    export.add_argument(
        "--format", type=ExportFormat, choices=list(ExportFormat), default=ExportFormat.JSONL
    )
    export.add_argument("--out", type=Path, help="output file (default: stdout)")

    checkpoints = sub.add_parser("checkpoints", help="export signed checkpoints and keys as JSON")
    _add_db(checkpoints)
    checkpoints.add_argument("--out", type=Path, help="output file (default: stdout)")

    pubkey = sub.add_parser("pubkey", help="print the public key (PEM) of a signing key file")
    pubkey.add_argument("--key", type=Path, required=True, help="private key PEM file")
    pubkey.add_argument(
        "--fingerprint", action="store_true", help="print its SHA-256 fingerprint instead"
    )

    keygen = sub.add_parser("keygen", help="create a new Ed25519 checkpoint signing key")
    keygen.add_argument("--out", type=Path, required=True, help="file to create (mode 0600)")
    return parser


def _filters(args: argparse.Namespace) -> QueryFilter:
    # argparse's attribute for a flag is the flag without "--", "-" read as "_".
    return QueryFilter(**{
        field: getattr(args, flag[2:].replace("-", "_")) for flag, field, _options in _FILTERS
    })  # fmt: skip


def _table(events: Sequence[StoredEvent], out: TextIO) -> None:
    out.write(
        f"{'SEQ':>8}  {'TIME':27}  {'ACCOUNT':16}  {'ACTOR':24}  {'ACTION':26}  "
        f"{'DECISION':8}  OUTCOME\n"
    )
    for s in events:
        e = s.event
        actor = f"{e.actor.kind.value}:{e.actor.id}"
        out.write(
            f"{s.seq:>8}  {format_time(e.time):27}  {e.account_id or '-':16}  {actor:24}  "
            f"{e.action.value:26}  {e.decision.value:8}  {e.outcome.value}\n"
        )


async def _query(log: AuditLog, args: argparse.Namespace) -> int:
    await record(log, args, Action.AUDIT_QUERIED, Outcome.OK)
    events = await log.query(
        _filters(args),
        limit=args.limit,
        after_seq=args.after,
        before_seq=args.before,
        newest_first=args.newest_first,
    )
    if args.format == "json":
        from audit.export import jsonl_record

        json.dump([jsonl_record(s) for s in events], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _table(events, sys.stdout)
    if events and len(events) == args.limit:
        flag = "--before" if args.newest_first else "--after"
        err(f"next page: {flag} {events[-1].seq}")
    return EXIT_OK


async def _export(log: AuditLog, args: argparse.Namespace) -> int:
    await record(log, args, Action.AUDIT_EXPORTED, Outcome.OK)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    tally = [0]
    try:
        events = counted(log.iter_events(_filters(args)), tally, err)
        async for line in export_lines(events, args.format):
            out.write(line)
    finally:
        if args.out:
            out.close()
    err(f"exported {tally[0]} events ({args.format.value}) to {args.out or 'stdout'}")
    return EXIT_OK


async def _checkpoints(log: AuditLog, args: argparse.Namespace) -> int:
    document = {
        "public_keys": await log.store.public_keys(),
        "checkpoints": [checkpoint_json(c) for c in await log.checkpoints()],
    }
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


async def _with_log(args: argparse.Namespace) -> int:
    handlers = {"verify": verify, "query": _query, "export": _export, "checkpoints": _checkpoints}
    handlers.update(SEGMENT_HANDLERS)
    log = await open_cli_log(args.db)
    try:
        return await handlers[args.command](log, args)
    finally:
        await log.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "keygen":
            key = generate_key()
            save_private_key(key, args.out)
            err(f"wrote {args.out} (key id {key_id(key.public_key())})")
            return EXIT_OK
        if args.command == "pubkey":
            public = load_private_key(args.key).public_key()
            sys.stdout.write(fingerprint(public) + "\n" if args.fingerprint else public_pem(public))
            return EXIT_OK
        if args.command == "migrate":
            version = asyncio.run(migrate_cli_log(args.db))
            err(
                f"audit schema at version {version}; the service logs in as {WRITER_ROLE} "
                "(INSERT and SELECT only)"
            )
            return EXIT_OK
        if args.command == "verify-receipt":
            return asyncio.run(verify_receipt_command(args))
        if resolve_db(args) is None:
            return EXIT_USAGE
        if args.command == "verify-pack":
            return asyncio.run(verify_pack_command(args))
        return asyncio.run(_with_log(args))
    except BrokenPipeError:  # the reader (`| head`) has what it wanted
        quiet_broken_pipe()
        return EXIT_OK
    except AuditLogUnavailableError as exc:
        err(f"audit: cannot open the audit log: {exc}")
    except NotAnAuditLogError as exc:
        err(f"audit: {redacted(args.db)} is not an audit log: {exc}")
    except (AuditError, InvalidEventError, KeyFormatError, OSError, ValueError) as exc:
        err(f"audit: {type(exc).__name__}: {exc}")
    except asyncpg.PostgresError as exc:  # e.g. a refused login or a missing privilege
        err(f"audit: PostgreSQL: {type(exc).__name__}: {exc}")
    return EXIT_USAGE
