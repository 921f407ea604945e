"""Google OAuth 2.0 endpoints: consent page, token, revoke, userinfo, tokeninfo.

Behaviour follows Google where clients can tell: granular consent (users may untick scopes),
PKCE S256/plain verification, single-use codes, `invalid_grant` after revocation, and the
token response `scope` naming only what was granted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import importlib.resources
import string
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from connector.emulator.errors import oauth_error
from connector.emulator.state import EmulatorState
from connector.emulator.tokens import TokenStore
from connector.logs import get_logger

log = get_logger(__name__)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Google answers with the long form of these shorthand scopes.
SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
SCOPE_LABELS = {
    "https://www.googleapis.com/auth/gmail.readonly": "View your email messages and settings",
    "https://www.googleapis.com/auth/gmail.compose": "Manage drafts and send emails",
    "https://www.googleapis.com/auth/gmail.send": "Send email on your behalf",
    "https://www.googleapis.com/auth/gmail.modify": "Read, compose, and send emails",
    "https://www.googleapis.com/auth/gmail.metadata": "View your email message metadata",
    "https://www.googleapis.com/auth/gmail.labels": "See and edit your email labels",
    "https://mail.google.com/": "Read, compose, send, and permanently delete all your email",
}
_PAGE = string.Template(
    (importlib.resources.files("connector.emulator") / "consent.html").read_text("utf-8")
)


@dataclass
class OAuthConfig:
    client_id: str
    client_secret: str
    allowed_redirect_uris: tuple[str, ...] = ()
    allow_loopback_redirects: bool = True  # Google's installed-app rule: any loopback port
    auto_approve: bool = True


@dataclass
class OAuthService:
    config: OAuthConfig
    state: EmulatorState
    tokens: TokenStore
    grants: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    # -- validation ----------------------------------------------------------------------
    def redirect_allowed(self, uri: str) -> bool:
        if uri in self.config.allowed_redirect_uris:
            return True
        parts = urlsplit(uri)
        return (
            self.config.allow_loopback_redirects
            and parts.scheme == "http"
            and (parts.hostname or "") in LOOPBACK_HOSTS
        )

    def _error_page(self, status: int, error: str, detail: str) -> web.Response:
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
            f"<h1>Error {status}: {html.escape(error)}</h1><p>{html.escape(detail)}</p>"
            "</body></html>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    def _validate(self, params: dict[str, str]) -> web.Response | None:
        if params.get("client_id") != self.config.client_id:
            return self._error_page(401, "invalid_client", "The OAuth client was not found.")
        redirect = params.get("redirect_uri", "")
        if not redirect or not self.redirect_allowed(redirect):
            return self._error_page(
                400, "redirect_uri_mismatch", "The redirect URI is not registered for this client."
            )
        return None

    def _redirect_error(self, params: dict[str, str], error: str) -> web.Response:
        """Send the browser back to the client with `error` (raises aiohttp's HTTPFound)."""
        query = {"error": error}
        if "state" in params:
            query["state"] = params["state"]
        raise web.HTTPFound(_with_query(params["redirect_uri"], query))

    def _check_request(self, params: dict[str, str]) -> web.Response | None:
        problem = self._validate(params)
        if problem is not None:
            return problem
        if params.get("response_type") != "code":
            return self._redirect_error(params, "unsupported_response_type")
        if not params.get("scope", "").split():
            return self._error_page(400, "invalid_request", "Missing required parameter: scope")
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in (
            "S256",
            "plain",
        ):
            return self._error_page(
                400, "invalid_request", "Invalid code_challenge_method: use S256"
            )
        return None

    def _issue_code(self, params: dict[str, str], email: str, scopes: list[str]) -> web.Response:
        granted = [SCOPE_ALIASES.get(s, s) for s in scopes]
        key = (self.config.client_id, email)
        if params.get("include_granted_scopes") == "true":
            granted = list(dict.fromkeys([*sorted(self.grants.get(key, set())), *granted]))
        self.grants.setdefault(key, set()).update(granted)
        code = self.tokens.new_code(
            client_id=self.config.client_id,
            email=email,
            redirect_uri=params["redirect_uri"],
            scopes=tuple(granted),
            offline=params.get("access_type") == "offline",
            code_challenge=params.get("code_challenge") or None,
            code_challenge_method=(
                params.get("code_challenge_method", "plain")
                if params.get("code_challenge")
                else None
            ),
        )
        query = {"code": code.code, "scope": " ".join(granted)}
        if "state" in params:
            query["state"] = params["state"]
        query.update({"authuser": "0", "prompt": "consent"})
        raise web.HTTPFound(_with_query(params["redirect_uri"], query))

    def _user_for(self, hint: str | None) -> str | None:
        users = self.state.users
        if hint:
            return hint.lower() if hint.lower() in users else None
        return users[0] if users else None

    # -- endpoints -----------------------------------------------------------------------
    async def authorize(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        problem = self._check_request(params)
        if problem is not None:
            return problem
        scopes = params["scope"].split()
        if self.config.auto_approve:
            email = self._user_for(params.get("login_hint"))
            if email is None:
                return self._redirect_error(params, "access_denied")
            return self._issue_code(params, email, scopes)
        return self._consent_page(request, params, scopes)

    def _consent_page(
        self, request: web.Request, params: dict[str, str], scopes: list[str]
    ) -> web.Response:
        hidden = "\n".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k != "scope"
        )
        hint = (params.get("login_hint") or "").lower()
        accounts = "".join(
            f'<option value="{html.escape(u)}"{" selected" if u == hint else ""}>'
            f"{html.escape(u)}</option>"
            for u in self.state.users
        )
        boxes = "\n".join(
            f'<p><label><input type="checkbox" name="scope" value="{html.escape(s)}" checked> '
            f"{html.escape(SCOPE_LABELS.get(s, s))} <code>{html.escape(s)}</code></label></p>"
            for s in scopes
        )
        requested = html.escape(" ".join(scopes))
        hidden += f'\n<input type="hidden" name="requested_scope" value="{requested}">'
        body = _PAGE.substitute(
            client_id=html.escape(params["client_id"]),
            action=html.escape(request.path.rstrip("/") + "/approve"),
            hidden=hidden,
            accounts=accounts,
            scopes=boxes,
        )
        return web.Response(text=body, content_type="text/html")

    async def approve(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items() if k not in ("scope", "login", "action")}
        params["scope"] = params.pop("requested_scope", "")
        problem = self._check_request(params)
        if problem is not None:
            return problem
        if form.get("action") != "approve":
            return self._redirect_error(params, "access_denied")
        requested = set(params["scope"].split())
        # Only scopes that were requested can be granted, whatever the form says.
        chosen = [str(s) for s in form.getall("scope", []) if str(s) in requested]
        if not chosen:
            return self._redirect_error(params, "access_denied")
        email = self._user_for(str(form.get("login") or "") or None)
        if email is None:
            return self._redirect_error(params, "access_denied")
        return self._issue_code(params, email, chosen)

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> web.Response | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:]).decode()
            except ValueError:
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
        if client_id != self.config.client_id:
            return web.json_response(
                oauth_error("invalid_client", "The OAuth client was not found."), status=401
            )
        if not hmac.compare_digest(secret or "", self.config.client_secret):
            return web.json_response(oauth_error("invalid_client", "Unauthorized"), status=401)
        return None

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        problem = self._client_ok(request, form)
        if problem is not None:
            return problem
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        return web.json_response(
            oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant or ''}"), status=400
        )

    def _code_grant(self, form: dict[str, str]) -> web.Response:
        code = self.tokens.codes.pop(form.get("code", ""), None)  # single use
        if code is None or code.expires_at < time.time():
            return _invalid_grant("Malformed auth code." if code is None else "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            return web.json_response(
                oauth_error("redirect_uri_mismatch", "Bad Request"), status=400
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return _invalid_grant("Missing code verifier.")
            if code.code_challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
                expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                expected = verifier
            if not hmac.compare_digest(expected, code.code_challenge):
                return _invalid_grant("Invalid code verifier.")
        refresh = (
            self.tokens.new_refresh(code.client_id, code.email, code.scopes)
            if code.offline
            else None
        )
        access = self.tokens.new_access(
            code.client_id, code.email, code.scopes, refresh.token if refresh else None
        )
        body: dict[str, Any] = {
            "access_token": access.token,
            "expires_in": self.tokens.lifetime,
            "scope": " ".join(code.scopes),
            "token_type": "Bearer",
        }
        if refresh is not None:
            body["refresh_token"] = refresh.token
        log.info("emulator_token_issued", grant="authorization_code", scopes=len(code.scopes))
        return web.json_response(body)

    def _refresh_grant(self, form: dict[str, str]) -> web.Response:
        refresh = self.tokens.refresh_tokens.get(form.get("refresh_token", ""))
        if refresh is None or refresh.revoked or refresh.client_id != self.config.client_id:
            return _invalid_grant("Token has been expired or revoked.")
        scopes = refresh.scopes
        if form.get("scope"):
            wanted = tuple(SCOPE_ALIASES.get(s, s) for s in form["scope"].split())
            if not set(wanted) <= set(refresh.scopes):
                return web.json_response(
                    oauth_error("invalid_scope", "Some requested scopes were not granted."),
                    status=400,
                )
            scopes = wanted
        access = self.tokens.new_access(refresh.client_id, refresh.email, scopes, refresh.token)
        return web.json_response(
            {
                "access_token": access.token,
                "expires_in": self.tokens.lifetime,
                "scope": " ".join(scopes),
                "token_type": "Bearer",
            }
        )

    async def revoke(self, request: web.Request) -> web.Response:
        token = request.query.get("token")
        if token is None and request.can_read_body:
            token = str((await request.post()).get("token") or "")
        if not token or not self.tokens.revoke(token):
            return web.json_response(
                oauth_error("invalid_token", "Token expired or revoked"), status=400
            )
        return web.json_response({})

    def _bearer(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query.get("access_token", "")

    async def userinfo(self, request: web.Request) -> web.Response:
        access = self.tokens.lookup_access(self._bearer(request))
        if access is None:
            return web.json_response(
                {"error": "invalid_request", "error_description": "Invalid Credentials"},
                status=401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                    'error="invalid_token"'
                },
            )
        return web.json_response(
            {"sub": _sub(access.email), "email": access.email, "email_verified": True}
        )

    async def tokeninfo(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if not token and request.can_read_body:
            token = str((await request.post()).get("access_token") or "")
        access = self.tokens.lookup_access(token)
        if access is None:
            return web.json_response(
                {"error": "invalid_token", "error_description": "Invalid Value"}, status=400
            )
        remaining = int(access.expires_at - time.time())
        return web.json_response(
            {
                "azp": access.client_id,
                "aud": access.client_id,
                "sub": _sub(access.email),
                "scope": " ".join(sorted(access.scopes)),
                "exp": str(int(access.expires_at)),
                "expires_in": str(remaining),
                "email": access.email,
                "email_verified": "true",
                "access_type": "offline" if access.refresh_token else "online",
            }
        )

    def add_routes(self, app: web.Application) -> None:
        for path in ("/o/oauth2/v2/auth", "/o/oauth2/auth"):
            app.router.add_get(path, self.authorize)
            app.router.add_post(path + "/approve", self.approve)
        app.router.add_post("/token", self.token)
        app.router.add_post("/o/oauth2/token", self.token)
        for path in ("/revoke", "/o/oauth2/revoke"):
            app.router.add_post(path, self.revoke)
            app.router.add_get(path, self.revoke)
        for path in ("/v1/userinfo", "/oauth2/v3/userinfo", "/oauth2/v2/userinfo"):
            app.router.add_get(path, self.userinfo)
        app.router.add_route("*", "/tokeninfo", self.tokeninfo)
        app.router.add_route("*", "/oauth2/v3/tokeninfo", self.tokeninfo)


def _sub(email: str) -> str:
    # Stable numeric-looking subject id, as Google's are 21 decimal digits.
    return str(int.from_bytes(hashlib.sha256(email.encode()).digest()[:8], "big")).zfill(21)


def _invalid_grant(description: str) -> web.Response:
    return web.json_response(oauth_error("invalid_grant", description), status=400)


def _with_query(uri: str, query: dict[str, str]) -> str:
    separator = "&" if urlsplit(uri).query else "?"
    return uri + separator + urlencode(query)
