"""Cloud Pub/Sub v1, the calls Gmail push needs, built like Gmail's and sent the same way.

google-api-python-client builds each request from its bundled static `pubsub v1` discovery
document (verb, URI, body, decoder); our `Transport` sends it over the shared aiohttp session.
Pub/Sub is reached as the deployment (a service account), not as a linked user, so the token
comes from a caller-supplied `PubSubToken`, never from the user token vault. No retries here:
the pull loop that calls this already repeats, and acknowledging twice is harmless.

`gmail_notification` reads Gmail's payload: base64 JSON `{"emailAddress", "historyId"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from googleapiclient.discovery import build
from googleapiclient.http import HttpRequest

from connector.gmail.calls import _decoder, _NoNetwork
from connector.gmail.errors import classify
from connector.gmail.transport import AiohttpTransport, HttpCall, Transport

PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
PubSubToken = Callable[[], Awaitable[str]]  # a bearer token for the deployment's identity


@dataclass(frozen=True, slots=True)
class Received:
    """One pulled Pub/Sub message: the ack id to settle it and the decoded `data` bytes."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    delivery_attempt: int | None = None


@dataclass(frozen=True, slots=True)
class GmailNotification:
    email: str  # lower-cased
    history_id: int


def gmail_notification(received: Received) -> GmailNotification | None:
    """Gmail's push payload, or None when `data` is not one (to be acked and reported)."""
    try:
        payload = json.loads(received.data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    email, history = payload.get("emailAddress"), payload.get("historyId")
    # Google's guide prints historyId as a string; on the wire it is a number: take both.
    if not isinstance(email, str) or not email or isinstance(history, bool):
        return None
    if isinstance(history, str) and history.isdigit():
        history = int(history)
    if not isinstance(history, int) or history < 0:
        return None
    return GmailNotification(email.lower(), history)


def _received(item: dict[str, Any]) -> Received | None:
    message = item.get("message")
    ack_id = item.get("ackId")
    if not isinstance(message, dict) or not isinstance(ack_id, str):
        return None
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    attempt = item.get("deliveryAttempt")
    return Received(
        ack_id,
        str(message.get("messageId", "")),
        data,
        {str(k): str(v) for k, v in (message.get("attributes") or {}).items()},
        attempt if isinstance(attempt, int) else None,
    )


class PubSubClient:
    """Topics, pull subscriptions and acks for one endpoint (Google's or the emulator's)."""

    def __init__(
        self,
        endpoint: str,
        token: PubSubToken,
        session: aiohttp.ClientSession | None = None,
        *,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if session is None:
                raise ValueError("PubSubClient needs a session or a transport")
            # A pull long-polls, so the deadline is longer than any server-side wait.
            transport = AiohttpTransport(session, timeout=aiohttp.ClientTimeout(total=90))
        self._transport = transport
        self._token = token
        root = endpoint if endpoint.endswith("/") else endpoint + "/"
        service = build(
            "pubsub",
            "v1",
            http=_NoNetwork(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": root},
        )
        projects = service.projects()
        self._topics = projects.topics()
        self._subscriptions = projects.subscriptions()

    async def _send(self, request: HttpRequest) -> Any:
        body = request.body.encode("utf-8") if isinstance(request.body, str) else request.body
        headers = {**dict(request.headers), "authorization": f"Bearer {await self._token()}"}
        answer = await self._transport.send(HttpCall(request.method, request.uri, headers, body))
        if not 200 <= answer.status < 300:
            raise classify(answer.status, answer.body, answer.headers.get("retry-after"))
        return _decoder(request.postproc)(answer.status, answer.body)

    # -- topics and subscriptions (deployment set-up) -----------------------------------
    async def create_topic(self, topic: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(self._topics.create(name=topic, body={}))
        return result

    async def get_topic(self, topic: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(self._topics.get(topic=topic))
        return result

    async def create_subscription(
        self, subscription: str, topic: str, *, ack_deadline_seconds: int = 60
    ) -> dict[str, Any]:
        body = {"topic": topic, "ackDeadlineSeconds": ack_deadline_seconds}
        result: dict[str, Any] = await self._send(
            self._subscriptions.create(name=subscription, body=body)
        )
        return result

    async def get_subscription(self, subscription: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._send(
            self._subscriptions.get(subscription=subscription)
        )
        return result

    # -- delivery ------------------------------------------------------------------------
    async def pull(self, subscription: str, *, max_messages: int = 100) -> list[Received]:
        """Up to `max_messages`; the server holds the call open a while when none is ready."""
        request = self._subscriptions.pull(
            subscription=subscription, body={"maxMessages": max_messages}
        )
        answer = await self._send(request)
        items = (answer.get("receivedMessages") or []) if isinstance(answer, dict) else []
        return [r for r in (_received(i) for i in items if isinstance(i, dict)) if r]

    async def acknowledge(self, subscription: str, ack_ids: Sequence[str]) -> None:
        if ack_ids:
            body = {"ackIds": list(ack_ids)}
            await self._send(self._subscriptions.acknowledge(subscription=subscription, body=body))

    async def modify_ack_deadline(
        self, subscription: str, ack_ids: Sequence[str], seconds: int
    ) -> None:
        """Extend the leases (work still under way) or, with 0, hand them back at once."""
        if ack_ids:
            body = {"ackIds": list(ack_ids), "ackDeadlineSeconds": seconds}
            request = self._subscriptions.modifyAckDeadline(subscription=subscription, body=body)
            await self._send(request)
