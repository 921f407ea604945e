"""`connector migrate`: apply the connector's database migrations."""

from __future__ import annotations

import argparse
import asyncio

from connector.db import create_engine, migrate
from connector.settings import Settings


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
    asyncio.run(_run(url))
    print(f"migrations applied to {url.split('@')[-1]}")  # noqa: T201 - CLI output
    return 0
