"""Typed response schemas: the OpenAPI document's `components.schemas`, referenced by `ref()`.

Gmail resources are described with the fields Gmail documents and the connector passes on;
`additionalProperties` stays open on them because Gmail adds fields over time and the connector
forwards Gmail's answer as it is. The connector's own records are closed where the handler
builds every field.
"""

from __future__ import annotations

from typing import Any

from connector.accounts.changes import ChangeKind

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


def strings(*names: str) -> Schema:
    """Properties that are plain strings: most of every resource (Gmail's ids are too)."""
    return dict.fromkeys(names, STRING)


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _of(name: str) -> Schema:
    # `ref` checks COMPONENTS, which is still being built while these refer to each other.
    return {"$ref": f"#/components/schemas/{name}"}


COMPONENTS: dict[str, Schema] = {
    # -- Gmail resources, as Gmail returns them ------------------------------------------------
    "MessagePartBody": _obj([], open_=True, attachmentId=STRING, size=INT, data=STRING),
    "MessagePart": _obj(
        [],
        open_=True,
        **strings("partId", "mimeType", "filename"),
        headers=_array(_obj(["name", "value"], open_=True, **strings("name", "value"))),
        body=_of("MessagePartBody"),
        parts=_array(_of("MessagePart")),
    ),
    "Message": _obj(
        ["id"],
        open_=True,
        **strings("id", "threadId"),
        labelIds=STRINGS,
        **strings("snippet", "historyId", "internalDate"),
        sizeEstimate=INT,
        raw=STRING,
        payload=_of("MessagePart"),
    ),
    "Thread": _obj(
        ["id"],
        open_=True,
        **strings("id", "historyId", "snippet"),
        messages=_array(_of("Message")),
    ),
    "Draft": _obj(["id"], open_=True, id=STRING, message=_of("Message")),
    "SentMessage": _obj(["id"], open_=True, **strings("id", "threadId"), labelIds=STRINGS),
    # -- the connector's own records -----------------------------------------------------------
    "Account": _obj(
        ["id", "status"],
        open_=True,
        **strings("id", "email", "status"),
        status_reason={"type": ["string", "null"]},
        features=STRINGS,
        scopes=STRINGS,
        linked_at=TIME,
    ),
    # -- the change feed (ids only, never content) ---------------------------------------------
    "Change": _obj(
        ["seq", "kind", "at"],
        open_=True,
        seq=INT,
        kind={"enum": [k.value for k in ChangeKind]},
        historyId={"type": ["string", "null"]},
        **strings("messageId", "threadId"),
        labelIds=STRINGS,
        messageIds=STRINGS,
        at=TIME,
    ),
    "ChangePage": _obj(
        ["changes", "nextCursor"], changes=_array(_of("Change")), nextCursor=INT
    ),
    # -- webhook dead letters (ids and error codes, never the payload) -------------------------
    "DeadLetter": _obj(
        ["id", "accountId", "seq", "kind", "attempts", "lastError", "status", "deadAt"],
        **strings("id", "accountId", "kind", "lastError"),
        seq=INT,
        attempts=INT,
        status={"type": "string", "enum": ["dead", "redelivered"]},
        deadAt=TIME,
        redeliveredAt=NULLABLE_TIME,
    ),
    "DeadLetterPage": _obj(
        ["deadLetters", "nextCursor"],
        deadLetters=_array(_of("DeadLetter")),
        nextCursor={"type": ["string", "null"]},
    ),
    "Redelivery": _obj(
        ["id", "delivered", "error"],
        id=STRING,
        delivered={"type": "boolean"},
        error={"type": ["string", "null"]},
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
        **strings("type", "account_id", "status"),
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
        rows=_array(
            _obj(
                ["day", "operation", "count", "error_count", "error_rate"],
                day={"type": "string", "format": "date"},
                operation=STRING,
                count=INT,
                error_count=INT,
                error_rate={"type": "number"},
            )
        ),
    ),
    "Status": _obj(
        ["status"],
        open_=True,
        status=STRING,
        checks={"type": "object", "additionalProperties": STRING},
    ),
    # The evidence pack (POST /v1/audit/evidence): a zip of index.html, evidence.json,
    # manifest.json (signed) and the pages it shows; `audit verify-pack` checks the unzipped pack.
    "EvidencePackZip": {"type": "string", "format": "binary"},
    "OpenApiDocument": _obj(
        ["openapi", "info", "paths"],
        open_=True,
        openapi=STRING,
        info={"type": "object"},
        paths={"type": "object"},
    ),
}
