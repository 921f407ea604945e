"""Exactly-once send and draft creation: settle an unknown outcome before trying again.

A send that timed out, lost its connection or got a 5xx may still have gone out. Retrying it
blindly can mail the recipient twice, so before any retry the sender's mailbox is searched for
the message's unique Message-ID (`rfc822msgid:`). Found: that is the result. Not found: the
send did not happen and may be retried. The search itself failing: `SendOutcomeUnknownError`,
never a retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from connector.gmail.calls import ApiCall, CallFactory
from connector.gmail.errors import (
    GmailError,
    NetworkError,
    NotFoundError,
    SendOutcomeUnknownError,
    ServerError,
)
from connector.gmail.executor import Executor
from connector.logs import get_logger
from connector.ports import FETCH_MINIMAL, Format, GmailJson

log = get_logger(__name__)
Resolver = Callable[[], Awaitable[GmailJson | None]]


def msgid_query(message_id: str) -> str:
    return f"rfc822msgid:{message_id.strip().strip('<>')}"


class ExactlyOnce:
    def __init__(
        self, executor: Executor, calls: CallFactory, resolution_delays: Sequence[float]
    ) -> None:
        self._executor = executor
        self._calls = calls
        # Search again after these pauses before concluding "not sent": Gmail's index can lag.
        self._delays = tuple(resolution_delays) or (0.0,)

    async def run(self, account_id: str, call: ApiCall, resolve: Resolver) -> GmailJson:
        """Run a non-idempotent call; on an unknown outcome, `resolve` before any retry."""
        attempt = 1
        while True:
            try:
                result: GmailJson = await self._executor.call(account_id, call)
                return result
            except (ServerError, NetworkError) as exc:
                if isinstance(exc, NetworkError) and not exc.request_sent:
                    raise  # never reached Gmail; the executor already retried it
                log.info("gmail_outcome_unknown", method=call.method, error=type(exc).__name__)
                found = await resolve()
                if found is not None:
                    log.info("gmail_outcome_resolved", method=call.method, committed=True)
                    return found
                log.info("gmail_outcome_resolved", method=call.method, committed=False)
                if not self._executor.retry.should_retry(attempt):
                    raise
                await self._executor.sleep(self._executor.retry.delay(attempt))
                attempt += 1

    async def _searching(
        self, message_id: str, probe: Callable[[], Awaitable[GmailJson | None]]
    ) -> GmailJson | None:
        for delay in self._delays:
            if delay:
                await self._executor.sleep(delay)
            try:
                found = await probe()
            except GmailError as exc:
                raise SendOutcomeUnknownError(
                    "the send may have gone out and the mailbox search failed; check the "
                    "Sent folder before sending again",
                    message_id=message_id,
                ) from exc
            if found is not None:
                return found
        return None

    async def find_sent(self, account_id: str, message_id: str) -> GmailJson | None:
        """The SENT message carrying `message_id`, as messages.send would have returned it."""

        async def probe() -> GmailJson | None:
            listing = await self._executor.call(
                account_id,
                self._calls.list_messages(
                    query=msgid_query(message_id), include_spam_trash=True, max_results=10
                ),
            )
            for stub in listing.get("messages", []):
                message = await self._executor.call(
                    account_id, self._calls.get_message(stub["id"], FETCH_MINIMAL)
                )
                labels = message.get("labelIds", [])
                if "SENT" in labels and "DRAFT" not in labels:
                    return {
                        "id": message["id"],
                        "threadId": message["threadId"],
                        "labelIds": labels,
                    }
            return None

        return await self._searching(message_id, probe)

    async def find_draft(self, account_id: str, message_id: str) -> GmailJson | None:
        """The draft whose message carries `message_id`, as drafts.create would have returned."""

        async def probe() -> GmailJson | None:
            listing = await self._executor.call(
                account_id, self._calls.list_drafts(query=msgid_query(message_id), max_results=10)
            )
            for stub in listing.get("drafts", []):
                try:
                    draft = await self._executor.call(
                        account_id, self._calls.get_draft(stub["id"], fmt=Format.MINIMAL)
                    )
                except NotFoundError:
                    continue
                message = draft.get("message", {})
                return {
                    "id": draft["id"],
                    "message": {
                        "id": message.get("id"),
                        "threadId": message.get("threadId"),
                        "labelIds": message.get("labelIds", ["DRAFT"]),
                    },
                }
            return None

        return await self._searching(message_id, probe)

    async def draft_exists(self, account_id: str, draft_id: str) -> bool:
        try:
            await self._executor.call(
                account_id, self._calls.get_draft(draft_id, fmt=Format.MINIMAL)
            )
        except NotFoundError:
            return False
        return True
