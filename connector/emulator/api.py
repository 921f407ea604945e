"""The Gmail API dispatcher shared by plain HTTP requests and batch parts.

One path for every call: route from the discovery document, bearer and scope checks, the
user's concurrency cap and quota, fault injection, then the handler. Batch parts go through the
same function so each is authorised and charged as if sent alone, as Google does.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.emulator import discovery, errors
from connector.emulator.faults import FaultInjector, FaultKind
from connector.emulator.gmail_routes import HANDLERS, Call
from connector.emulator.quota import QuotaTracker
from connector.emulator.render import apply_fields, parse_fields
from connector.emulator.state import EmulatorState
from connector.emulator.tokens import TokenStore
from connector.logs import get_logger

log = get_logger(__name__)
JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class EmulatorStats:
    """Counters a benchmark or test can read: requests per method, rate-limit answers, units."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    units_charged: int = 0
    units_by_user: Counter[str] = field(default_factory=Counter)
    faults_injected: int = 0
    batches: int = 0

    def reset(self) -> None:
        self.requests.clear()
        self.units_by_user.clear()
        self.rate_limited = self.units_charged = self.faults_injected = self.batches = 0


@dataclass(slots=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering (fault injection)


def error_response(exc: errors.GmailError) -> ApiResponse:
    headers = {"Content-Type": JSON_TYPE, **exc.headers}
    return ApiResponse(exc.code, json.dumps(exc.envelope()).encode(), headers)


def _json_response(status: int, value: Any, query: Mapping[str, list[str]]) -> ApiResponse:
    fields = query.get("fields")
    if fields and fields[-1]:
        value = apply_fields(value, parse_fields(fields[-1]))
    pretty = (query.get("prettyPrint") or ["false"])[-1].lower() == "true"
    text = json.dumps(value, ensure_ascii=False, indent=2 if pretty else None)
    return ApiResponse(status, text.encode(), {"Content-Type": JSON_TYPE})


class GmailApi:
    def __init__(
        self,
        state: EmulatorState,
        tokens: TokenStore,
        quota: QuotaTracker,
        faults: FaultInjector,
        stats: EmulatorStats,
    ) -> None:
        self.state = state
        self.tokens = tokens
        self.quota = quota
        self.faults = faults
        self.stats = stats

    async def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            return await self._handle(req)
        except errors.GmailError as exc:
            if exc.reason in (
                errors.Reason.RATE_LIMIT_EXCEEDED,
                errors.Reason.USER_RATE_LIMIT_EXCEEDED,
            ):
                self.stats.rate_limited += 1
            return error_response(exc)

    def _authorise(self, req: ApiRequest, route: discovery.Route, user_id: str) -> str:
        auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.missing_credentials()
        access = self.tokens.lookup_access(token.strip())
        if access is None:
            raise errors.invalid_credentials()
        if access.scopes.isdisjoint(route.scopes):
            raise errors.insufficient_permissions()
        if user_id != "me" and user_id.lower() != access.email:
            raise errors.delegation_denied(user_id)
        return access.email

    async def _handle(self, req: ApiRequest) -> ApiResponse:
        route, params, path_known = discovery.match(req.method, req.path)
        if route is None:
            if path_known:
                raise errors.GmailError(405, "Method not allowed", errors.Reason.METHOD_NOT_ALLOWED)
            raise errors.not_found()
        self.stats.requests[route.method_id] += 1
        email = self._authorise(req, route, params.get("userId", "me"))
        handler = HANDLERS.get(route.method_id)
        if handler is None:
            raise errors.bad_request(f"{route.method_id} is not supported by the emulator")
        box = self.state.mailbox(email)
        if box is None:
            raise errors.not_found()
        self.quota.enter(email)
        try:
            units = self.quota.charge(email, route.method_id)
            self.stats.units_charged += units
            self.stats.units_by_user[email] += units
            decision = self.faults.decide(route.method_id)
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.kind is FaultKind.DROP:
                self.stats.faults_injected += 1
                return ApiResponse(0, b"", drop=True)
            if decision.kind is FaultKind.ERROR:
                self.stats.faults_injected += 1
                raise errors.backend_error(decision.status)
            call = Call(
                self.state,
                box,
                params,
                req.query,
                req.body,
                req.headers.get("Content-Type") or req.headers.get("content-type") or "",
                route.upload,
            )
            result = handler(call)
            if decision.kind is FaultKind.AFTER_COMMIT_DROP:
                self.stats.faults_injected += 1
                log.info("emulator_fault_after_commit", method=route.method_id, kind="drop")
                return ApiResponse(0, b"", drop=True)
            if decision.kind is FaultKind.AFTER_COMMIT_ERROR:
                self.stats.faults_injected += 1
                log.info("emulator_fault_after_commit", method=route.method_id, kind="error")
                raise errors.backend_error(decision.status)
        finally:
            self.quota.leave(email)
        if result is None:
            return ApiResponse(204, b"", {})
        return _json_response(200, result, req.query)
