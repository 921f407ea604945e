"""One pagination style for every list: `page_token` and `max_results` in; the items and
`next_page_token` (null on the last page) out.

Page tokens are the service's own: a cursor sealed with an HMAC and bound to one list.

The cursor underneath (Gmail's page token, an audit sequence number) is sealed under a key
derived from `CONNECTOR_AUDIT_HASH_KEY` together with the list and the caller it was issued to.
A token the service never issued (garbage, edited, another list's or another caller's) is the
caller's fault: 400 `invalid-page-token`, decided before any Gmail call or audit read, instead
of Gmail's 400 coming back as 502 `gmail-rejected`. Tokens are not secret: the cursor is readable
base64url; the seal only proves where it came from. Every worker holds the same key, so a token
from one worker is good at another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web

from connector.web.context import services
from connector.web.problems import ProblemError, ProblemType
from connector.web.routing import QueryParam, caller_of
from connector.web.validation import query_int

T = TypeVar("T")

MAX_TOKEN_CHARS = 1024
LIST_PAGE, LIST_MAX_PAGE = 100, 1000  # the lists the service holds (records, audit events)
_TAG_BYTES = 16
_LABEL = b"connector page token v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Seal and open page tokens for one scope (list + caller + account)."""

    def __init__(self, hash_key: bytes, scope: str) -> None:
        self._key = hmac.new(hash_key, _LABEL, hashlib.sha256).digest()
        self._scope = scope.encode("utf-8")

    def _tag(self, cursor: bytes) -> bytes:
        mac = hmac.new(self._key, self._scope + b"\x00" + cursor, hashlib.sha256)
        return mac.digest()[:_TAG_BYTES]

    def seal(self, cursor: str) -> str:
        raw = cursor.encode("utf-8")
        return f"{_b64(raw)}.{_b64(self._tag(raw))}"

    def open(self, token: str) -> str:
        cursor = self._cursor(token)
        if cursor is None:
            raise ProblemError(
                ProblemType.INVALID_PAGE_TOKEN,
                "page_token is not one this list gave you; pass the previous page's token "
                "unchanged, or leave it out for the first page",
                extra={"field": "page_token"},
            )
        return cursor

    def _cursor(self, token: str) -> str | None:
        body, dot, tag = token.partition(".")
        if not dot or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            return None
        try:
            raw = _unb64(body)
            if not hmac.compare_digest(_unb64(tag), self._tag(raw)):
                return None
            return raw.decode("utf-8")
        except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            return None


def page_tokens(request: web.Request, list_name: str, account: str = "") -> PageTokens:
    """The tokens of one list as this caller sees it (`account` for per-account lists)."""
    scope = f"{list_name}\x00{caller_of(request).sub}\x00{account}"
    return PageTokens(services(request).hash_key, scope)


def cursor_in(request: web.Request, tokens: PageTokens) -> str | None:
    """The cursor the request's `page_token` carries, or None for the first page."""
    token = request.query.get("page_token")
    return None if token is None else tokens.open(token)


def page_params(*, default: int, high: int) -> tuple[QueryParam, ...]:
    """The two query parameters every list declares."""
    return (
        QueryParam("page_token", {"type": "string", "maxLength": MAX_TOKEN_CHARS},
                   "the previous page's next_page_token; leave out for the first page"),
        QueryParam("max_results", {"type": "integer", "minimum": 1, "maximum": high,
                                   "default": default}, "page size"),
    )  # fmt: skip


def page_size(request: web.Request, *, default: int, high: int) -> int:
    return query_int(request, "max_results", default=default, low=1, high=high)


def seal_next(tokens: PageTokens, cursor: str | int | None) -> str | None:
    """The next page's token, or None on the last page."""
    return None if cursor is None else tokens.seal(str(cursor))


def int_cursor(request: web.Request, tokens: PageTokens) -> int | None:
    """A sequence-number cursor (audit lists); sealed by us, so always an integer."""
    cursor = cursor_in(request, tokens)
    return None if cursor is None else int(cursor)


def slice_page(
    request: web.Request, items: Sequence[T], tokens: PageTokens, *, default: int, high: int
) -> tuple[Sequence[T], str | None]:
    """One page of a list the service holds whole (consents, access requests, accounts)."""
    start = int_cursor(request, tokens) or 0
    end = start + page_size(request, default=default, high=high)
    return items[start:end], seal_next(tokens, end if end < len(items) else None)
