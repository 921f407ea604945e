"""The app factory: settings in, a ready `web.Application` out.

Resources open in `cleanup_ctx` order and close in reverse: database engine (migrated), audit log,
the shared outgoing HTTP session, the services, then background housekeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from audit import AuditLog
from connector.accounts.feed_relay import FeedRelay
from connector.background import cancelled_after, running
from connector.db import create_engine, migrate
from connector.logs import get_logger
from connector.policy.recorder import Recorder
from connector.settings import Settings
from connector.web import (
    routes_accounts,
    routes_audit,
    routes_changes,
    routes_delivery,
    routes_evidence,
    routes_features,
    routes_health,
    routes_human,
    routes_inbox,
    routes_organize,
    routes_rights,
)
from connector.web.auth import TokenVerifier
from connector.web.keys import METRICS, ROUTE_SPECS, SERVICES, SETTINGS, VERIFIER
from connector.web.metrics import MeteredSink, Metrics
from connector.web.middleware import problems, request_id_header
from connector.web.refusals import refusals
from connector.web.routing import RouteSpec, install
from connector.webclient.ended import REFRESH_SECONDS
from connector.webclient.pages import SESSIONS
from connector.webclient.routes import setup_webclient
from connector.wiring import (
    AccountsDeps,
    AccountsFactory,
    build_delivery,
    build_live,
    build_retention,
    build_services,
    open_service_audit_log,
)

log = get_logger("connector.web")
OUTGOING_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit_log", AuditLog)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)


def all_routes() -> list[RouteSpec]:
    return [
        *routes_health.ROUTES,
        *routes_accounts.ROUTES,
        *routes_inbox.ROUTES,
        *routes_organize.ROUTES,
        *routes_features.ROUTES,
        *routes_human.ROUTES,
        *routes_audit.ROUTES,
        *routes_rights.ROUTES,
        *routes_evidence.ROUTES,
        *routes_changes.ROUTES,
        *routes_delivery.ROUTES,
    ]


def create_app(settings: Settings, *, accounts: AccountsFactory) -> web.Application:
    """The service, with accounts (owners, tokens, linking) from `accounts`."""
    # `refusals` wraps `problems` so it sees the final status of every answer.
    app = web.Application(
        middlewares=[refusals, problems], client_max_size=settings.max_request_bytes
    )
    app.on_response_prepare.append(request_id_header)
    app[SETTINGS] = settings
    app[VERIFIER] = TokenVerifier(settings)
    app[METRICS] = Metrics()
    app[ROUTE_SPECS] = all_routes()
    app[routes_delivery.DELIVERY] = routes_delivery.DeliverySlot()  # set while delivering
    install(app, app[ROUTE_SPECS])
    setup_webclient(app)  # the browser pages under /app (not API operations)
    app.cleanup_ctx.extend([_engine, _audit, _session, _services_ctx(accounts), _housekeeping])
    app.on_shutdown.append(_end_streams)  # change-feed streams end before handlers are awaited
    app.cleanup_ctx.append(_sign_outs)  # the web client's sign-outs, known to every worker
    app.cleanup_ctx.append(_feed_relay)  # other instances' feed commits wake ours (PostgreSQL)
    app.cleanup_ctx.append(_live)  # the live mailbox: sync by push or polling (after services)
    app.cleanup_ctx.append(_retention)  # retention runs (connector.rights), after services
    app.cleanup_ctx.append(_delivery)  # signed webhooks of the change feed (connector.delivery)
    return app


async def freeze_startup_heap(_app: web.Application) -> None:
    """Hide everything built at startup (routes, settings, pools, ORM metadata, the discovery
    document) from the cyclic garbage collector, so that its full collections scan only what
    requests create. An `on_startup` hook of `connector serve`, after the cleanup contexts have
    built the services; measured under load, it cut the service's p99 from ~125 to ~85 ms."""
    gc.collect()
    gc.freeze()


async def _end_streams(app: web.Application) -> None:
    if SERVICES in app:
        app[SERVICES].feed.close()


