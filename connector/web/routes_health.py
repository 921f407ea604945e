"""Liveness, readiness, metrics and the OpenAPI document (no authentication)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from connector.web.components import ref
from connector.web.keys import METRICS, ROUTE_SPECS, SERVICES, SETTINGS
from connector.web.openapi import document
from connector.web.routing import RouteSpec

READY_TIMEOUT = 2.0


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    services = request.app.get(SERVICES)
    if services is None:
        return web.json_response({"status": "starting"}, status=503)
    try:
        async with asyncio.timeout(READY_TIMEOUT), services.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await services.audit_log.query(limit=1)
        checks["audit"] = "ok"
    except Exception as exc:
        checks["audit"] = f"unavailable ({type(exc).__name__})"
    ok = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    server = request.app[SETTINGS].public_base_url or "/"
    return web.json_response(document(request.app[ROUTE_SPECS], server_url=server))


_STATUS = ref("Status")

ROUTES = [
    RouteSpec("GET", "/healthz", healthz, "Liveness", "operations", None, response=_STATUS),
    RouteSpec("GET", "/readyz", readyz, "Readiness: database and audit log reachable",
              "operations", None, response=_STATUS, errors=(503,)),
    RouteSpec("GET", "/metrics", metrics, "Prometheus metrics", "operations", None,
              response_type="text/plain"),
    RouteSpec("GET", "/openapi.json", openapi, "This OpenAPI 3.1 document", "operations", None,
              response=ref("OpenApiDocument")),
]  # fmt: skip
