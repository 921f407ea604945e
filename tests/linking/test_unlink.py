"""Unlink: revoke at the emulator, purge every row, receipt, audit; canary search of the DB."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from audit.vocab import Action, Decision, Severity
from connector.accounts.endpoints import RevokeOutcome
from connector.accounts.unlink import Unlinker
from connector.errors import AccountNotLinkedError
from tests.linking.conftest import FAST, actions, link_account, link_config

CANARY_HISTORY = "778899001122"


async def all_values(engine) -> list[str]:
    """Every value of every column of every table in the database, as text."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        values: list[str] = []
        for table in tables:
            for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).all():
                values.extend(str(v) for v in row)
    return values


def unlinker(w, revoke_uri: str | None = None) -> Unlinker:
    config = link_config(w.emu)
    endpoints = config.endpoints(w.session, FAST)
    if revoke_uri is not None:
        endpoints.revoke_uri = revoke_uri
    return Unlinker(w.engine, w.vault, endpoints, w.authority())


async def test_unlink_revokes_and_leaves_nothing(linking):
    """After unlink no token, address or cached datum is anywhere in any table."""
    w = linking
    account = await link_account(w)
    await w.accounts.set_history_id(account.id, CANARY_HISTORY)
    creds = await w.credentials.load(account.id)
    secrets = [creds.refresh_token, creds.access_token, w.emu.users[0]]
    before = await all_values(w.engine)
    # Encrypted at rest: the plaintext never appears, even while linked.
    assert not [v for v in before for s in secrets if s in v]
    sealed = [v for v in before if "$" in v and v.startswith("k1$")]
    assert len(sealed) == 3  # refresh token, access token, address
    assert CANARY_HISTORY in before

    receipt = await unlinker(w).unlink(account.id, user_id="user-1")

    assert receipt.revocation is RevokeOutcome.REVOKED
    assert w.emu.tokens.refresh_tokens[creds.refresh_token].revoked
    assert receipt.rows_deleted == {
        "accounts_change": 0,
        "accounts_sync_quarantine": 0,
        "accounts_sync_state": 1,
        "accounts_link_state": 0,
        "accounts_account": 1,
    }
    # The one row left: the feed's `unlinked` (account id, kind, time; no Gmail data), kept for
    # open streams and late delivery until housekeeping drops it (sync_store.UNLINKED_KEPT).
    async with w.engine.connect() as conn:
        left = (await conn.execute(text(
            "SELECT account_id, kind, history_id, message_id, thread_id FROM accounts_change"
        ))).all()  # fmt: skip
        await conn.execute(text("DELETE FROM accounts_change"))
        await conn.commit()
    assert [tuple(r) for r in left] == [(account.id, "unlinked", None, None, None)]
    after = await all_values(w.engine)
    for needle in [*secrets, *sealed, CANARY_HISTORY, account.id]:
        assert not [v for v in after if needle in v], needle
    assert actions(w.audit)[-1] is Action.ACCOUNT_UNLINKED
    assert w.audit.events[-1].reasons == ("revocation:revoked",)
    audit_text = repr(w.audit.rows)
    for needle in secrets:
        assert needle not in audit_text
    with pytest.raises(AccountNotLinkedError):
        await w.credentials.load(account.id)


async def test_revoke_failure_is_reported_and_audited(sqlite_linking):
    """Google unreachable: data is still purged, the receipt says so, the failure is audited."""
    w = sqlite_linking
    account = await link_account(w)
    receipt = await unlinker(w, revoke_uri="http://127.0.0.1:9/revoke").unlink(
        account.id, user_id="user-1"
    )
    assert receipt.revocation is RevokeOutcome.FAILED
    assert "myaccount.google.com/permissions" in receipt.notes[0]
    assert receipt.rows_deleted["accounts_account"] == 1
    assert actions(w.audit)[-2:] == [Action.ACCOUNT_TOKEN_REVOKE_FAILED, Action.ACCOUNT_UNLINKED]
    assert receipt.as_dict()["revocation"] == "failed"


async def test_only_owner_can_unlink(sqlite_linking):
    """Another user cannot unlink the account; nothing is revoked or deleted."""
    w = sqlite_linking
    account = await link_account(w)
    with pytest.raises(AccountNotLinkedError):
        await unlinker(w).unlink(account.id, user_id="user-2")
    assert (await w.accounts.get(account.id)).id == account.id
    refused = w.audit.events[-1]  # the attempt is recorded: a cross-account refusal
    assert (refused.action, refused.decision, refused.severity) == (
        Action.ACCOUNT_UNLINKED, Decision.DENY, Severity.HIGH,
    )  # fmt: skip
    assert (refused.actor.id, refused.account_id) == ("user-2", account.id)
    assert "actor.not_owner" in refused.reasons


async def test_unlink_after_needs_relink_reports_already_invalid(sqlite_linking):
    """A grant already revoked at Google unlinks cleanly with revocation already_invalid."""
    w = sqlite_linking
    account = await link_account(w)
    w.emu.revoke_user(w.emu.users[0])
    receipt = await unlinker(w).unlink(account.id, user_id="user-1")
    assert receipt.revocation is RevokeOutcome.ALREADY_INVALID
