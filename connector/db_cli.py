"""`connector migrate`: apply the connector's database migrations.

A `--db` that is no database (a directory, a file that is not SQLite) or a server that refuses
is said in one line and exit status 2, the path left as it was; a missing or empty SQLite file
becomes the database, as migrating is meant to do.
"""

from __future__ import annotations

import argparse
import sys

from connector.db import migrate_or_explain
from connector.settings import Settings

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="database URL (default: CONNECTOR_DATABASE_URL or the embedded SQLite file)"
    )


def run(args: argparse.Namespace) -> int:
    url = args.db or Settings.from_env().database_url
    problem = migrate_or_explain(url)
    if problem is not None:
        sys.stderr.write(f"connector migrate: {problem}\n")
        return EXIT_USAGE
    print(f"migrations applied to {url.split('@')[-1]}")  # noqa: T201 - CLI output
    return EXIT_OK
