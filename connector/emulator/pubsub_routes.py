"""Pub/Sub v1 REST on the emulator (`/v1/projects/...`), paths as in the `pubsub v1` discovery
document: `PUT/GET/DELETE {topic}`, `POST {topic}:publish`, `PUT/GET/DELETE {subscription}`,
`POST {subscription}:pull|:acknowledge|:modifyAckDeadline`.

Callers must send a bearer token, but the emulator does not check whose: Pub/Sub is reached
with the deployment's service account, whose identity and IAM the emulator does not model.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from connector.emulator.pubsub import PubSubError, PubSubState, invalid

JSON_TYPE = "application/json; charset=UTF-8"


def _answer(payload: dict[str, Any] | None, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload or {}).encode(),
                        headers={"Content-Type": JSON_TYPE})  # fmt: skip


def _body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise invalid("Invalid JSON payload received.") from exc
    if not isinstance(data, dict):
        raise invalid("Invalid JSON payload received.")
    return data


def _messages(data: dict[str, Any]) -> list[tuple[bytes, dict[str, str]]]:
    out: list[tuple[bytes, dict[str, str]]] = []
    for item in data.get("messages") or []:
        if not isinstance(item, dict):
            raise invalid("Invalid message.")
        try:
            payload = base64.b64decode(item.get("data") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid("Invalid value at 'messages.data' (TYPE_BYTES)") from exc
        attributes = item.get("attributes") or {}
        if not payload and not attributes:
            raise invalid("Some messages contain no data and no attribute.")
        out.append((payload, {str(k): str(v) for k, v in attributes.items()}))
    return out


def _ack_ids(data: dict[str, Any]) -> list[str]:
    ids = data.get("ackIds") or []
    if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise invalid("Invalid ackIds.")
    return ids


def _int(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise invalid(f"Invalid value at '{key}' (TYPE_INT32)")
    return int(value)


async def _dispatch(
    state: PubSubState, verb: str, path: str, raw: bytes, pull_wait: float
) -> web.Response:
    name, _, action = path.removeprefix("/v1/").partition(":")
    data = _body(raw) if verb in ("POST", "PUT") else {}
    kind = name.split("/")[2] if name.count("/") == 3 else ""
    if kind == "topics":
        if (verb, action) == ("PUT", ""):
            return _answer(state.create_topic(name))
        if (verb, action) == ("GET", ""):
            return _answer(state.get_topic(name))
        if (verb, action) == ("DELETE", ""):
            state.delete_topic(name)
            return _answer({})
        if (verb, action) == ("POST", "publish"):
            return _answer({"messageIds": state.publish(name, _messages(data))})
    elif kind == "subscriptions":
        if (verb, action) == ("PUT", ""):
            topic = data.get("topic")
            if not isinstance(topic, str):
                raise invalid("Invalid resource name given (name=).")
            deadline = _int(data, "ackDeadlineSeconds", 0)
            return _answer(state.create_subscription(name, topic, deadline))
        if (verb, action) == ("GET", ""):
            return _answer(state.subscription(name).resource())
        if (verb, action) == ("DELETE", ""):
            state.delete_subscription(name)
            return _answer({})
        if (verb, action) == ("POST", "pull"):
            wait = 0.0 if data.get("returnImmediately") is True else pull_wait
            received = await state.pull(name, _int(data, "maxMessages", 0), wait)
            return _answer({"receivedMessages": received} if received else {})
        if (verb, action) == ("POST", "acknowledge"):
            state.acknowledge(name, _ack_ids(data))
            return _answer({})
        if (verb, action) == ("POST", "modifyAckDeadline"):
            seconds = _int(data, "ackDeadlineSeconds", -1)
            state.modify_ack_deadline(name, _ack_ids(data), seconds)
            return _answer({})
    raise PubSubError(404, f"Method not found: {verb} {path}")


def add_routes(app: web.Application, state: PubSubState, pull_wait: float) -> None:
    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth.removeprefix("Bearer ").strip():
            missing = PubSubError(401, "Request is missing required authentication credential.")
            return _answer(missing.envelope(), missing.code)
        try:
            body = await request.read() if request.can_read_body else b""
            return await _dispatch(state, request.method, request.path, body, pull_wait)
        except PubSubError as exc:
            return _answer(exc.envelope(), exc.code)

    app.router.add_route("*", "/v1/projects/{tail:.*}", handle)
