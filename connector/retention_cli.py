"""`connector retention run`: one retention run now, from the command line.

Exactly the run `connector serve` makes every CONNECTOR_RETENTION_RUN_HOURS, built by the same
composition root (`connector.wiring.retention_run`) from the same settings: the service's audit
log (signed checkpoints, witness), the real accounts domain's unlinker (so dormant accounts past
their notice are revoked at Google with the OAuth client, purged and given signed receipts), and
the audit log's own archiving when CONNECTOR_AUDIT_ARCHIVE_DIR is set. Authorized for the
connector itself and recorded as `retention.run`. Prints the run's report as one JSON line.
Exit 0 done, 1 another instance's run holds the lock, 2 bad or missing settings or a database
that is not there (one line, before anything is written), 3 the run was made but the audit
archive step was refused (the reason on stderr and in the report).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from enum import StrEnum

import aiohttp
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from audit.errors import AuditError
from audit.signing import KeyFormatError
from connector.errors import VaultError
from connector.settings import Settings, SettingsError

EXIT_OK, EXIT_BUSY, EXIT_USAGE, EXIT_ARCHIVE_REFUSED = 0, 1, 2, 3


class RetentionCommand(StrEnum):
    RUN = "run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    run_parser = sub.add_parser(RetentionCommand.RUN, help="run retention once, now (audited)")
    run_parser.add_argument("--db", help="database URL (default: CONNECTOR_DATABASE_URL)")
    run_parser.add_argument("--audit-db", help="audit database URL (default: CONNECTOR_AUDIT_...)")


def _err(text: str) -> None:
    sys.stderr.write(f"connector retention: {text}\n")


# What `connector serve` needs that the run needs too: the OAuth client and the vault keys to
# unlink dormant accounts, the hash key, and what archiving the audit log needs.
NEEDED = (
    "CONNECTOR_OAUTH_CLIENT_", "CONNECTOR_VAULT_", "CONNECTOR_AUDIT_HASH_KEY",
    "CONNECTOR_AUDIT_SIGNING_KEY_FILE", "CONNECTOR_AUDIT_ARCHIVE_", "CONNECTOR_AUDIT_SEGMENT_",
)  # fmt: skip


def unmet(settings: Settings) -> list[str]:
    """The service's own checks (`Settings.problems_for_service`) of what the run needs."""
    return [p for p in settings.problems_for_service() if p.startswith(NEEDED)]


async def _run(settings: Settings) -> int:
    from connector.db import create_engine
    from connector.live.hooks import LiveHooks
    from connector.policy.recorder import Recorder
    from connector.wiring import (
        AccountsBundle,
        build_accounts,
        build_live,
        build_services,
        open_service_audit_log,
        retention_run,
    )

    engine = create_engine(settings.database_url)
    audit = await open_service_audit_log(settings)
    try:
        async with aiohttp.ClientSession() as session:
            recorder = Recorder(audit)
            # The service's accounts domain without its link flow (no redirect URI needed).
            hooks = LiveHooks()
            built = build_accounts(settings, engine=engine, session=session, recorder=recorder,
                                   before_revoke=(hooks.before_revoke,))  # fmt: skip
            bundle = AccountsBundle(
                owners=built.accounts, token_source=built.token_source,
                directory=built.accounts, live_hooks=hooks, unlinker=built.unlinker,
            )  # fmt: skip
            services = build_services(
                settings, engine=engine, audit_log=audit, recorder=recorder, session=session,
                accounts=bundle,
            )  # fmt: skip
            try:
                # Binds the unlink hooks as the service does (with push, `users.stop`
                # before the grant is revoked); no loop of the live mailbox runs here.
                build_live(services, session)
                retention = retention_run(
                    settings, engine=engine, authority=services.authority, audit_log=audit,
                    unlinker=services.accounts.unlinker,
                )  # fmt: skip
                report = await retention.run()
            finally:
                await services.usage.close()
    finally:
        await audit.close()
        await engine.dispose()
    if report is None:
        _err("another instance is running retention now; nothing done")
        return EXIT_BUSY
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    segments = report.audit_segments
    if segments is not None and segments.refused is not None:
        _err(f"the audit archive step was refused: {segments.refused}")
        return EXIT_ARCHIVE_REFUSED
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _err(str(exc))
        return EXIT_USAGE
    given = {"database_url": args.db, "audit_database_url": args.audit_db}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v})
    problems = unmet(settings)
    if problems:
        _err("the run unlinks dormant accounts and archives the audit log as `connector serve` "
             f"does, and needs what it needs: {'; '.join(problems)}")  # fmt: skip
        return EXIT_USAGE
    try:
        return asyncio.run(_run(settings))
    except (SettingsError, VaultError, KeyFormatError, AuditError) as exc:
        _err(str(exc))  # AuditError: not an audit log, unreachable, or a login with more rights
        return EXIT_USAGE
    except sa_exc.DBAPIError as exc:  # not reachable, or no connector tables yet
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        _err(f"cannot run on {shown} (run `connector migrate` first?): {type(exc.orig).__name__}")
        return EXIT_USAGE
