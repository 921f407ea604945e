"""The user-facing inbox feature: list, search, read, compose, draft and send.

Everything goes through the access gate with the caller's `AccessContext` (purpose
`user_feature` for owners); this module never talks to Gmail itself. It adds what the feature
needs on top of single gated calls: metadata for search results, reply/forward context, MIME
composition (`connector.mime`, pure) and exactly-once sends under client retries.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar, Unpack

from connector import mime
from connector.gmail.errors import SendingPausedError
from connector.inbox.once import ExactlyOnce, Once, fingerprint
from connector.inbox.send_keys import SendKeys
from connector.policy import AccessContext, plans
from connector.ports import Format, GmailJson, ListOptions, OutgoingMessage

if TYPE_CHECKING:
    from connector.policy.gate import Gate

LIST_HEADERS = ("From", "To", "Subject", "Date")
THREAD_HEADERS = ("Message-ID", "Subject", "References", "From", "Reply-To")
SEARCH_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class Draft:
    """What the caller wants to write; addresses are RFC 5322 strings."""

    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: Sequence[mime.Attachment] = ()


def request_fingerprint(draft: Draft, reply_to: str | None, forward_of: str | None) -> str:
    """SHA-256 over what the send request asked for: a reused key with another body is refused."""
    digest = hashlib.sha256()
    fields = {
        "to": list(draft.to), "cc": list(draft.cc), "bcc": list(draft.bcc),
        "subject": draft.subject, "text": draft.text, "html": draft.html,
        "reply_to": reply_to, "forward_of": forward_of,
        "attachments": [
            [a.filename, a.mime_type, hashlib.sha256(a.content).hexdigest()]
            for a in draft.attachments
        ],
    }  # fmt: skip
    digest.update(json.dumps(fields, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


T = TypeVar("T")
SendingPausedHook = Callable[[str], Awaitable[None]]  # account id: Gmail paused its sending


class Inbox:
    """The owner's inbox feature over the gate."""

    def __init__(
        self,
        gate: Gate,
        *,
        id_domain: str = "connector.local",
        send_keys: SendKeys,
        on_sending_paused: SendingPausedHook | None = None,
    ) -> None:
        self._gate = gate
        self._id_domain = id_domain
        self._senders: dict[str, str] = {}
        self._once = ExactlyOnce(gate, send_keys)
        self._on_paused = on_sending_paused
        self._paused_until: dict[str, datetime] = {}  # the pause last reported, per account

    async def _sending(self, account_id: str, send: Callable[[], Awaitable[T]]) -> T:
        """Run a send; Gmail's sending limit is reported once per pause (the platform learns
        through the change feed's `sending_paused`), then raised as before."""
        try:
            return await send()
        except SendingPausedError as paused:
            if self._on_paused is not None and self._paused_until.get(account_id) != paused.until:
                self._paused_until[account_id] = paused.until
                await self._on_paused(account_id)
            raise

    # -- reading ----------------------------------------------------------------------------

    async def search(
        self,
        ctx: AccessContext,
        account_id: str,
        *,
        with_metadata: bool = True,
        **options: Unpack[ListOptions],
    ) -> GmailJson:
        """A page of messages (`SEARCH_PAGE_SIZE` unless `max_results` says), newest first; with
        `with_metadata`, their headers (no bodies)."""
        listing = ListOptions(max_results=SEARCH_PAGE_SIZE) | options
        page = await self._gate.run(ctx, plans.message_list(account_id, **listing))
        stubs = page.get("messages", [])
        if with_metadata and stubs:
            page = dict(page)
            page["messages"] = await self._gate.run(
                ctx,
                plans.messages(
                    account_id, [m["id"] for m in stubs], Format.METADATA,
                    metadata_headers=LIST_HEADERS,
                ),
            )  # fmt: skip
        return page

    # Reading one message, thread, attachment or draft is one gated plan with nothing to add:
    # handlers run `connector.policy.plans.message(...)` etc. on the gate directly.

    # -- drafts -----------------------------------------------------------------------------

    async def create_draft(
        self,
        ctx: AccessContext,
        account_id: str,
        draft: Draft,
        *,
        reply_to: str | None = None,
        idempotency_key: str | None = None,
    ) -> Once:
        """A new draft; with `idempotency_key`, a retry answers the first draft, not a second."""

        async def create() -> GmailJson:
            message = await self._compose(ctx, account_id, draft, reply_to=reply_to)
            return await self._gate.run(ctx, plans.draft_create(account_id, message))

        asked = fingerprint("draft.create", request_fingerprint(draft, reply_to, None))
        return await self._once.run(
            ctx, account_id, create, idempotency_key=idempotency_key, request_fingerprint=asked,
            replay=plans.draft_create_replayed,
        )  # fmt: skip

    async def update_draft(
        self,
        ctx: AccessContext,
        account_id: str,
        draft_id: str,
        draft: Draft,
        *,
        reply_to: str | None = None,
    ) -> GmailJson:
        message = await self._compose(ctx, account_id, draft, reply_to=reply_to)
        return await self._gate.run(ctx, plans.draft_update(account_id, draft_id, message))

    # -- sending ----------------------------------------------------------------------------

    async def send_once(
        self,
        ctx: AccessContext,
        account_id: str,
        draft: Draft,
        *,
        reply_to: str | None = None,
        forward_of: str | None = None,
        idempotency_key: str | None = None,
    ) -> Once:
        """Send a new message, a reply (`reply_to`) or a forward (`forward_of`), exactly once,
        saying whether the answer is a replay of an earlier send with the same key.

        The Gmail client settles an unknown outcome by searching the composed Message-ID, so one
        call never sends twice; `idempotency_key` extends that to a client retrying the request.
        """
        asked = request_fingerprint(draft, reply_to, forward_of)  # as records already hold it

        async def send() -> GmailJson:
            return await self._send(ctx, account_id, draft, reply_to, forward_of)

        return await self._sent_once(ctx, account_id, send, idempotency_key, asked)

    async def send_draft(
        self, ctx: AccessContext, account_id: str, draft_id: str, *, idempotency_key: str | None
    ) -> Once:
        """Send a draft; with `idempotency_key`, a retry answers the first send (the draft is
        gone by then, so without a key a retry would be Gmail's 404)."""

        async def send() -> GmailJson:
            return await self._gate.run(ctx, plans.draft_send(account_id, draft_id))

        asked = fingerprint("draft.send", draft_id)
        return await self._sent_once(ctx, account_id, send, idempotency_key, asked)

    async def _sent_once(
        self,
        ctx: AccessContext,
        account_id: str,
        send: Callable[[], Awaitable[GmailJson]],
        idempotency_key: str | None,
        asked: str,
    ) -> Once:
        """`send`, its sending-limit pause reported; with `idempotency_key`, exactly once per key
        and request (`asked`): a retry is answered by replaying the first send."""
        return await self._once.run(
            ctx, account_id, lambda: self._sending(account_id, send),
            idempotency_key=idempotency_key, request_fingerprint=asked, replay=plans.send_replayed,
        )  # fmt: skip

    async def _send(
        self,
        ctx: AccessContext,
        account_id: str,
        draft: Draft,
        reply_to: str | None,
        forward_of: str | None,
    ) -> GmailJson:
        if forward_of is not None:
            message = await self._compose_forward(ctx, account_id, draft, forward_of)
        else:
            message = await self._compose(ctx, account_id, draft, reply_to=reply_to)
        return await self._gate.run(ctx, plans.send(account_id, message))

    # -- composition ------------------------------------------------------------------------

    async def _sender(self, ctx: AccessContext, account_id: str) -> str:
        sender = self._senders.get(account_id)
        if sender is None:
            profile = await self._gate.run(ctx, plans.profile(account_id))
            sender = str(profile["emailAddress"])
            self._senders[account_id] = sender
        return sender

    def forget_account(self, account_id: str) -> None:
        """Drop what this process remembers about an account (after unlinking)."""
        self._senders.pop(account_id, None)

    async def _context(
        self, ctx: AccessContext, account_id: str, message_id: str
    ) -> mime.ThreadContext:
        read = plans.message(
            account_id, message_id, Format.METADATA, metadata_headers=THREAD_HEADERS
        )
        original = await self._gate.run(ctx, read)
        return mime.ThreadContext.from_message(original)

    def _composition(self, sender: str, draft: Draft) -> mime.Composition:
        return mime.Composition(
            sender=sender, to=tuple(draft.to), cc=tuple(draft.cc), bcc=tuple(draft.bcc),
            subject=draft.subject, text=draft.text, html=draft.html,
            attachments=tuple(draft.attachments),
        )  # fmt: skip

    async def _compose(
        self, ctx: AccessContext, account_id: str, draft: Draft, *, reply_to: str | None
    ) -> OutgoingMessage:
        composition = self._composition(await self._sender(ctx, account_id), draft)
        if reply_to is None:
            return mime.compose(composition, id_domain=self._id_domain)
        original = await self._context(ctx, account_id, reply_to)
        return mime.compose_reply(composition, original, id_domain=self._id_domain)

    async def _compose_forward(
        self, ctx: AccessContext, account_id: str, draft: Draft, message_id: str
    ) -> OutgoingMessage:
        composition = self._composition(await self._sender(ctx, account_id), draft)
        original = await self._context(ctx, account_id, message_id)
        raw = await self._gate.run(ctx, plans.message(account_id, message_id, Format.RAW))
        original_raw = base64.urlsafe_b64decode(str(raw.get("raw", "")))
        return mime.compose_forward(composition, original, original_raw, id_domain=self._id_domain)
