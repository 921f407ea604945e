"""Typed application and request state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from connector.settings import Settings
    from connector.web.auth import Caller, TokenVerifier
    from connector.web.metrics import Metrics
    from connector.web.problems import ProblemType
    from connector.web.route_policy import RouteOperation
    from connector.web.routing import RouteSpec
    from connector.wiring import Services

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICES: web.AppKey[Services] = web.AppKey("services")
VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("verifier")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
ROUTE_SPECS: web.AppKey[list[RouteSpec]] = web.AppKey("route_specs")
CALLER: web.RequestKey[Caller] = web.RequestKey("caller")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
ROUTE_OPERATION: web.RequestKey[RouteOperation] = web.RequestKey("route_operation")
PROBLEM: web.RequestKey[ProblemType] = web.RequestKey("problem")
