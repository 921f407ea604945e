"""JSON Schemas shared by the route declarations (and so by the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from connector.web import validation
from connector.web.components import NULLABLE_TIME, STRINGS, TIME, ref, strings

Schema = dict[str, Any]

OBJECT: Schema = {"type": "object"}
NEXT_PAGE_TOKEN: Schema = {
    "type": ["string", "null"],
    "description": "pass as page_token for the next page; null on the last page",
}


def page_of(key: str, item: Schema, **extra: Schema) -> Schema:
    """A list page: `key` holds the items, `next_page_token` the way on."""
    return {
        "type": "object",
        "required": [key, "next_page_token"],
        "properties": {key: {"type": "array", "items": item}, "next_page_token": NEXT_PAGE_TOKEN,
                       **extra},
    }  # fmt: skip


GMAIL_ID: Schema = {"type": "string", "pattern": validation.GMAIL_ID.pattern}
ADDRESSES: Schema = {"type": "array", "items": {"type": "string", "maxLength": 1000},
                     "maxItems": 100}  # fmt: skip

ATTACHMENT: Schema = {
    "type": "object",
    "required": ["filename", "content_base64"],
    "additionalProperties": False,
    "properties": {
        "filename": {"type": "string", "maxLength": 255},
        "mime_type": {"type": "string", "default": "application/octet-stream"},
        "content_base64": {"type": "string", "description": "standard or URL-safe base64"},
    },
}

DRAFT: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "to": ADDRESSES,
        "cc": ADDRESSES,
        "bcc": ADDRESSES,
        "subject": {"type": "string", "maxLength": 998},
        "text": {"type": "string"},
        "html": {"type": "string"},
        "attachments": {"type": "array", "items": ATTACHMENT, "maxItems": 100},
        "reply_to": {**GMAIL_ID, "description": "message id this replies to (same thread)"},
    },
}

SEND: Schema = {
    **DRAFT,
    "properties": {
        **DRAFT["properties"],
        "forward_of": {**GMAIL_ID, "description": "message id to forward (attached whole)"},
    },
}

GMAIL_JSON: Schema = {"type": "object", "description": "Gmail API resource, as Gmail returns it"}
_ESTIMATE: Schema = {"type": "integer", "description": "Gmail's estimate of the total"}
MESSAGE_PAGE: Schema = page_of("messages", ref("Message"), result_size_estimate=_ESTIMATE)
DRAFT_PAGE: Schema = page_of("drafts", ref("Draft"), result_size_estimate=_ESTIMATE)

CONSENT_CREATE: Schema = {
    "type": "object",
    "required": ["message_ids", "grantee_id"],
    "additionalProperties": False,
    "properties": {
        "message_ids": {"type": "array", "items": GMAIL_ID, "minItems": 1, "maxItems": 500},
        "grantee_kind": {"enum": ["operator", "support_case"], "default": "operator"},
        "grantee_id": {"type": "string"},
        "ttl_days": {"type": "integer", "minimum": 1, "maximum": 30, "default": 7},
    },
}
CONSENT: Schema = {
    "type": "object",
    "properties": {
        **strings("id", "account_id", "grantee_kind", "grantee_id"),
        "message_ids": STRINGS,
        "created_at": TIME,
        "expires_at": TIME,
        "revoked_at": NULLABLE_TIME,
    },
}

ACCESS_REQUEST_CREATE: Schema = {
    "type": "object",
    "required": ["account_id", "purpose", "case_reference", "reason"],
    "additionalProperties": False,
    "properties": {
        "account_id": {"type": "string"},
        "purpose": {"enum": ["security", "legal"]},
        "case_reference": {"type": "string", "maxLength": 200},
        "reason": {"type": "string", "maxLength": 4000},
        "duration_hours": {"type": "integer", "minimum": 1, "maximum": 720, "default": 24},
        "message_ids": {"type": "array", "items": GMAIL_ID, "maxItems": 500},
        "time_from": {"type": "string", "format": "date-time"},
        "time_to": {"type": "string", "format": "date-time"},
        "legal_hold": {"type": "boolean", "default": False},
    },
}
ACCESS_REQUEST: Schema = {
    "type": "object",
    "properties": {
        **strings("id", "account_id", "requester_id", "purpose"),
        "status": {"enum": ["pending", "approved", "dismissed", "stale"]},
        **strings("case_reference", "reason"),
        "message_ids": STRINGS,
        "decided_by": {"type": ["string", "null"]},
        "expires_at": NULLABLE_TIME,
        "legal_hold": {"type": "boolean"},
    },
}

AUDIT_EVENT: Schema = {
    "type": "object",
    "description": "An audit event: identifiers only, never mail content",
    "properties": {
        "seq": {"type": "integer"},
        "time": {"type": "string", "format": "date-time"},
        "actor": {"type": "object"},
        "action": {"type": "string"},
        "purpose": {"type": ["string", "null"]},
        "basis": {"type": ["object", "null"]},
        "decision": {"enum": ["allow", "deny"]},
        "outcome": {"type": "string"},
        "resources": {"type": "array", "items": OBJECT},
    },
}
EVENT_PAGE: Schema = page_of("events", AUDIT_EVENT)
