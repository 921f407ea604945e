"""`connector retention run`: one retention run now, from the command line.

The same run the service makes every CONNECTOR_RETENTION_RUN_HOURS (see
`connector.rights.retention`): authorized for the connector itself and recorded in the audit
log as `retention.run`. Prints the run's report as one JSON line; exit 1 if another instance's
run holds the lock, 2 on bad settings or a database that is not there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from connector.settings import Settings, SettingsError


class RetentionCommand(StrEnum):
    RUN = "run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    run_parser = sub.add_parser(RetentionCommand.RUN, help="run retention once, now (audited)")
    run_parser.add_argument("--db", help="database URL (default: CONNECTOR_DATABASE_URL)")
    run_parser.add_argument("--audit-db", help="audit database URL (default: CONNECTOR_AUDIT_...)")


def _err(text: str) -> None:
    sys.stderr.write(f"connector retention: {text}\n")


async def _run(settings: Settings, db_url: str, audit_url: str) -> int:
    from audit.log import open_audit_log
    from connector.db import create_engine
    from connector.policy.authority import Authority
    from connector.policy.recorder import Recorder
    from connector.rights.retention import Retention

    engine = create_engine(db_url)
    audit = await open_audit_log(audit_url)
    try:
        retention = Retention(
            engine,
            Authority(Recorder(audit), owners=None),  # the run names no account
            dormant_after=timedelta(days=settings.retention_dormant_days),
            dormant_notice=timedelta(days=settings.retention_dormant_notice_days),
        )
        report = await retention.run()
    finally:
        await audit.close()
        await engine.dispose()
    if report is None:
        _err("another instance is running retention now; nothing done")
        return 1
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _err(str(exc))
        return 2
    db_url = args.db or settings.database_url
    audit_url = args.audit_db or settings.audit_database_url
    try:
        return asyncio.run(_run(settings, db_url, audit_url))
    except sa_exc.DBAPIError as exc:  # not reachable, or no connector tables yet
        shown = make_url(db_url).render_as_string(hide_password=True)
        _err(f"cannot run on {shown} (run `connector migrate` first?): {type(exc.orig).__name__}")
        return 2
