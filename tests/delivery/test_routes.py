"""The dead-letter routes of the running service: a receiver down past the horizon leaves a dead
letter, an admin lists it and redelivers it through the API once the receiver is back, and the
receiver verifies it (standardwebhooks) under the same webhook-id; other roles are refused and
the refusal recorded; unknown ids and bad parameters are problems (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.vocab import Action, Decision
from connector.accounts.changes import Change, ChangeKind
from connector.delivery.dispatcher import Dispatcher
from connector.policy.recorder import is_refusal
from connector.web.app import SESSION
from connector.web.routes_delivery import DELIVERY
from tests.conftest import Clock
from tests.delivery.test_service import SECRET, Receiver, _append, receiver
from tests.e2e.conftest import ALICE, Stack, assert_problem, running_stack

LIST = "/v1/webhooks/dead-letters"


@contextlib.asynccontextmanager
async def webhooked(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Receiver, Stack]]:
    """The service delivering to a receiver that is down, its own dispatcher all but idle
    (hourly): each test runs a dispatcher itself."""
    async with receiver() as hook, running_stack(
        db_url, tmp_path, webhook_url=hook.url, webhook_secret=SECRET, webhook_poll_seconds=3600
    ) as s:  # fmt: skip
        yield hook, s


def _past_the_horizon(s: Stack, start: datetime) -> tuple[Dispatcher, Clock]:
    """The service's own delivery pieces (store, feed, authority, receiver URL, secret, horizon)
    driven by a clock the test moves, so the horizon passes without waiting a day."""
    running = s.app[DELIVERY].dispatcher
    assert running is not None
    clock = Clock(start)
    dispatcher = Dispatcher(
        running.config, running.store, s.services.feed.store, s.services.authority,
        s.app[SESSION], clock=clock, rand=lambda: 1.0,
    )  # fmt: skip
    return dispatcher, clock


async def _dead_letter(s: Stack) -> str:
    """One change for alice that the (down) receiver never takes: dead-lettered; its event id."""
    await asyncio.sleep(0.2)  # the service's dispatcher has made its first (empty) run
    (seq,) = await _append(s, Change(ChangeKind.MESSAGE_ADDED, "7", "m1", "t1"))
    dispatcher, clock = _past_the_horizon(s, s.services.clock())
    assert (await dispatcher.run_once()).failed == 1
    clock.now += timedelta(hours=s.settings.webhook_horizon_hours, seconds=1)
    assert (await dispatcher.run_once()).dead_lettered == 1
    return f"msg_{ALICE}_{seq}"


async def test_a_dead_letter_is_listed_and_redelivered_through_the_api(
    db_url: str, tmp_path: Path
) -> None:
    async with webhooked(db_url, tmp_path) as (hook, s):
        letter_id = await _dead_letter(s)
        status, body, _ = await s.call("GET", LIST, "adm", params={"account_id": ALICE})
        assert status == 200, body
        (letter,) = body["deadLetters"]
        assert letter["id"] == letter_id
        assert letter["status"] == "dead"
        assert letter["lastError"] == "http.503"
        assert letter["attempts"] == 2
        assert letter["kind"] == "message_added"
        assert "payload" not in letter
        assert "m1" not in json.dumps(body)
        assert body["nextCursor"] is None
        listed = await s.events(action=Action.WEBHOOK_DEAD_LETTERS_LISTED)
        assert [(e.decision, e.actor.id) for e in listed] == [(Decision.ALLOW, "adm")]

        still_down = await s.call("POST", f"{LIST}/{letter_id}/redeliver", "adm")
        assert still_down[0] == 200
        assert still_down[1] == {"id": letter_id, "delivered": False, "error": "http.503"}
        hook.up = True
        status, body, _ = await s.call("POST", f"{LIST}/{letter_id}/redeliver", "adm")
        assert status == 200
        assert body == {"id": letter_id, "delivered": True, "error": None}
        assert [i for i, _ in hook.received] == [letter_id]  # same webhook-id, verified
        assert hook.received[0][1]["data"]["change"]["messageId"] == "m1"
        requested = await s.events(action=Action.WEBHOOK_REDELIVERY_REQUESTED)
        assert [e.decision for e in requested] == [Decision.ALLOW, Decision.ALLOW]
        delivered = await s.events(action=Action.WEBHOOK_DELIVERED)
        assert [e.request_id for e in delivered] == [letter_id]

        again = await s.call("POST", f"{LIST}/{letter_id}/redeliver", "adm")
        assert_problem(*again, 409, "conflict")
        status, body, _ = await s.call("GET", LIST, "adm")
        assert status == 200
        assert body["deadLetters"] == []


async def test_other_roles_are_refused_and_the_refusal_recorded(
    db_url: str, tmp_path: Path
) -> None:
    async with webhooked(db_url, tmp_path) as (hook, s):
        letter_id = await _dead_letter(s)
        for who in ("alice", "op1", "rev"):
            for method, path in (("GET", LIST), ("POST", f"{LIST}/{letter_id}/redeliver")):
                rid = f"refused-{who}-{method}"
                answer = await s.call(method, path, who, headers={"X-Request-ID": rid})
                assert_problem(*answer, 403, "role-not-permitted")
                refusals = [e for e in await s.events() if e.request_id == rid and is_refusal(e)]
                assert len(refusals) == 1
                assert refusals[0].actor.id == who
        hook.up = True
        assert hook.received == []  # nothing was redelivered by the refused calls


async def test_unknown_ids_and_bad_parameters_are_problems(db_url: str, tmp_path: Path) -> None:
    async with webhooked(db_url, tmp_path) as (_, s):
        assert_problem(*await s.call("POST", f"{LIST}/msg_nobody_1/redeliver", "adm"),
                       404, "not-found")  # fmt: skip
        for params, slug in (
            ({"limit": "0"}, "malformed-request"), ({"limit": "x"}, "malformed-request"),
            ({"limit": "101"}, "malformed-request"), ({"account_id": "-bad"}, "invalid-id"),
            ({"cursor": "no/such"}, "invalid-id"),
            ({"cursor": "msg_nobody_1"}, "invalid-page-token"),
        ):  # fmt: skip
            assert_problem(*await s.call("GET", LIST, "adm", params=params), 400, slug)
        refused = await s.call("GET", LIST, "adm", params={"account_id": "nobody"})
        assert_problem(*refused, 403, "access-denied")  # a named account must be known


async def test_without_webhooks_the_routes_say_so(db_url: str, tmp_path: Path) -> None:
    async with running_stack(db_url, tmp_path) as s:
        assert_problem(*await s.call("GET", LIST, "adm"), 409, "webhooks-disabled")
        answer = await s.call("POST", f"{LIST}/msg_{ALICE}_1/redeliver", "adm")
        assert_problem(*answer, 409, "webhooks-disabled")


async def test_the_list_pages_with_its_cursor(db_url: str, tmp_path: Path) -> None:
    """Two dead letters, one per page: the first page's `nextCursor` leads to the second."""
    async with webhooked(db_url, tmp_path) as (_, s):
        await asyncio.sleep(0.2)  # the service's dispatcher has made its first (empty) run
        seqs = await _append(s, *(Change(ChangeKind.MESSAGE_ADDED, "7", f"m{i}") for i in (1, 2)))
        dispatcher, clock = _past_the_horizon(s, s.services.clock())
        for _ in range(3):  # first fails; past the horizon it is dead, the second fails; again
            await dispatcher.run_once()
            clock.now += timedelta(hours=s.settings.webhook_horizon_hours, seconds=1)
        ids = [f"msg_{ALICE}_{q}" for q in seqs]
        status, first, _ = await s.call("GET", LIST, "adm", params={"limit": "1"})
        assert status == 200
        assert [d["id"] for d in first["deadLetters"]] == ids[:1]
        assert first["nextCursor"] == ids[0]
        params = {"limit": "1", "cursor": first["nextCursor"]}
        status, second, _ = await s.call("GET", LIST, "adm", params=params)
        assert status == 200
        assert [d["id"] for d in second["deadLetters"]] == ids[1:]
        assert second["nextCursor"] is None


async def test_a_redelivery_while_another_is_under_way_is_a_conflict(
    db_url: str, tmp_path: Path
) -> None:
    """The letter is claimed by one redelivery (another request, maybe on another instance):
    a second request is answered 409 and sends nothing."""
    async with webhooked(db_url, tmp_path) as (hook, s):
        letter_id = await _dead_letter(s)
        hook.up = True
        dispatcher = s.app[DELIVERY].dispatcher
        assert dispatcher is not None
        claimed = await dispatcher.store.claim_redelivery(
            letter_id, datetime.now(UTC), timedelta(minutes=1)
        )
        assert claimed
        status, body, headers = await s.call("POST", f"{LIST}/{letter_id}/redeliver", "adm")
        assert_problem(status, body, headers, 409, "conflict")
        assert "redelivering" in body["detail"]
        assert hook.received == []
