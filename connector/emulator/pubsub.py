"""The Cloud Pub/Sub v1 subset Gmail push needs: topics, pull subscriptions, leases, acks.

Semantics follow Pub/Sub's at-least-once delivery, because the connector's correctness rests
on them: a pulled message is leased for the subscription's ack deadline and delivered again
once the lease lapses (or at once after `modifyAckDeadline` to 0); only `acknowledge` removes
it. Messages published before a subscription existed are not delivered to it. Pure state and
asyncio waits; the HTTP surface is `pubsub_routes`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_ACK_DEADLINE = 10  # seconds, Pub/Sub's default for a new subscription
MAX_ACK_DEADLINE = 600
MAX_PULL = 1000  # Pub/Sub caps maxMessages per pull
DELETED_TOPIC = "_deleted-topic_"  # what a subscription's topic reads after the topic is gone
_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_RESOURCE = r"[A-Za-z][\w.~+%-]{2,254}"
TOPIC_NAME = re.compile(rf"^projects/(?P<project>{_PROJECT})/topics/(?P<id>{_RESOURCE})$")
SUBSCRIPTION_NAME = re.compile(
    rf"^projects/(?P<project>{_PROJECT})/subscriptions/(?P<id>{_RESOURCE})$"
)
_STATUS_BY_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
                   409: "ALREADY_EXISTS"}  # fmt: skip


class PubSubError(Exception):
    """A Pub/Sub error: Google's envelope without Gmail's `errors[]` list, as Pub/Sub sends."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def envelope(self) -> dict[str, Any]:
        status = _STATUS_BY_CODE.get(self.code, "UNKNOWN")
        return {"error": {"code": self.code, "message": self.message, "status": status}}


def not_found(name: str) -> PubSubError:
    return PubSubError(404, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")


def already_exists(name: str) -> PubSubError:
    tail = name.rsplit("/", 1)[-1]
    return PubSubError(409, f"Resource already exists in the project (resource={tail}).")


def invalid(message: str) -> PubSubError:
    return PubSubError(400, message)


def _rfc3339(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class PubSubMessage:
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: str

    def resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "data": base64.b64encode(self.data).decode("ascii"),
            "messageId": self.message_id,
            "publishTime": self.publish_time,
        }
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out


@dataclass(slots=True)
class _Lease:
    message: PubSubMessage
    deadline: float  # monotonic seconds
    attempt: int


@dataclass
class Subscription:
    name: str
    topic: str
    ack_deadline: int
    backlog: deque[tuple[PubSubMessage, int]] = field(default_factory=deque)  # (msg, attempts)
    leases: dict[str, _Lease] = field(default_factory=dict)  # ack id -> lease
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic": self.topic,
            "pushConfig": {},
            "ackDeadlineSeconds": self.ack_deadline,
            "messageRetentionDuration": "604800s",
            "state": "ACTIVE",
        }

    def _reclaim(self, now: float) -> None:
        """Lapsed leases go back to the front: Pub/Sub redelivers what was never acked."""
        lapsed = [ack for ack, lease in self.leases.items() if lease.deadline <= now]
        for ack in reversed(lapsed):
            lease = self.leases.pop(ack)
            self.backlog.appendleft((lease.message, lease.attempt))

    def take(self, limit: int, now: float) -> list[dict[str, Any]]:
        self._reclaim(now)
        taken: list[dict[str, Any]] = []
        while self.backlog and len(taken) < limit:
            message, attempts = self.backlog.popleft()
            ack_id = secrets.token_urlsafe(24)
            self.leases[ack_id] = _Lease(message, now + self.ack_deadline, attempts + 1)
            taken.append({"ackId": ack_id, "message": message.resource()})
        if not self.backlog:
            self.arrived.clear()
        return taken

    def next_lapse(self) -> float | None:
        return min((lease.deadline for lease in self.leases.values()), default=None)


