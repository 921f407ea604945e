"""The link flow end to end: disclosure, emulator consent page, callback, state and PKCE."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from audit.vocab import Action
from connector.accounts.models import AccountStatus
from connector.accounts.scopes import Feature
from connector.accounts.vault import SecretKind
from connector.errors import (
    LinkError,
    LinkStateError,
    RedirectNotAllowedError,
    ScopeNotGrantedError,
)
from tests.linking.conftest import (
    READ,
    REDIRECT,
    SEND,
    actions,
    link_account,
    start_and_consent,
)


async def test_happy_path_links_account(linking):
    """Consent page approved: account active, address shown to owner, events exact."""
    account = await link_account(linking)
    assert account.status is AccountStatus.ACTIVE
    assert account.owner_user_id == "user-1"
    assert account.email == linking.emu.users[0]
    assert account.features == {Feature.READ, Feature.SEND}
    assert READ in account.scopes
    assert SEND in account.scopes
    assert actions(linking.audit) == [
        Action.ACCOUNT_LINK_STARTED,
        Action.ACCOUNT_LINKED,
        Action.ACCOUNT_SCOPES_GRANTED,
    ]
    assert linking.audit.events[1].account_id == account.id
    assert linking.audit.events[2].reasons == ("granted:read", "granted:send")
    await linking.accounts.require_feature(account.id, Feature.READ)
    creds = await linking.credentials.load(account.id)
    assert creds.refresh_token.startswith("1//")
    async with linking.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM accounts_link_state"))).scalar()
    assert left == 0


async def test_authorization_url_asks_offline_pkce_incremental(sqlite_linking):
    """The URL carries code flow, offline access, granted-scope inclusion and S256 PKCE."""
    start = await sqlite_linking.service.start_link(
        user_id="user-1", features=[Feature.READ], redirect_uri=REDIRECT, disclosure_accepted=True
    )
    url = start.authorization_url
    assert url.startswith(sqlite_linking.emu.auth_uri)
    for part in ("response_type=code", "access_type=offline", "include_granted_scopes=true",
                 "code_challenge_method=S256", "code_challenge=", "state="):  # fmt: skip
        assert part in url
    assert "mail.google.com" not in url
    assert "gmail.send" not in url
    assert "authorization_url" not in repr(start)


async def test_disclosure_page_has_statement_and_scopes(sqlite_linking):
    """The disclosure names the Limited Use statement and every requested scope with why."""
    page = sqlite_linking.service.disclosure_page(
        [Feature.READ, Feature.DRAFTS], confirm_action="/link/confirm"
    )
    assert (
        "Acme Inbox&#x27;s use and transfer of information received from Google APIs will "
        "adhere to the Google API Services User Data Policy, including the Limited Use "
        "requirements." in page
    )
    assert "gmail.readonly" in page
    assert "gmail.compose" in page
    assert "gmail.send" not in page
    assert 'name="disclosure_accepted" value="yes"' in page


async def test_no_state_without_disclosure_acceptance(sqlite_linking):
    """Without the affirmative action nothing is stored and the refusal is audited."""
    with pytest.raises(LinkError) as info:
        await sqlite_linking.service.start_link(
            user_id="user-1", features=[Feature.READ], redirect_uri=REDIRECT,
            disclosure_accepted=False,
        )  # fmt: skip
    assert info.value.reason == "disclosure_not_accepted"
    async with sqlite_linking.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM accounts_link_state"))).scalar()
    assert rows == 0
    assert actions(sqlite_linking.audit) == [Action.ACCOUNT_LINK_FAILED]


async def test_redirect_not_on_allow_list(sqlite_linking):
    """A redirect URI outside the allow-list is refused before any state exists."""
    with pytest.raises(RedirectNotAllowedError):
        await sqlite_linking.service.start_link(
            user_id="user-1", features=[Feature.READ],
            redirect_uri="http://127.0.0.1:8765/evil", disclosure_accepted=True,
        )  # fmt: skip
    assert sqlite_linking.audit.events[-1].reasons == ("redirect_uri_not_allowed",)
    async with sqlite_linking.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM accounts_link_state"))).scalar()
    assert rows == 0


async def test_wrong_state_is_refused(sqlite_linking):
    """A callback with a state the connector never issued links nothing."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    with pytest.raises(LinkStateError) as info:
        await w.service.complete_link(state="forged-state", code=callback.code)
    assert info.value.reason == "unknown_state"
    assert w.audit.events[-1].action is Action.ACCOUNT_LINK_FAILED
    assert await w.accounts.list_for_owner("user-1") == []


