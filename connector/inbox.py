"""The user-facing inbox feature: list, search, read, compose, draft and send.

Everything goes through the access gate with the caller's `AccessContext` (purpose
`user_feature` for owners); this module never talks to Gmail itself. It adds what the feature
needs on top of single gated calls: metadata for search results, reply/forward context, MIME
composition (`connector.mime`, pure) and exactly-once sends under client retries.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.mime import (
    Attachment,
    Composition,
    ThreadContext,
    compose,
    compose_forward,
    compose_reply,
)
from connector.policy import AccessContext
from connector.ports import GmailJson, OutgoingMessage

if TYPE_CHECKING:
    from connector.policy.gate import Gate

LIST_HEADERS = ("From", "To", "Subject", "Date")
THREAD_HEADERS = ("Message-ID", "Subject", "References", "From", "Reply-To")
IDEMPOTENCY_TTL = 24 * 3600.0
IDEMPOTENCY_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Draft:
    """What the caller wants to write; addresses are RFC 5322 strings."""

    to: Sequence[str] = ()
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: Sequence[Attachment] = ()


@dataclass(slots=True)
class _Idempotency:
    """Sends already made per (caller, account, key): a retried request gets the same answer."""

    entries: OrderedDict[tuple[str, str, str], tuple[float, asyncio.Future[GmailJson]]] = field(
        default_factory=OrderedDict
    )

    def claim(self, key: tuple[str, str, str]) -> tuple[asyncio.Future[GmailJson], bool]:
        now = time.monotonic()
        while self.entries:
            oldest_key, (at, _) = next(iter(self.entries.items()))
            if now - at < IDEMPOTENCY_TTL and len(self.entries) < IDEMPOTENCY_MAX:
                break
            del self.entries[oldest_key]
        found = self.entries.get(key)
        if found is not None:
            return found[1], False
        future: asyncio.Future[GmailJson] = asyncio.get_running_loop().create_future()
        self.entries[key] = (now, future)
        return future, True

    def forget(self, key: tuple[str, str, str]) -> None:
        self.entries.pop(key, None)


class Inbox:
    """The owner's inbox feature over the gate."""

    def __init__(self, gate: Gate, *, id_domain: str = "connector.local") -> None:
        self._gate = gate
        self._id_domain = id_domain
        self._senders: dict[str, str] = {}
        self._sent = _Idempotency()

    # -- reading ----------------------------------------------------------------------------

    async def search(
        self,
        ctx: AccessContext,
        account_id: str,
        *,
        query: str | None = None,
        label_ids: tuple[str, ...] = (),
        page_token: str | None = None,
        max_results: int = 25,
        with_metadata: bool = True,
    ) -> GmailJson:
        """A page of messages, newest first; with `with_metadata`, their headers (no bodies)."""
        page = await self._gate.list_messages(
            ctx, account_id, query=query, label_ids=label_ids, page_token=page_token,
            max_results=max_results,
        )  # fmt: skip
        stubs = page.get("messages", [])
        if with_metadata and stubs:
            page = dict(page)
            page["messages"] = await self._gate.read_messages(
                ctx, account_id, [m["id"] for m in stubs], fmt="metadata",
                metadata_headers=LIST_HEADERS,
            )  # fmt: skip
        return page

    async def message(
        self, ctx: AccessContext, account_id: str, message_id: str, *, fmt: str = "full"
    ) -> GmailJson:
        return await self._gate.read_message(ctx, account_id, message_id, fmt)

    async def thread(
        self, ctx: AccessContext, account_id: str, thread_id: str, *, fmt: str = "full"
    ) -> GmailJson:
        return await self._gate.get_thread(ctx, account_id, thread_id, fmt)

    async def attachment(
        self, ctx: AccessContext, account_id: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        """Audited before the first byte; the caller streams the rest."""
        return await self._gate.stream_attachment(ctx, account_id, message_id, attachment_id)

    # -- drafts -----------------------------------------------------------------------------

    async def drafts(
        self,
        ctx: AccessContext,
        account_id: str,
        *,
        page_token: str | None = None,
        max_results: int = 25,
    ) -> GmailJson:
        return await self._gate.list_drafts(
            ctx, account_id, page_token=page_token, max_results=max_results
        )

    async def draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> GmailJson:
        return await self._gate.get_draft(ctx, account_id, draft_id)

    async def create_draft(
        self,
        ctx: AccessContext,
        account_id: str,
        draft: Draft,
        *,
        reply_to: str | None = None,
    ) -> GmailJson:
        message = await self._compose(ctx, account_id, draft, reply_to=reply_to)
        return await self._gate.create_draft(ctx, account_id, message)

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
        return await self._gate.update_draft(ctx, account_id, draft_id, message)

    async def delete_draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> None:
        await self._gate.delete_draft(ctx, account_id, draft_id)

    async def send_draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> GmailJson:
        return await self._gate.send_draft(ctx, account_id, draft_id)

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self,
        ctx: AccessContext,
        account_id: str,
        draft: Draft,
        *,
        reply_to: str | None = None,
        forward_of: str | None = None,
        idempotency_key: str | None = None,
    ) -> GmailJson:
        """Send a new message, a reply (`reply_to`) or a forward (`forward_of`), exactly once.

        The Gmail client settles an unknown outcome by searching the composed Message-ID, so one
        call never sends twice; `idempotency_key` extends that to a client retrying the request.
        """
        if idempotency_key is None:
            return await self._send(ctx, account_id, draft, reply_to, forward_of)
        key = (ctx.actor.id, account_id, idempotency_key)
        future, mine = self._sent.claim(key)
        if not mine:
            # The retry is an access attempt of its own: decided and audited by the gate.
            return await self._gate.replay_send(ctx, account_id, await asyncio.shield(future))
        try:
            result = await self._send(ctx, account_id, draft, reply_to, forward_of)
        except BaseException as exc:
            self._sent.forget(key)  # nothing was sent (or it is unknown): a retry may try again
            future.set_exception(exc)
            future.exception()  # retrieved here; waiting retries re-raise it
            raise
        future.set_result(result)
        return result

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
        return await self._gate.send_message(ctx, account_id, message)

    # -- composition ------------------------------------------------------------------------

    async def _sender(self, ctx: AccessContext, account_id: str) -> str:
        sender = self._senders.get(account_id)
        if sender is None:
            profile = await self._gate.get_profile(ctx, account_id)
            sender = str(profile["emailAddress"])
            self._senders[account_id] = sender
        return sender

    def forget_account(self, account_id: str) -> None:
        """Drop what this process remembers about an account (after unlinking)."""
        self._senders.pop(account_id, None)

    async def _context(self, ctx: AccessContext, account_id: str, message_id: str) -> ThreadContext:
        original = await self._gate.read_message(
            ctx, account_id, message_id, "metadata", metadata_headers=THREAD_HEADERS
        )
        return ThreadContext.from_message(original)

    def _composition(self, sender: str, draft: Draft) -> Composition:
        return Composition(
            sender=sender, to=tuple(draft.to), cc=tuple(draft.cc), bcc=tuple(draft.bcc),
            subject=draft.subject, text=draft.text, html=draft.html,
            attachments=tuple(draft.attachments),
        )  # fmt: skip

    async def _compose(
        self, ctx: AccessContext, account_id: str, draft: Draft, *, reply_to: str | None
    ) -> OutgoingMessage:
        composition = self._composition(await self._sender(ctx, account_id), draft)
        if reply_to is None:
            return compose(composition, id_domain=self._id_domain)
        original = await self._context(ctx, account_id, reply_to)
        return compose_reply(composition, original, id_domain=self._id_domain)

    async def _compose_forward(
        self, ctx: AccessContext, account_id: str, draft: Draft, message_id: str
    ) -> OutgoingMessage:
        composition = self._composition(await self._sender(ctx, account_id), draft)
        original = await self._context(ctx, account_id, message_id)
        raw = await self._gate.read_message(ctx, account_id, message_id, "raw")
        original_raw = base64.urlsafe_b64decode(str(raw.get("raw", "")))
        return compose_forward(composition, original, original_raw, id_domain=self._id_domain)
