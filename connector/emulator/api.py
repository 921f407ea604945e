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
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from connector.emulator import discovery, errors
from connector.emulator.faults import FaultInjector, FaultKind
from connector.emulator.gmail_call import Call
from connector.emulator.gmail_routes import HANDLERS
from connector.emulator.quota import QuotaTracker
from connector.emulator.render import apply_fields, parse_fields
from connector.emulator.resumable import ResumableSessions
from connector.emulator.sending_limit import SendingLimit
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


@dataclass(eq=False, repr=False)  # the emulator's whole state is no repr
class GmailApi:
    state: EmulatorState
    tokens: TokenStore
    quota: QuotaTracker
    faults: FaultInjector
    stats: EmulatorStats
    _: KW_ONLY
    sending: SendingLimit = field(default_factory=SendingLimit)
    uploads: ResumableSessions = field(default_factory=ResumableSessions, init=False)

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
        upload_ids = req.query.get("upload_id")
        if upload_ids and req.path.startswith("/upload/"):
            return await self._resumable_chunk(req, upload_ids[-1])
        route, params, path_known = discovery.match(req.method, req.path)
        if route is None:
            if path_known:
                raise errors.GmailError(405, "Method not allowed", errors.Reason.METHOD_NOT_ALLOWED)
            raise errors.not_found()
        self.stats.requests[route.method_id] += 1
        email = self._authorise(req, route, params.get("userId", "me"))
        if route.upload and (req.query.get("uploadType") or [""])[-1] == "resumable":
            upload_id = self.uploads.start(
                route.method_id, params, email, dict(req.query), req.body
            )
            host = req.headers.get("Host") or req.headers.get("host") or "127.0.0.1"
            location = f"http://{host}{req.path}?uploadType=resumable&upload_id={upload_id}"
            return ApiResponse(200, b"", {"Location": location, "X-GUploader-UploadID": upload_id})
        return await self._execute(
            route.method_id,
            upload=route.upload,
            params=params,
            email=email,
            query=req.query,
            body=req.body,
            content_type=req.headers.get("Content-Type") or req.headers.get("content-type") or "",
        )

    async def _resumable_chunk(self, req: ApiRequest, upload_id: str) -> ApiResponse:
        content_range = req.headers.get("Content-Range") or req.headers.get("content-range")
        received = self.uploads.add_chunk(upload_id, content_range, req.body)
        if received is not None:
            # 308 "Resume Incomplete" with the received range, as Google's upload server does.
            return ApiResponse(308, b"", {"Range": f"bytes=0-{received - 1}"})
        session = self.uploads.finish(upload_id)
        content_type, body = session.as_multipart()
        query = {**session.query, "uploadType": ["multipart"]}
        return await self._execute(
            session.method_id,
            upload=True,
            params=session.params,
            email=session.email,
            query=query,
            body=body,
            content_type=content_type,
        )

    async def _execute(
        self,
        method_id: str,
        *,
        upload: bool,
        params: dict[str, str],
        email: str,
        query: Mapping[str, list[str]],
        body: bytes,
        content_type: str,
    ) -> ApiResponse:
        handler = HANDLERS.get(method_id)
        if handler is None:
            raise errors.bad_request(f"{method_id} is not supported by the emulator")
        box = self.state.mailbox(email)
        if box is None:
            raise errors.not_found()
        self.quota.enter(email)
        try:
            units = self.quota.charge(email, method_id)
            self.stats.units_charged += units
            self.stats.units_by_user[email] += units
            decision = self.faults.decide(method_id)
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.kind is FaultKind.DROP:
                self.stats.faults_injected += 1
                return ApiResponse(0, b"", drop=True)
            if decision.kind is FaultKind.ERROR:
                self.stats.faults_injected += 1
                raise errors.backend_error(decision.status)
            self.sending.check(email, method_id)
            result = handler(Call(self.state, box, params, query, body, content_type, upload))
            self.sending.record(email, method_id)
            if decision.kind is FaultKind.AFTER_COMMIT_DROP:
                self.stats.faults_injected += 1
                log.info("emulator_fault_after_commit", method=method_id, kind="drop")
                return ApiResponse(0, b"", drop=True)
            if decision.kind is FaultKind.AFTER_COMMIT_ERROR:
                self.stats.faults_injected += 1
                log.info("emulator_fault_after_commit", method=method_id, kind="error")
                raise errors.backend_error(decision.status)
        finally:
            self.quota.leave(email)
        if result is None:
            return ApiResponse(204, b"", {})
        return _json_response(200, result, query)
