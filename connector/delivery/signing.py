"""Pure pieces of a delivery: the event id, the body, the signed headers, the backoff.

Signing is the Standard Webhooks reference implementation (`standardwebhooks.Webhook`), so a
receiver verifies with the same library: `Webhook(secret).verify(body, headers)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from math import floor

from standardwebhooks import Webhook

from connector.accounts.sync_store import StoredChange

EVENT_TYPE = "account.change"


def event_id(account_id: str, seq: int) -> str:
    """Stable per change: the same on every retry and redelivery, so receivers dedupe."""
    return f"msg_{account_id}_{seq}"


def body(account_id: str, stored: StoredChange) -> dict[str, object]:
    """The JSON payload: the account, the change's seq and kind, and ids only (never content)."""
    return {
        "type": EVENT_TYPE,
        "data": {"accountId": account_id, "seq": stored.seq, "change": stored.as_json()},
    }


def encode(payload: dict[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


class Signer:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)  # "whsec_<base64>" (or the bare base64 key)

    def headers(self, msg_id: str, now: datetime, data: str) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(floor(now.timestamp())),
            "webhook-signature": self._webhook.sign(msg_id, now, data),
            "content-type": "application/json",
        }


def backoff(
    attempts: int, *, base: timedelta, cap: timedelta, rand: Callable[[], float]
) -> timedelta:
    """Wait before attempt `attempts + 1`: exponential, capped, with equal jitter."""
    ceiling = min(cap, base * (1 << max(0, attempts - 1)))
    return ceiling * (0.5 + 0.5 * rand())
