"""`GmailClient`: the async adapter behind `connector.ports.MailboxPort`.

Requests are built by google-api-python-client from its bundled discovery document and sent
over one shared aiohttp session; see `executor` for retries, quota and batching, `sending` for
exactly-once send, `sync` for mailbox sync. Only the access gate may import this package.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

import aiohttp

from connector.clock import Clock, system_clock
from connector.gmail.batch import MAX_BATCH_PARTS
from connector.gmail.calls import CallFactory
from connector.gmail.errors import ApiError, SendOutcomeUnknownError
from connector.gmail.executor import Executor, Sleep
from connector.gmail.quota import QuotaBudget, QuotaPolicy
from connector.gmail.retry import RetryPolicy
from connector.gmail.sending import ExactlyOnce
from connector.gmail.sync import (
    SYNC_HEADERS,
    MailboxSnapshot,
    MailboxSync,
    SyncResult,
    gone_or_raise,
)
from connector.gmail.transport import AiohttpTransport, Transport
from connector.mime import check_size
from connector.ports import (
    FETCH_FULL,
    FETCH_METADATA,
    ExchangeObserver,
    Fetch,
    Format,
    GmailJson,
    ListOptions,
    MailboxPort,
    OutgoingMessage,
    TokenSource,
)

ATTACHMENT_CHUNK = 256 * 1024  # decoded bytes per yielded chunk (rounded down to 3 bytes)
_LIST_PAGE = 500  # Gmail's maximum page size for messages.list
BATCH_MODIFY_MAX = 1000  # ids per messages.batchModify call (Gmail refuses more)


class GmailClient:
    """Gmail API for many linked accounts; `account_id` picks the token and the quota budget."""

    def __init__(
        self,
        endpoint: str,
        token_source: TokenSource,
        session: aiohttp.ClientSession,
        *,
        quota: QuotaPolicy | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int = MAX_BATCH_PARTS,
        send_resolution_delays: Sequence[float] = (0.0, 1.0, 3.0),
        timeout: aiohttp.ClientTimeout | None = None,
        transport: Transport | None = None,
        observe: ExchangeObserver | None = None,
        sleep: Sleep = asyncio.sleep,
        attachment_chunk: int = ATTACHMENT_CHUNK,
        clock: Clock = system_clock,
    ) -> None:
        """`quota=None` paces nothing by units but still caps concurrency per user (10)."""
        self.calls = CallFactory(endpoint)
        self.budget = QuotaBudget(quota or QuotaPolicy.unmetered())
        self._executor = Executor(
            transport or AiohttpTransport(session, timeout=timeout, observe=observe),
            token_source,
            self.budget,
            retry or RetryPolicy(),
            batch_uri=self.calls.batch_uri,
            batch_size=batch_size,
            sleep=sleep,
            clock=clock,
        )
        self._once = ExactlyOnce(self._executor, self.calls, send_resolution_delays)
        self._sync = MailboxSync(self)
        if attachment_chunk < 3:
            raise ValueError("attachment_chunk must be at least 3 bytes")
        self._attachment_chunk = attachment_chunk

    async def _call(self, account_id: str, call: Any) -> GmailJson:
        result: GmailJson = await self._executor.call(account_id, call)
        return result

    # -- reads ---------------------------------------------------------------------------
    async def get_profile(self, account_id: str) -> GmailJson:
        return await self._call(account_id, self.calls.get_profile())

    async def list_labels(self, account_id: str) -> GmailJson:
        return await self._call(account_id, self.calls.list_labels())

    async def watch(
        self, account_id: str, topic: str, label_ids: tuple[str, ...] = ()
    ) -> GmailJson:
        return await self._call(account_id, self.calls.watch(topic, label_ids))

    async def stop_watch(self, account_id: str) -> None:
        await self._call(account_id, self.calls.stop_watch())

    async def list_messages(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson:
        return await self._call(account_id, self.calls.list_messages(**options))

    async def get_message(
        self, account_id: str, message_id: str, fetch: Fetch = FETCH_FULL
    ) -> GmailJson:
        return await self._call(account_id, self.calls.get_message(message_id, fetch))

    async def get_messages_detailed(
        self, account_id: str, message_ids: Sequence[str], fetch: Fetch = FETCH_METADATA
    ) -> list[GmailJson | ApiError]:
        """Batched get; per id, the message or the `ApiError` that part ended with."""
        calls = [self.calls.get_message(mid, fetch) for mid in message_ids]
        return await self._executor.batch(account_id, calls)

    async def get_messages(
        self, account_id: str, message_ids: list[str], fetch: Fetch = FETCH_METADATA
    ) -> list[GmailJson]:
        """Batched get; results in the order of `message_ids`; a failed part raises."""
        results = await self.get_messages_detailed(account_id, message_ids, fetch)
        for result in results:
            if isinstance(result, ApiError):
                raise result
        return [r for r in results if not isinstance(r, ApiError)]

    async def get_thread(
        self, account_id: str, thread_id: str, *, fmt: Format = Format.FULL
    ) -> GmailJson:
        return await self._call(account_id, self.calls.get_thread(thread_id, fmt=fmt))

    async def stream_attachment(
        self, account_id: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        """Decoded attachment bytes in chunks.

        Gmail returns the attachment as one base64url JSON field; decoding it piecewise keeps
        the caller from holding a second full copy while it writes the bytes out.
        """
        body = await self._call(account_id, self.calls.get_attachment(message_id, attachment_id))
        data = str(body.get("data", ""))
        step = self._attachment_chunk // 3 * 4  # whole base64 quanta decode on their own
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            yield base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))

    # -- drafts --------------------------------------------------------------------------
    async def list_drafts(
        self, account_id: str, *, page_token: str | None = None, max_results: int = 100
    ) -> GmailJson:
        call = self.calls.list_drafts(page_token=page_token, max_results=max_results)
        return await self._call(account_id, call)

    async def get_draft(self, account_id: str, draft_id: str) -> GmailJson:
        return await self._call(account_id, self.calls.get_draft(draft_id))

    async def create_draft(self, account_id: str, message: OutgoingMessage) -> GmailJson:
        """Create once: an unknown outcome is settled by searching drafts for the Message-ID."""
        check_size(message.raw)
        call = self.calls.create_draft(message.raw, message.thread_id)
        return await self._once.run(
            account_id, call, lambda: self._once.find_draft(account_id, message.message_id)
        )

    async def update_draft(
        self, account_id: str, draft_id: str, message: OutgoingMessage
    ) -> GmailJson:
        check_size(message.raw)
        call = self.calls.update_draft(draft_id, message.raw, message.thread_id)
        return await self._call(account_id, call)

    async def delete_draft(self, account_id: str, draft_id: str) -> None:
        # A retry whose lost first attempt already deleted the draft answers 404: that is
        # the outcome the caller asked for.
        await self._executor.call(
            account_id, self.calls.delete_draft(draft_id), gone_after_retry_ok=True
        )

    async def send_draft(self, account_id: str, draft_id: str) -> GmailJson:
        """Send once: learn the draft's Message-ID first so an unknown outcome can be settled."""
        draft = await self._call(account_id, self.calls.get_draft(draft_id, fmt=Format.METADATA))
        headers = draft.get("message", {}).get("payload", {}).get("headers", [])
        message_id = next(
            (h.get("value", "") for h in headers if h.get("name", "").lower() == "message-id"), ""
        )
        call = self.calls.send_draft(draft_id)

        async def resolve() -> GmailJson | None:
            if message_id:
                found = await self._once.find_sent(account_id, message_id)
                if found is not None:
                    return found
            if await self._once.draft_exists(account_id, draft_id):
                return None  # still a draft: it was not sent, so retrying is safe
            raise SendOutcomeUnknownError(
                "the draft is gone but its sent copy was not found; check the Sent folder",
                message_id=message_id,
            )

        return await self._once.run(account_id, call, resolve)

    # -- send ----------------------------------------------------------------------------
    async def send_message(self, account_id: str, message: OutgoingMessage) -> GmailJson:
        """Send exactly once: an unknown outcome is resolved by an `rfc822msgid:` search."""
        check_size(message.raw)
        call = self.calls.send_message(message.raw, message.thread_id)
        return await self._once.run(
            account_id, call, lambda: self._once.find_sent(account_id, message.message_id)
        )

    # -- organizing ----------------------------------------------------------------------
    async def create_label(self, account_id: str, label: Mapping[str, Any]) -> GmailJson:
        return await self._call(account_id, self.calls.create_label(label))

    async def update_label(
        self, account_id: str, label_id: str, changes: Mapping[str, Any]
    ) -> GmailJson:
        return await self._call(account_id, self.calls.patch_label(label_id, changes))

    async def delete_label(self, account_id: str, label_id: str) -> None:
        await self._executor.call(
            account_id, self.calls.delete_label(label_id), gone_after_retry_ok=True
        )

    async def modify_message(
        self, account_id: str, message_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson:
        return await self._call(account_id, self.calls.modify_message(message_id, add, remove))

    async def batch_modify(
        self, account_id: str, message_ids: Sequence[str], add: Sequence[str],
        remove: Sequence[str],
    ) -> None:  # fmt: skip
        """One call per 1,000 ids (Gmail's cap for batchModify); 50 units each."""
        ids = list(message_ids)
        for start in range(0, len(ids), BATCH_MODIFY_MAX):
            chunk = ids[start : start + BATCH_MODIFY_MAX]
            await self._executor.call(account_id, self.calls.batch_modify(chunk, add, remove))

    async def trash_message(
        self, account_id: str, message_id: str, *, undo: bool = False
    ) -> GmailJson:
        return await self._call(account_id, self.calls.trash_message(message_id, undo=undo))

    async def list_threads(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson:
        return await self._call(account_id, self.calls.list_threads(**options))

    async def modify_thread(
        self, account_id: str, thread_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson:
        return await self._call(account_id, self.calls.modify_thread(thread_id, add, remove))

    async def trash_thread(
        self, account_id: str, thread_id: str, *, undo: bool = False
    ) -> GmailJson:
        return await self._call(account_id, self.calls.trash_thread(thread_id, undo=undo))

    # -- settings ------------------------------------------------------------------------
    async def list_send_as(self, account_id: str) -> GmailJson:
        return await self._call(account_id, self.calls.list_send_as())

    async def get_vacation(self, account_id: str) -> GmailJson:
        return await self._call(account_id, self.calls.get_vacation())

    async def update_vacation(self, account_id: str, settings: Mapping[str, Any]) -> GmailJson:
        return await self._call(account_id, self.calls.update_vacation(settings))

    def sending_paused_until(self, account_id: str) -> datetime | None:
        """When Gmail's mail-sending limit lets this account send again, if it is paused."""
        paused = self._executor.sending_paused_until(account_id)
        return None if paused is None else paused.until

    # -- sync ----------------------------------------------------------------------------
    async def full_sync(self, account_id: str) -> SyncResult:
        """Snapshot of every message's metadata (spam and trash included) and the cursor."""
        return await self._sync.full(account_id)

    async def incremental_sync(self, account_id: str, snapshot: MailboxSnapshot) -> SyncResult:
        """Apply history since `snapshot`; falls back to a full sync when the cursor expired."""
        return await self._sync.incremental(account_id, snapshot)

    async def list_all_message_ids(self, account_id: str) -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            call = self.calls.list_messages(
                page_token=token, max_results=_LIST_PAGE, include_spam_trash=True
            )
            page = await self._call(account_id, call)
            ids += [stub["id"] for stub in page.get("messages", [])]
            token = page.get("nextPageToken")
            if not token:
                return list(dict.fromkeys(ids))  # pages can overlap when mail arrives

    async def list_history_pages(self, account_id: str, start_history_id: str) -> list[GmailJson]:
        pages: list[GmailJson] = []
        token: str | None = None
        while True:
            call = self.calls.list_history(start_history_id, page_token=token)
            page = await self._call(account_id, call)
            pages.append(page)
            token = page.get("nextPageToken")
            if not token:
                return pages

    async def fetch_metadata(
        self,
        account_id: str,
        message_ids: Sequence[str],
        headers: tuple[str, ...] = SYNC_HEADERS,
    ) -> dict[str, GmailJson | None]:
        results = await self.get_messages_detailed(
            account_id, message_ids, Fetch(Format.METADATA, headers)
        )
        return {mid: gone_or_raise(r) for mid, r in zip(message_ids, results, strict=True)}


def as_mailbox_port(client: GmailClient) -> MailboxPort:
    """Typed view of the client as the gate's port; mypy checks the conformance here."""
    return client