async def _engine(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    try:
        await migrate(engine)
        app[ENGINE] = engine
        yield
    finally:
        await engine.dispose()


async def _audit(app: web.Application) -> AsyncIterator[None]:
    audit_log = await open_service_audit_log(app[SETTINGS])
    app[AUDIT] = audit_log
    try:
        yield
    finally:
        await audit_log.close()


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=128)
    async with aiohttp.ClientSession(connector=connector, timeout=OUTGOING_TIMEOUT) as session:
        app[SESSION] = session
        yield


def _services_ctx(
    factory: AccountsFactory,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        recorder = Recorder(MeteredSink(app[AUDIT], app[METRICS]))
        deps = AccountsDeps(settings, app[ENGINE], recorder, app[SESSION])
        async with factory(deps) as bundle:
            app[SERVICES] = build_services(
                settings, engine=app[ENGINE], audit_log=app[AUDIT], recorder=recorder,
                session=app[SESSION], accounts=bundle,
                observe_gmail=app[METRICS].observe_gmail,
            )  # fmt: skip
            try:
                yield
            finally:
                await app[SERVICES].usage.close()

    return services


async def _sign_outs(app: web.Application) -> AsyncIterator[None]:
    """Web client sign-outs shared through the database: this process's set is refreshed
    every `REFRESH_SECONDS`, so a cookie signed out on another worker is refused here too."""
    ended = app[SESSIONS].ended
    ended.bind(app[ENGINE])
    await ended.refresh()
    # the database away: the last known set stands
    steps = (("ended_sessions_refresh_failed", ended.refresh),)
    async with _every(REFRESH_SECONDS, "webclient-sign-outs", steps):
        yield


@contextlib.asynccontextmanager
async def _every(
    seconds: float, name: str, steps: tuple[tuple[str, Callable[[], Awaitable[object]]], ...]
) -> AsyncIterator[None]:
    """Run each step every `seconds` while the body runs; a failing step is logged by its
    event name and error type and tried again next tick."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            for failure_event, step in steps:
                try:
                    await step()
                except Exception as exc:
                    log.warning(failure_event, error_type=type(exc).__name__)

    async with cancelled_after(loop(), name):
        yield


class _Worker(Protocol):
    """A background loop's owner (the feed relay, the live mailbox, webhook delivery)."""

    async def run(self, stop: asyncio.Event) -> None: ...


def _running(worker: _Worker | None, name: str) -> contextlib.AbstractAsyncContextManager[None]:
    """`worker.run` as the background task `name` for the body's duration, stopped first on
    the way out; no worker (not configured): nothing runs."""
    return contextlib.nullcontext() if worker is None else running(worker.run, name)


async def _feed_relay(app: web.Application) -> AsyncIterator[None]:
    """On PostgreSQL, LISTEN for other instances' feed commits (connector.accounts.feed_relay)."""
    relay = None
    if app[ENGINE].url.get_backend_name() == "postgresql":
        relay = FeedRelay(app[SETTINGS].database_url, app[SERVICES].feed.store.signal)
    async with _running(relay, "feed-relay"):
        yield


async def _live(app: web.Application) -> AsyncIterator[None]:
    """Run the live mailbox's loops for as long as the service runs; stop them first."""
    async with _running(build_live(app[SERVICES], app[SESSION]), "live-mailbox"):
        yield


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Retention every RETENTION_RUN_HOURS while the service runs; stopped before the services."""
    async with build_retention(app[SERVICES]).running():
        yield


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    """Deliver the change feed to CONNECTOR_WEBHOOK_URL while the service runs; stopped first."""
    dispatcher = build_delivery(app[SERVICES], app[SESSION])
    async with _running(dispatcher, "webhook-delivery"):
        app[routes_delivery.DELIVERY].dispatcher = dispatcher  # the dead-letter routes use it
        try:
            yield
        finally:
            app[routes_delivery.DELIVERY].dispatcher = None


async def _housekeeping(app: web.Application) -> AsyncIterator[None]:
    """Sign the audit head while idle so a truncation after quiet periods is still caught;
    drop the change feed's `unlinked` rows once past their window (sync_store)."""
    steps = (
        ("checkpoint_failed", app[AUDIT].checkpoint),  # readiness reports the store
        ("feed_housekeeping_failed", app[SERVICES].feed.store.drop_unlinked),
    )
    async with _every(app[SETTINGS].housekeeping_seconds, "housekeeping", steps):
        yield