async def test_replayed_state_is_refused(sqlite_linking):
    """A state works once: replaying the callback fails and links nothing more."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    await w.service.complete_link(state=callback.state, code=callback.code)
    with pytest.raises(LinkStateError) as info:
        await w.service.complete_link(state=callback.state, code=callback.code)
    assert info.value.reason == "unknown_state"
    assert len(await w.accounts.list_for_owner("user-1")) == 1


async def test_state_of_another_user_is_refused(sqlite_linking):
    """A callback completed in another user's session is refused."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    with pytest.raises(LinkStateError) as info:
        await w.service.complete_link(state=callback.state, code=callback.code, user_id="user-2")
    assert info.value.reason == "state_user_mismatch"


async def test_expired_state_is_refused(sqlite_linking):
    """A state older than ten minutes is refused."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    async with w.engine.begin() as conn:
        await conn.execute(text("UPDATE accounts_link_state SET expires_at = created_at"))
    with pytest.raises(LinkStateError) as info:
        await w.service.complete_link(state=callback.state, code=callback.code)
    assert info.value.reason == "state_expired"


async def test_wrong_pkce_verifier_is_refused(sqlite_linking):
    """A stored verifier that does not match the challenge makes Google refuse the code."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    from connector.accounts.link_state import state_hash

    key = state_hash(callback.state)
    wrong = w.vault.seal("x" * 64, owner_id=key, kind=SecretKind.CODE_VERIFIER)
    async with w.engine.begin() as conn:
        await conn.execute(
            text("UPDATE accounts_link_state SET code_verifier_sealed = :v"), {"v": wrong}
        )
    with pytest.raises(LinkError) as info:
        await w.service.complete_link(state=callback.state, code=callback.code)
    assert info.value.reason == "invalid_grant"
    assert w.audit.events[-1].reasons == ("invalid_grant",)
    assert await w.accounts.list_for_owner("user-1") == []


async def test_missing_pkce_verifier_is_refused(sqlite_linking):
    """Exchanging the code without its verifier is refused by the token endpoint."""
    w = sqlite_linking
    callback = await start_and_consent(w)
    from connector.clock import system_clock as utc_now
    from connector.errors import TokenEndpointError
    from tests.linking.conftest import link_config

    endpoints = link_config(w.emu).endpoints(w.session, (0.0,))
    with pytest.raises(TokenEndpointError) as info:
        await endpoints.exchange_code(
            callback.code, redirect_uri=REDIRECT, code_verifier=None, now=utc_now()
        )
    assert info.value.error == "invalid_grant"


async def test_partial_grant_leaves_feature_off(sqlite_linking):
    """Unticking Send on the consent page links Read only; Send raises a how-to error."""
    w = sqlite_linking
    account = await link_account(w, (Feature.READ, Feature.SEND), untick=(SEND,))
    assert account.features == {Feature.READ}
    assert w.audit.events[-1].reasons == ("granted:read", "declined:send")
    await w.accounts.require_feature(account.id, Feature.READ)
    with pytest.raises(ScopeNotGrantedError) as info:
        await w.accounts.require_feature(account.id, Feature.SEND)
    assert info.value.scope == SEND
    assert "link again and tick the send permission" in str(info.value)


async def test_incremental_grant_adds_feature(sqlite_linking):
    """Relinking the same account for Drafts keeps Read (include_granted_scopes)."""
    w = sqlite_linking
    account = await link_account(w, (Feature.READ,))
    callback = await start_and_consent(w, (Feature.DRAFTS,), account_id=account.id)
    again = await w.service.complete_link(state=callback.state, code=callback.code)
    assert again.id == account.id
    # gmail.compose also allows messages.send, so Send comes with Drafts (Google's rule).
    assert again.features == {Feature.READ, Feature.DRAFTS, Feature.SEND}
    assert w.audit.events[-2].reasons == ("relinked",)


async def test_denied_consent_links_nothing(sqlite_linking):
    """Cancel on the consent page comes back as access_denied and is audited."""
    w = sqlite_linking
    callback = await start_and_consent(w, approve=False)
    with pytest.raises(LinkError) as info:
        await w.service.complete_link(state=callback.state, error=callback.error)
    assert info.value.reason == "access_denied"
    assert w.audit.events[-1].reasons == ("access_denied",)


async def test_relink_with_another_google_account_is_refused(sqlite_linking):
    """Relinking an account id while signed in as a different Gmail user changes nothing."""
    w = sqlite_linking
    account = await link_account(w, (Feature.READ,))
    callback = await start_and_consent(w, account_id=account.id, login=w.emu.users[1])
    with pytest.raises(LinkError) as info:
        await w.service.complete_link(state=callback.state, code=callback.code)
    assert info.value.reason == "account_conflict"
    assert w.audit.events[-1].action is Action.ACCOUNT_LINK_FAILED
    assert (await w.accounts.get(account.id)).email == w.emu.users[0]
