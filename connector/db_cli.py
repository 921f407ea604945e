"""`connector migrate`: apply the connector's database migrations.

A `--db` that is no database (a directory, a file that is not SQLite) or a server that refuses
is said in one line and exit status 2, the path left as it was; a missing or empty SQLite file
becomes the database, as migrating is meant to do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.exc import SQLAlchemyError

from audit.cli_target import check_target, redacted
from audit.errors import AuditLogUnavailableError
from connector.db import create_engine, migrate
from connector.settings import Settings

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="database URL (default: CONNECTOR_DATABASE_URL or the embedded SQLite file)"
    )


async def _run(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    url = args.db or Settings.from_env().database_url
    try:
        check_target(url, create=True)
        asyncio.run(_run(url))
    except AuditLogUnavailableError as exc:
        sys.stderr.write(f"connector migrate: cannot open the database: {exc}\n")
        return EXIT_USAGE
    except SQLAlchemyError as exc:  # a refused login, a missing database, a damaged file
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        sys.stderr.write(f"connector migrate: {redacted(url)}: {reason}\n")
        return EXIT_USAGE
    except OSError as exc:  # a server that refuses or cannot be reached
        reason = exc.strerror or str(exc)
        sys.stderr.write(f"connector migrate: {redacted(url)}: cannot connect: {reason}\n")
        return EXIT_USAGE
    print(f"migrations applied to {url.split('@')[-1]}")  # noqa: T201 - CLI output
    return EXIT_OK
