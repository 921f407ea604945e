"""The OpenAPI 3.1 document, generated from the same `RouteSpec`s that build the router."""

from __future__ import annotations

import re
from typing import Any

from audit.event import IDENTIFIER
from connector.web import validation as v
from connector.web.components import COMPONENTS
from connector.web.problems import PROBLEM_BASE, PROBLEM_JSON, SPECS, ProblemType
from connector.web.routing import RouteSpec

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
NO_BODY = REDIRECTS | {204}

# The form each path parameter is checked against (400 invalid-id otherwise).
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    name: {"type": "string", "pattern": pattern.pattern}
    for name, pattern in (
        ("account_id", IDENTIFIER), ("message_id", v.GMAIL_ID), ("thread_id", v.GMAIL_ID),
        ("draft_id", v.DRAFT_ID), ("attachment_id", v.ATTACHMENT_ID),
        ("consent_id", v.RECORD_ID), ("request_id", v.RECORD_ID), ("label_id", v.LABEL_ID),
        ("letter_id", IDENTIFIER),  # a webhook event id (msg_<account>_<seq>)
    )
}  # fmt: skip

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri",
                 "enum": [kind.uri for kind in ProblemType]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what happened and what to do next"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "reasons": {"type": "array", "items": {"type": "string"},
                    "description": "every policy reason a denial failed (access-denied)"},
        "errors": {"type": "array", "items": {"type": "object"},
                   "description": "every field problem (validation-failed)"},
    },
}  # fmt: skip


def _status_text(status: int) -> str:
    kinds = [k.value for k, spec in SPECS.items() if spec.status == status]
    return "problem: " + ", ".join(kinds) if kinds else "problem"


def implied_errors(spec: RouteSpec) -> set[int]:
    """The problem statuses any operation of this shape can answer, whatever its handler does:
    the server's own (unparseable request 400, header limits 431), authentication, a path
    parameter that does not match its route or form (404, 400), query validation (400, 422),
    and the body checks (400 malformed, 413, 415, 422)."""
    errors = {400, 431, 500}
    if spec.roles is not None:
        errors |= {401, 403}
    if _PATH_PARAM.search(spec.path):
        errors |= {404}
    if spec.query:
        errors |= {422}
    if spec.request is not None:
        errors |= {413, 415, 422}
    return errors


def _operation(spec: RouteSpec) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": spec.handler.__name__,  # already a verb phrase: list_messages, ...
        "summary": spec.summary,
        "tags": [spec.tag],
    }
    if spec.description:
        op["description"] = spec.description
    params = [
        {"name": name, "in": "path", "required": True,
         "schema": dict(PATH_SCHEMAS.get(name, {"type": "string"}))}
        for name in _PATH_PARAM.findall(spec.path)
    ]  # fmt: skip
    params += [
        {"name": q.name, "in": "query", "required": q.required, "schema": dict(q.schema),
         "description": q.description}
        for q in spec.query
    ]  # fmt: skip
    params += list(spec.extra.get("parameters", []))
    if params:
        op["parameters"] = params
    if spec.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                spec.extra.get("request_type", "application/json"): {"schema": dict(spec.request)}
            },
        }
    ok: dict[str, Any] = {"description": "success"}
    if spec.status not in NO_BODY:
        schema = dict(spec.response) if spec.response is not None else {"type": "string"}
        media = spec.extra.get("response_types", (spec.response_type,))
        ok["content"] = {
            m: {"schema": schema if m == spec.response_type else {"type": "string"}} for m in media
        }
    headers = dict(spec.extra.get("response_headers", {}))
    if spec.status == 201 or spec.status in REDIRECTS:
        headers["Location"] = {
            "description": "where the created resource is"
            if spec.status == 201
            else "where to go next",
            "schema": {"type": "string", "format": "uri-reference"},
        }
    if headers:
        ok["headers"] = headers
    responses: dict[str, Any] = {str(spec.status): ok}
    errors = set(spec.errors) | implied_errors(spec)
    if spec.roles is not None:
        op["security"] = [{"bearer": []}]
        op["x-roles"] = sorted(spec.roles)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _status_text(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    op["responses"] = responses
    return op


def document(routes: list[RouteSpec], *, server_url: str = "/") -> dict[str, Any]:
    """The document for these routes, served from `server_url` (the public base URL when set;
    a relative "/" means "where this document was fetched from")."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gmail Limited-Use inbox connector",
            "version": "1.0.0",
            "description": (
                "Link Gmail, read, compose and send mail, and prove every access. Use of data "
                "from Google Workspace APIs adheres to the Google User Data Policy, including "
                "the Limited Use requirements. Every error is application/problem+json with a "
                f"stable type URI under {PROBLEM_BASE}."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA, **COMPONENTS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (sub, role ∈ user|operator|reviewer|admin)",
                }
            },
        },
    }
