"""Disclosure-page tickets: short-lived HMAC tokens naming the user who asked to link.

The browser that shows the disclosure page carries no bearer token, so starting a link hands out
a ticket (HMAC under the audit hash key) with the user, an expiry, a nonce (each start is its
own ticket, claimed by its own browser) and the allow-listed URL the callback returns to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from connector.clock import Clock, system_clock
from connector.errors import LinkTicketError

TICKET_TTL = 600


@dataclass(frozen=True, slots=True)
class Ticket:
    user_id: str
    expires: int  # Unix seconds
    return_url: str | None
    # A feature grant for a linked account (incremental authorization): the features to ask
    # for and the account; empty and None for a new link (the default features).
    features: tuple[str, ...] = ()
    account_id: str | None = None


class Tickets:
    """Issue and check tickets; the signature covers every claim, the return URL included."""

    def __init__(self, key: bytes, clock: Clock = system_clock) -> None:
        self._key = hashlib.sha256(b"link-ticket\x00" + key).digest()
        self._clock = clock

    def issue(
        self,
        user_id: str,
        return_url: str | None = None,
        *,
        features: tuple[str, ...] = (),
        account_id: str | None = None,
    ) -> str:
        expires = int(self._clock().timestamp()) + TICKET_TTL
        claims: dict[str, object] = {"sub": user_id, "exp": expires, "n": secrets.token_urlsafe(12)}
        if return_url is not None:
            claims["r"] = return_url
        if features:
            claims["f"] = list(features)
        if account_id is not None:
            claims["a"] = account_id
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def user(self, ticket: str) -> str:
        return self.claims(ticket).user_id

    def claims(self, ticket: str) -> Ticket:
        """What the ticket says; LinkTicketError if it is forged or expired."""
        payload, _, signature = ticket.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise LinkTicketError("ticket_invalid", "the link ticket is not valid")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires, user_id = int(data["exp"]), str(data["sub"])
            back = data.get("r")
            features = tuple(str(f) for f in data.get("f", ()))
            account = data.get("a")
        except (ValueError, KeyError, TypeError, binascii.Error):  # signed by us: cannot happen
            raise LinkTicketError("ticket_invalid", "the link ticket is not valid") from None
        if expires < self._clock().timestamp():
            raise LinkTicketError("ticket_expired", "the link ticket expired; start again")
        return Ticket(
            user_id, expires, back if isinstance(back, str) else None, features,
            account if isinstance(account, str) else None,
        )  # fmt: skip

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
