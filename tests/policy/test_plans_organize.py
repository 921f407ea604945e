"""Organize plans through the gate on the fake mailbox: what each records and changes."""

from __future__ import annotations

import pytest

from audit.event import ResourceRef
from audit.vocab import Action, ActorKind, Outcome, Phase, Purpose, ResourceKind
from connector.errors import AccessDenied
from connector.policy import plans_organize as organize
from connector.policy.gate import Gate
from connector.testing.mailbox import FakeMailbox
from tests.policy.conftest import ACCOUNT, OWNER_CTX, RecordingSink, ctx

L, M = ResourceKind.LABEL, ResourceKind.MESSAGE


async def test_archive_records_the_message_and_the_label_change(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """Archiving a1 removes INBOX in the mailbox; both events name a1 and remove:INBOX."""
    await gate.run(OWNER_CTX, organize.message_modify(ACCOUNT, "a1", [], ["INBOX"]))
    assert "INBOX" not in mailbox.messages[ACCOUNT]["a1"]["labelIds"]
    decision, outcome = sink.events
    assert decision.action is Action.GMAIL_MESSAGE_MODIFY
    assert (decision.phase, outcome.phase, outcome.outcome) == (
        Phase.DECISION, Phase.OUTCOME, Outcome.OK,
    )  # fmt: skip
    assert {ResourceRef(M, "a1"), ResourceRef(L, "remove:INBOX")} <= set(outcome.resources)


async def test_operator_is_refused_before_the_mailbox(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """An operator's modify is denied and recorded; the fake mailbox is never called."""
    operator = ctx(ActorKind.OPERATOR, "op1", Purpose.CONSENTED_SUPPORT)
    with pytest.raises(AccessDenied):
        await gate.run(operator, organize.message_trash(ACCOUNT, "a1"))
    assert mailbox.calls == []
    assert [e.outcome for e in sink.events] == [Outcome.DENIED]


def test_batch_modify_names_every_message_within_the_event_limit() -> None:
    """1,000 ids with two label changes are two plans (998 + 2 ids), every id recorded once."""
    ids = [f"{i:x}" for i in range(0x1000, 0x1000 + 1000)]
    made = organize.batch_modify(ACCOUNT, ids, ["STARRED"], ["INBOX"])
    assert [len(p.message_ids) for p in made] == [998, 2]
    recorded = [r.id for p in made for r in p.resources if r.kind is M]
    assert recorded == ids
    assert all(len(p.resources) <= 1000 for p in made)
    assert len(organize.batch_modify(ACCOUNT, ids, [], [])) == 1
    with pytest.raises(ValueError, match="at most 1000"):
        organize.batch_modify(ACCOUNT, [*ids, "ffff"], [], ["INBOX"])


async def test_labels_threads_and_settings_on_the_fake(gate: Gate, mailbox: FakeMailbox) -> None:
    """Create, rename and delete a label; list and trash a thread; vacation round-trips."""
    label = await gate.run(OWNER_CTX, organize.label_create(ACCOUNT, {"name": "Work"}))
    await gate.run(OWNER_CTX, organize.label_update(ACCOUNT, label["id"], {"name": "Job"}))
    assert mailbox.user_labels[ACCOUNT][label["id"]]["name"] == "Job"
    await gate.run(OWNER_CTX, organize.label_delete(ACCOUNT, label["id"]))
    assert mailbox.user_labels[ACCOUNT] == {}
    page = await gate.run(OWNER_CTX, organize.thread_list(ACCOUNT, max_results=1))
    tid = page["threads"][0]["id"]
    trashed = await gate.run(OWNER_CTX, organize.thread_trash(ACCOUNT, tid))
    assert all("TRASH" in m["labelIds"] for m in trashed["messages"])
    wanted = {"enableAutoReply": True}
    assert await gate.run(OWNER_CTX, organize.vacation_update(ACCOUNT, wanted)) == wanted
    assert await gate.run(OWNER_CTX, organize.vacation(ACCOUNT)) == wanted
