"""What every Gmail v1 handler shares: the `Call` it receives and the lookups, paging and
search the method families have in common. Handlers take a `Call` and return the JSON resource
(None → 204); they are synchronous and never await: state is in memory, and that keeps them
lean. The handlers live in `gmail_messages`, `gmail_threads`, `gmail_drafts` and
`gmail_labels`; `gmail_routes` maps method ids to them.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.emulator import errors
from connector.emulator.mime_parse import b64url_decode
from connector.emulator.query import parse_query
from connector.emulator.state import EmulatorState, Mailbox, Message, parse_id
from connector.emulator.upload import parse_upload

DEFAULT_PAGE = 100
MAX_PAGE = 500
SEARCH_CACHE_SIZE = 64


@dataclass(slots=True)
class Call:
    """One Gmail call as its handler sees it: mailbox, path and query parameters, body."""

    state: EmulatorState
    box: Mailbox
    params: dict[str, str]
    query: Mapping[str, list[str]]
    body: bytes
    content_type: str
    upload: bool

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, ()))

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() == "true"

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            loaded = json.loads(self.body)
        except ValueError:
            raise errors.bad_request("Invalid JSON payload received.") from None
        if not isinstance(loaded, dict):
            raise errors.bad_request("Invalid JSON payload received.")
        return loaded

    # -- lookups ---------------------------------------------------------------------------
    def message(self, key: str = "id") -> Message:
        """The message the path parameter `key` names: 400 if malformed, 404 if unknown."""
        value = self.params[key]
        if parse_id(value) is None:
            raise errors.invalid_id()
        msg = self.box.messages.get(value.lower())
        if msg is None:
            raise errors.not_found()
        return msg

    def thread_id(self) -> str:
        """The (lowercase) id of the thread the path names: 400 if malformed, 404 if unknown."""
        value = self.params["id"]
        if parse_id(value) is None:
            raise errors.invalid_id()
        if value.lower() not in self.box.threads:
            raise errors.not_found()
        return value.lower()

    def check_labels(self, label_ids: list[str]) -> None:
        for label_id in label_ids:
            if label_id not in self.box.labels:
                raise errors.invalid_argument(f"Invalid label: {label_id}")

    # -- paging and search -----------------------------------------------------------------
    def page(self) -> tuple[int, int]:
        """(first index, page size) from maxResults and pageToken."""
        raw_max = self.arg("maxResults")
        try:
            size = DEFAULT_PAGE if raw_max is None else int(raw_max)
        except ValueError:
            raise errors.invalid_argument(f"Invalid value for maxResults: {raw_max}") from None
        if size < 1:  # Gmail refuses 0 too, rather than reading it as "the default"
            raise errors.invalid_argument(f"Invalid value for maxResults: {raw_max}")
        size = min(size, MAX_PAGE)
        token = self.arg("pageToken")
        if not token:
            return 0, size
        if not token.isdigit():
            raise errors.invalid_argument("Invalid pageToken")
        return int(token), size

    def matching(self) -> list[Message]:
        """Matching messages newest first, cached per mailbox until the next history change.

        Clients page through the same search and benchmarks repeat it; the cache key includes
        the mailbox historyId, which every mutation bumps, so a hit is always current.
        """
        box = self.box
        key = (self.arg("q") or "", tuple(self.args("labelIds")), self.flag("includeSpamTrash"))
        cached = box.search_cache.get(key)
        if cached is not None and cached[0] == box.history_id:
            return cached[1]
        found = _search(self)
        if len(box.search_cache) >= SEARCH_CACHE_SIZE:
            box.search_cache.clear()
        box.search_cache[key] = (box.history_id, found)
        return found

    # -- message bodies --------------------------------------------------------------------
    def message_source(self, body_key: str | None) -> tuple[bytes, str | None, list[str]]:
        """(raw bytes, threadId, labelIds) from a JSON body or an upload; `body_key` nests it."""
        if self.upload:
            metadata, raw = parse_upload(self.arg("uploadType"), self.content_type, self.body)
            resource = metadata.get(body_key, {}) if body_key else metadata
        else:
            data = self.json()
            resource = data.get(body_key, {}) if body_key else data
            if not isinstance(resource, dict):
                raise errors.bad_request("Invalid JSON payload received.")
            raw = _decode_raw(resource.get("raw"))
        if not isinstance(resource, dict):
            resource = {}
        thread = resource.get("threadId")
        labels = resource.get("labelIds") or []
        if thread is not None and (not isinstance(thread, str) or parse_id(thread) is None):
            raise errors.invalid_id()
        return raw, thread.lower() if isinstance(thread, str) else None, list(labels)


Handler = Callable[[Call], dict[str, Any] | None]


def label_changes(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(addLabelIds, removeLabelIds) of a modify request's body."""
    return list(data.get("addLabelIds") or []), list(data.get("removeLabelIds") or [])


def paginate(
    items: list[Any], start: int, size: int, key: str, render: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    if not items:
        return {"resultSizeEstimate": 0}
    window = items[start : start + size]
    out: dict[str, Any] = {}
    if window:
        out[key] = [render(item) for item in window]
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    out["resultSizeEstimate"] = len(items)
    return out


def _search(call: Call) -> list[Message]:
    box = call.box
    query = parse_query(call.arg("q"))
    label_ids = call.args("labelIds")
    include_spam_trash = call.flag("includeSpamTrash") or query.mentions_spam_trash
    hidden = set() if include_spam_trash else {"SPAM", "TRASH"} - set(label_ids)
    candidates: list[Message] = box.order[::-1]
    # Cheapest filters first; each is a single comprehension over the mailbox.
    if hidden:
        candidates = [m for m in candidates if hidden.isdisjoint(m.label_ids)]
    for label in label_ids:
        candidates = [m for m in candidates if label in m.label_ids]
    predicate = query.predicate
    if predicate is not None:
        candidates = [m for m in candidates if predicate(m, box)]
    return candidates


def _decode_raw(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise errors.invalid_argument(
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
        )
    try:
        return b64url_decode(value)
    except (binascii.Error, ValueError):
        raise errors.invalid_argument("Invalid value for ByteString: " + value[:16]) from None
