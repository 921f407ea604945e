"""Typed response schemas: the OpenAPI document's `components.schemas`, referenced by `ref()`.

Gmail resources are described with the fields Gmail documents and the connector passes on;
`additionalProperties` stays open on them because Gmail adds fields over time and the connector
forwards Gmail's answer as it is. The connector's own records are closed where the handler
builds every field.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
STRINGS: Schema = {"type": "array", "items": STRING}
TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> Schema:
    """A reference to component `name` (which must be in COMPONENTS)."""
    if name not in COMPONENTS:
        raise KeyError(name)
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], open_: bool = False, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "required": required, "properties": properties}
    if not open_:
        schema["additionalProperties"] = False
    return schema


COMPONENTS: dict[str, Schema] = {
    # -- Gmail resources, as Gmail returns them ------------------------------------------------
    "MessagePartBody": _obj([], open_=True, attachmentId=STRING, size=INT, data=STRING),
    "MessagePart": _obj(
        [],
        open_=True,
        partId=STRING,
        mimeType=STRING,
        filename=STRING,
        headers={
            "type": "array",
            "items": _obj(["name", "value"], open_=True, name=STRING, value=STRING),
        },
        body={"$ref": "#/components/schemas/MessagePartBody"},
        parts={"type": "array", "items": {"$ref": "#/components/schemas/MessagePart"}},
    ),
    "Message": _obj(
        ["id"],
        open_=True,
        id=STRING,
        threadId=STRING,
        labelIds=STRINGS,
        snippet=STRING,
        historyId=STRING,
        internalDate=STRING,
        sizeEstimate=INT,
        raw=STRING,
        payload={"$ref": "#/components/schemas/MessagePart"},
    ),
    "Thread": _obj(
        ["id"],
        open_=True,
        id=STRING,
        historyId=STRING,
        snippet=STRING,
        messages={"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
    ),
    "Draft": _obj(["id"], open_=True, id=STRING, message={"$ref": "#/components/schemas/Message"}),
    "SentMessage": _obj(
        ["id"],
        open_=True,
        id=STRING,
        threadId=STRING,
        labelIds=STRINGS,
    ),
    # -- the connector's own records -----------------------------------------------------------
    "Account": _obj(
        ["id", "status"],
        open_=True,
        id=STRING,
        email=STRING,
        status=STRING,
        status_reason={"type": ["string", "null"]},
        features=STRINGS,
        scopes=STRINGS,
        linked_at=TIME,
    ),
    "LinkStart": _obj(
        ["disclosure_url"],
        open_=True,
        disclosure_url={"type": "string", "format": "uri"},
        expires_in=INT,
    ),
    "DeletionReceipt": _obj(
        ["account_id", "status", "deleted_at"],
        open_=True,
        type=STRING,
        account_id=STRING,
        status=STRING,
        deleted_at=TIME,
        revocation=STRING,
        rows_deleted={"type": "object", "additionalProperties": INT},
        notes=STRINGS,
        audit_event={"type": "object"},
        signature={"type": ["object", "null"]},
    ),
    "AggregateReport": _obj(
        ["k", "suppressed_groups", "rows"],
        k=INT,
        suppressed_groups=INT,
        rows={
            "type": "array",
            "items": _obj(
                ["day", "operation", "count", "error_count", "error_rate"],
                day={"type": "string", "format": "date"},
                operation=STRING,
                count=INT,
                error_count=INT,
                error_rate={"type": "number"},
            ),
        },
    ),
    "Status": _obj(
        ["status"],
        open_=True,
        status=STRING,
        checks={"type": "object", "additionalProperties": STRING},
    ),
    "OpenApiDocument": _obj(
        ["openapi", "info", "paths"],
        open_=True,
        openapi=STRING,
        info={"type": "object"},
        paths={"type": "object"},
    ),
}
