"""`connector serve`: the HTTP service, configured by `CONNECTOR_*` environment variables."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from connector.logs import configure_logging
from connector.settings import Settings, SettingsError
from connector.web.app import create_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default CONNECTOR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default CONNECTOR_PORT or 8080)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    configure_logging(settings.log_format, settings.log_level)  # type: ignore[arg-type]
    from connector.web.linking import real_accounts

    try:
        app = create_app(settings, accounts=real_accounts)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    # aiohttp handles SIGINT/SIGTERM: stop accepting, finish in-flight requests (shutdown_timeout),
    # then run cleanup_ctx in reverse (background tasks, sessions, audit log, engine).
    web.run_app(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        access_log=None,
        shutdown_timeout=30,
        print=None,
    )
    return 0
