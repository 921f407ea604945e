"""`connector serve`: the HTTP service, configured by `CONNECTOR_*` environment variables."""

from __future__ import annotations

import argparse
import sys

from audit.errors import AuditError
from connector.db import migrate_or_explain
from connector.errors import SchemaVersionError
from connector.logs import configure_logging
from connector.settings import Settings, SettingsError, check_workers
from connector.web.app import create_app, freeze_startup_heap
from connector.web.server import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default CONNECTOR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default CONNECTOR_PORT or 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        help="service processes sharing the port (default CONNECTOR_WORKERS or 1); each takes "
        "1/N of the per-user Gmail quota",
    )
    # set by the pool for its children: run one worker, port shared with SO_REUSEPORT
    parser.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    # Every problem is named in one go, before anything touches the disk: the database
    # directory, migrations and workers all come after this check.
    loaded = Settings.load(for_service=True)
    problems = list(loaded.problems)
    settings = loaded.settings
    workers = settings.workers
    if args.workers is not None:
        try:
            workers = check_workers(args.workers, "--workers")
        except SettingsError as exc:
            problems.append(str(exc))
    if args.port is not None and not 1 <= args.port <= 65535:
        problems.append(f"--port must be between 1 and 65535, got {args.port}")
    if problems:
        sys.stderr.write(f"{SettingsError(*problems)}\n")
        return 2
    configure_logging(settings.log_format, settings.log_level)
    host, port = args.host or settings.host, args.port or settings.port
    # The connector database is migrated here first, so that a path that is no database, a
    # refused server or an unknown revision is one line, not a traceback from the app's start.
    if args.worker_index is None and (problem := migrate_or_explain(settings.database_url)):
        sys.stderr.write(f"connector serve: the connector database: {problem}\n")
        return 2
    if workers > 1 and args.worker_index is None:
        from connector.web.workers import run_pool

        try:
            return run_pool(settings.model_copy(update={"workers": workers}), host, port, workers)
        except (AuditError, SchemaVersionError) as exc:  # a database refused the schema or login
            sys.stderr.write(f"connector serve: {exc}\n")
            return 2
    from connector.wiring import real_accounts

    try:
        app = create_app(settings, accounts=real_accounts)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    app.on_startup.append(freeze_startup_heap)  # runs after the cleanup contexts are set up
    # SIGINT/SIGTERM: stop accepting, finish in-flight requests, then run cleanup_ctx in reverse
    # (background tasks, sessions, audit log, engine); aiohttp's own parse errors as problems.
    try:
        serve(app, settings, host=host, port=port, reuse_port=args.worker_index is not None)
    except (AuditError, SchemaVersionError) as exc:  # e.g. an audit login that may change rows
        sys.stderr.write(f"connector serve: {exc}\n")
        return 2
    return 0
