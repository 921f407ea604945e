"""Health, readiness, metrics, the OpenAPI document, faults, fail-closed audit, and evidence
that every response carrying mail data has its audit event."""

from __future__ import annotations

from aiohttp import web

from audit.vocab import Decision, Outcome, Phase
from connector.emulator.faults import FaultConfig
from connector.web.app import all_routes
from tests.e2e.conftest import ALICE, Stack, first_message


async def test_health_ready_metrics(stack: Stack) -> None:
    """Liveness, readiness (DB + audit) and Prometheus metrics with access counts."""
    assert (await stack.call("GET", "/healthz", None))[0] == 200
    status, ready, _ = await stack.call("GET", "/readyz", None)
    assert status == 200
    assert ready["checks"] == {"database": "ok", "audit": "ok"}
    await first_message(stack)
    await stack.call("GET", f"/v1/accounts/{ALICE}/messages", "bob")
    status, text, resp = await stack.call("GET", "/metrics", None)
    assert status == 200
    assert resp.content_type == "text/plain"
    metrics = text.decode()
    assert (
        'connector_accesses_total{actor_kind="user",decision="allow",purpose="user_feature"}'
        in metrics
    )
    assert 'connector_policy_violations_total{purpose="user_feature"} 1.0' in metrics
    assert "connector_gmail_request_seconds_bucket" in metrics
    assert 'connector_gmail_quota_units_total{method="messages.list"}' in metrics
    assert "connector_audit_append_seconds_count" in metrics


async def test_openapi_documents_every_route(stack: Stack) -> None:
    """Every registered route is in /openapi.json and every documented operation is routed."""
    status, doc, _ = await stack.call("GET", "/openapi.json", None)
    assert status == 200
    assert doc["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    registered = {
        (r.method, r.resource.canonical)
        for r in stack.app.router.routes()
        if isinstance(r.resource, web.Resource) and r.method != "HEAD"
        and not r.resource.canonical.startswith("/app")  # the web client's pages, not the API
    }
    assert documented == registered
    assert {(r.method, r.path) for r in all_routes()} == registered
    for ops in doc["paths"].values():
        for op in ops.values():
            problems = [code for code in op["responses"] if code.startswith(("4", "5"))]
            assert problems
            for code in problems:
                assert "application/problem+json" in op["responses"][code]["content"]


async def test_service_survives_gmail_faults(stack: Stack) -> None:
    """With every Gmail call failing the service answers 503 problems, then recovers."""
    message = await first_message(stack)
    stack.emu.set_faults(FaultConfig(seed=1, error_rate=1.0))
    status, body, resp = await stack.call("GET", f"/v1/accounts/{ALICE}/messages/{message['id']}")
    assert status == 503
    assert body["type"].endswith("/gmail-unavailable")
    assert resp.headers["Retry-After"]
    errors = [e for e in await stack.events(account_id=ALICE) if e.outcome is Outcome.ERROR]
    assert errors
    stack.emu.set_faults(None)
    status, again, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/messages/{message['id']}")
    assert status == 200
    assert again["id"] == message["id"]


async def test_audit_unavailable_fails_closed(stack: Stack) -> None:
    """When the audit log cannot be written, no mail is returned (503 audit-unavailable)."""
    message = await first_message(stack)
    await stack.audit_log.close()
    status, body, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/messages/{message['id']}")
    assert status == 503
    assert body["type"].endswith("/audit-unavailable")
    assert "payload" not in body


async def test_every_mail_response_has_its_audit_event(stack: Stack) -> None:
    """Each 200 carrying mail data has an allow/ok OUTCOME event with the response's request id."""
    message = await first_message(stack)
    paths = [
        f"/v1/accounts/{ALICE}/messages",
        f"/v1/accounts/{ALICE}/messages/{message['id']}",
        f"/v1/accounts/{ALICE}/messages/{message['id']}?format=raw",
        f"/v1/accounts/{ALICE}/threads/{message['threadId']}",
        f"/v1/accounts/{ALICE}/drafts",
    ]
    request_ids = []
    for path in paths:
        status, _, resp = await stack.call("GET", path)
        assert status == 200
        request_ids.append(resp.headers["X-Request-ID"])
    outcomes = {
        e.request_id for e in await stack.events(account_id=ALICE)
        if e.phase is Phase.OUTCOME and e.decision is Decision.ALLOW and e.outcome is Outcome.OK
    }  # fmt: skip
    assert set(request_ids) <= outcomes