@dataclass
class PubSubState:
    """All topics and subscriptions of the emulated project(s); `stats` counts for tests."""

    topics: dict[str, list[str]] = field(default_factory=dict)  # topic -> subscription names
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    published: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000))

    # -- topics --------------------------------------------------------------------------
    def create_topic(self, name: str) -> dict[str, Any]:
        if not TOPIC_NAME.fullmatch(name) or name.rsplit("/", 1)[-1].startswith("goog"):
            raise invalid(f"Invalid [topics] name: ({name})")
        if name in self.topics:
            raise already_exists(name)
        self.topics[name] = []
        return {"name": name}

    def get_topic(self, name: str) -> dict[str, Any]:
        if name not in self.topics:
            raise not_found(name)
        return {"name": name}

    def delete_topic(self, name: str) -> None:
        if name not in self.topics:
            raise not_found(name)
        for sub_name in self.topics.pop(name):
            self.subscriptions[sub_name].topic = DELETED_TOPIC

    def publish(self, topic: str, messages: list[tuple[bytes, dict[str, str]]]) -> list[str]:
        if topic not in self.topics:
            raise not_found(topic)
        if not messages:
            raise invalid("The request contains no messages.")
        ids: list[str] = []
        now = time.time()
        for data, attributes in messages:
            message = PubSubMessage(str(next(self._ids)), data, attributes, _rfc3339(now))
            ids.append(message.message_id)
            for sub_name in self.topics[topic]:
                sub = self.subscriptions[sub_name]
                sub.backlog.append((message, 0))
                sub.arrived.set()
        self.published += len(ids)
        return ids

    # -- subscriptions -------------------------------------------------------------------
    def create_subscription(self, name: str, topic: str, ack_deadline: int) -> dict[str, Any]:
        if not SUBSCRIPTION_NAME.fullmatch(name):
            raise invalid(f"Invalid [subscriptions] name: ({name})")
        if topic not in self.topics:
            raise not_found(topic)
        if name in self.subscriptions:
            raise already_exists(name)
        deadline = ack_deadline or DEFAULT_ACK_DEADLINE
        if not DEFAULT_ACK_DEADLINE <= deadline <= MAX_ACK_DEADLINE:
            raise invalid("Invalid ack deadline given: must be between 10 and 600 seconds.")
        self.subscriptions[name] = Subscription(name, topic, deadline)
        self.topics[topic].append(name)
        return self.subscriptions[name].resource()

    def subscription(self, name: str) -> Subscription:
        sub = self.subscriptions.get(name)
        if sub is None:
            raise not_found(name)
        return sub

    def delete_subscription(self, name: str) -> None:
        sub = self.subscription(name)
        del self.subscriptions[name]
        if sub.topic in self.topics:
            self.topics[sub.topic].remove(name)

    async def pull(self, name: str, limit: int, wait: float) -> list[dict[str, Any]]:
        """Up to `limit` messages; with none ready, wait up to `wait` s (Pub/Sub long-polls)."""
        if not 0 < limit <= MAX_PULL:
            raise invalid(f"Invalid max_messages: {limit}")
        sub = self.subscription(name)
        give_up = time.monotonic() + wait
        while True:
            now = time.monotonic()
            taken = sub.take(limit, now)
            if taken or now >= give_up:
                return taken
            lapse = sub.next_lapse()
            until = give_up if lapse is None else min(give_up, lapse)
            with contextlib.suppress(TimeoutError):  # woken by a publish or by the clock
                await asyncio.wait_for(sub.arrived.wait(), timeout=max(until - now, 0.001))

    def acknowledge(self, name: str, ack_ids: list[str]) -> None:
        """Unknown or lapsed ack ids are ignored, as Pub/Sub does for pull subscriptions."""
        sub = self.subscription(name)
        if not ack_ids:
            raise invalid("No ack ids specified.")
        for ack in ack_ids:
            sub.leases.pop(ack, None)

    def modify_ack_deadline(self, name: str, ack_ids: list[str], seconds: int) -> None:
        sub = self.subscription(name)
        if not ack_ids:
            raise invalid("No ack ids specified.")
        if not 0 <= seconds <= MAX_ACK_DEADLINE:
            raise invalid(f"Invalid ack deadline given: {seconds}")
        now = time.monotonic()
        for ack in ack_ids:
            lease = sub.leases.get(ack)
            if lease is not None:
                lease.deadline = now + seconds
        if seconds == 0:
            sub._reclaim(now)
            if sub.backlog:
                sub.arrived.set()
