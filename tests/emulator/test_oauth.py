"""Google OAuth emulation: consent page, code + PKCE, refresh, revoke, userinfo, tokeninfo."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import pytest
from google.oauth2.credentials import Credentials

from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, BOB, CAROL, GMAIL

REDIRECT = "http://127.0.0.1:9999/oauth/callback"
READ, SEND = GMAIL + "readonly", GMAIL + "send"


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 48).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    return verifier, challenge.rstrip("=")


def auth_params(emu: Emulator, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": emu.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": f"{READ} {SEND}",
        "state": "st-123",
        "access_type": "offline",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def authorize(http: aiohttp.ClientSession, emu: Emulator, params: dict[str, str]) -> dict:
    async with http.get(emu.auth_uri, params=params, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


async def exchange(http: aiohttp.ClientSession, emu: Emulator, **form: str) -> tuple[int, dict]:
    data = {"client_id": emu.client_id, "client_secret": emu.client_secret, **form}
    async with http.post(emu.token_uri, data=data) as resp:
        return resp.status, await resp.json()


async def exchange_code(
    http: aiohttp.ClientSession,
    emu: Emulator,
    code: str,
    verifier: str,
    redirect_uri: str = REDIRECT,
) -> tuple[int, dict]:
    """The authorization-code grant (with its PKCE verifier) at the token endpoint."""
    return await exchange(
        http,
        emu,
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
    )


async def test_auto_approve_code_exchange_and_gmail_call(emu: Emulator, http) -> None:
    """Auto-approve redirects with code+state; the code buys tokens that call Gmail."""
    verifier, challenge = pkce()
    got = await authorize(http, emu, auth_params(emu, challenge, login_hint=BOB))
    assert got["state"] == "st-123"
    assert got["code"]
    status, tokens = await exchange_code(http, emu, got["code"], verifier)
    assert status == 200
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3599
    assert set(tokens["scope"].split()) == {READ, SEND}
    assert tokens["refresh_token"]
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with http.get(emu.base_url + "gmail/v1/users/me/profile", headers=headers) as resp:
        assert (await resp.json())["emailAddress"] == BOB
    async with http.get(emu.userinfo_uri, headers=headers) as resp:
        info = await resp.json()
        assert info["email"] == BOB
        assert info["sub"].isdigit()
    async with http.get(emu.tokeninfo_uri, params={"access_token": tokens["access_token"]}) as resp:
        assert (await resp.json())["email"] == BOB


async def test_code_replay_and_wrong_verifier(emu: Emulator, http) -> None:
    """A code is single-use; a wrong PKCE verifier is invalid_grant."""
    verifier, challenge = pkce()
    code = (await authorize(http, emu, auth_params(emu, challenge)))["code"]
    status, body = await exchange_code(http, emu, code, "wrong" * 10)
    assert status == 400
    assert body["error"] == "invalid_grant"
    code = (await authorize(http, emu, auth_params(emu, challenge)))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    assert (await exchange(http, emu, **form))[0] == 200
    status, body = await exchange(http, emu, **form)
    assert status == 400
    assert body["error"] == "invalid_grant"


async def test_redirect_uri_must_match_and_be_allowed(emu: Emulator, http) -> None:
    """Unregistered redirect_uri is refused at /auth; a different one at /token fails."""
    verifier, challenge = pkce()
    params = auth_params(emu, challenge, redirect_uri="https://evil.example.com/cb")
    async with http.get(emu.auth_uri, params=params, allow_redirects=False) as resp:
        assert resp.status == 400
        assert "redirect_uri_mismatch" in await resp.text()
    code = (await authorize(http, emu, auth_params(emu, challenge)))["code"]
    status, body = await exchange_code(
        http, emu, code, verifier, redirect_uri="http://127.0.0.1:1/other"
    )
    assert status == 400


async def test_client_and_grant_type_errors(emu: Emulator, http) -> None:
    """Unknown client → 401 invalid_client; wrong secret too; unknown grant_type → 400."""
    async with http.post(
        emu.token_uri, data={"client_id": "x", "grant_type": "refresh_token"}
    ) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"
    async with http.post(
        emu.token_uri,
        data={"client_id": emu.client_id, "client_secret": "no", "grant_type": "refresh_token"},
    ) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"
    status, body = await exchange(http, emu, grant_type="password")
    assert status == 400
    assert body["error"] == "unsupported_grant_type"
    async with http.get(
        emu.auth_uri, params={"client_id": "nope", "redirect_uri": REDIRECT}, allow_redirects=False
    ) as r:
        assert r.status == 401
    _, challenge = pkce()
    params = auth_params(emu, challenge, response_type="token")
    got = await authorize(http, emu, params)
    assert got["error"] == "unsupported_response_type"
    assert got["state"] == "st-123"


async def test_consent_page_partial_grant(emu: Emulator, http) -> None:
    """Without auto-approve the page lists scopes as checkboxes; unticking one narrows it."""
    emu.set_auto_approve(False)
    verifier, challenge = pkce()
    async with http.get(emu.auth_uri, params=auth_params(emu, challenge)) as resp:
        page = await resp.text()
    assert resp.status == 200
    boxes = re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked>', page)
    assert set(boxes) == {READ, SEND}
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    form = aiohttp.FormData({**hidden, "login": ALICE, "action": "approve"})
    form.add_field("scope", READ)  # SEND unticked
    async with http.post(emu.base_url + action.lstrip("/"), data=form, allow_redirects=False) as r:
        assert r.status == 302
        got = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    assert got["scope"] == READ
    assert got["state"] == "st-123"
    status, tokens = await exchange_code(http, emu, got["code"], verifier)
    assert status == 200
    assert tokens["scope"] == READ
    deny = aiohttp.FormData({**hidden, "login": ALICE, "action": "deny"})
    async with http.post(emu.base_url + action.lstrip("/"), data=deny, allow_redirects=False) as r:
        assert "error=access_denied" in r.headers["Location"]


async def test_revoke_kills_refresh(emu: Emulator, http) -> None:
    """Revoking the access token revokes its refresh token: refresh → invalid_grant."""
    tokens = emu.issue_tokens(ALICE, [READ])
    async with http.post(emu.revoke_uri, params={"token": tokens["access_token"]}) as r:
        assert r.status == 200
    status, body = await exchange(
        http, emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert body["error_description"] == "Token has been expired or revoked."
    async with http.post(emu.revoke_uri, data={"token": "garbage"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "invalid_token"


async def test_google_auth_refresh_against_emulator(emu: Emulator) -> None:
    """google-auth Credentials.refresh() works, and fails with RefreshError after revocation."""
    info = emu.authorized_user_info(ALICE, [READ])
    accepted = Credentials.from_authorized_user_info(info)
    assert accepted.refresh_token == info["refresh_token"]
    # google-auth 2.62 replaces token_uri with Google's in from_authorized_user_info, so a
    # client talking to the emulator must pass token_uri explicitly.
    creds = Credentials(
        token=None,
        refresh_token=info["refresh_token"],
        token_uri=info["token_uri"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        scopes=info["scopes"],
    )

    def refresh() -> None:
        import requests

        with requests.Session() as session:
            creds.refresh(google.auth.transport.requests.Request(session))

    await asyncio.to_thread(refresh)
    assert creds.token
    assert creds.valid
    assert creds.granted_scopes == [READ]
    emu.revoke_user(ALICE)
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        await asyncio.to_thread(refresh)


async def test_google_auth_oauthlib_flow(emu: Emulator, http, monkeypatch) -> None:
    """google-auth-oauthlib Flow: authorization_url (PKCE) → emulator redirect → fetch_token."""
    from google_auth_oauthlib.flow import Flow

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator speaks plain HTTP
    flow = Flow.from_client_config(emu.client_config(), scopes=[READ], redirect_uri=REDIRECT)
    url, state = flow.authorization_url(access_type="offline", login_hint=CAROL)
    async with http.get(url, allow_redirects=False) as resp:
        callback = resp.headers["Location"]
    assert f"state={state}" in callback

    def finish() -> Credentials:
        flow.fetch_token(authorization_response=callback)
        flow.oauth2session.close()
        return flow.credentials

    creds = await asyncio.to_thread(finish)
    assert creds.refresh_token
    assert creds.granted_scopes == [READ]
    headers = {"Authorization": f"Bearer {creds.token}"}
    async with http.get(emu.base_url + "gmail/v1/users/me/profile", headers=headers) as resp:
        assert (await resp.json())["emailAddress"] == CAROL
