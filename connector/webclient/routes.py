"""Mounting the web client on the service's app: templates, static files, headers, routes.

These routes are pages, not API operations, so they are not in the OpenAPI document; each page
names the API route it mirrors (`pages.page`), and that route's policy entry decides it.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from connector.web.keys import SETTINGS, VERIFIER
from connector.webclient import handlers_account as acc
from connector.webclient import handlers_live as live
from connector.webclient import handlers_mail as mail
from connector.webclient import handlers_organize as organize
from connector.webclient import handlers_staff as staff
from connector.webclient.pages import SESSIONS
from connector.webclient.security import PREFIX, security_headers
from connector.webclient.session import Sessions

STATIC = Path(__file__).parent / "static"
_A = f"{PREFIX}/accounts/{{account_id}}"


def setup_webclient(app: web.Application) -> None:
    """Call after the app's settings and token verifier are in place."""
    settings = app[SETTINGS]
    app[SESSIONS] = Sessions(settings, app[VERIFIER])
    aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("connector.webclient", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )  # fmt: skip
    app.on_response_prepare.append(security_headers(settings))
    r = app.router
    r.add_static(f"{PREFIX}/static", STATIC, show_index=False, follow_symlinks=False)
    r.add_get(PREFIX, acc.home)
    r.add_get(f"{PREFIX}/", acc.home)
    r.add_get(f"{PREFIX}/signin", acc.sign_in)
    r.add_post(f"{PREFIX}/signin", acc.sign_in)
    r.add_post(f"{PREFIX}/signout", acc.sign_out)
    r.add_get(f"{PREFIX}/accounts", acc.accounts)
    r.add_post(f"{PREFIX}/link", acc.link)
    r.add_post(f"{_A}/features", acc.features)
    r.add_get(f"{_A}/unlink", acc.unlink_confirm)
    r.add_post(f"{_A}/unlink", acc.unlink)
    r.add_get(f"{_A}/consents", acc.consents)
    r.add_post(f"{_A}/consents", acc.grant)
    r.add_post(f"{PREFIX}/consents/{{consent_id}}/revoke", acc.revoke)
    r.add_get(f"{_A}/history", acc.history)
    r.add_get(f"{_A}/export", acc.export)
    r.add_get(f"{_A}/inbox", mail.inbox)
    r.add_get(f"{_A}/events", live.events)  # the change feed as SSE, for EventSource
    r.add_get(f"{_A}/threads/{{thread_id}}", mail.thread)
    r.add_get(f"{_A}/messages/{{message_id}}/body", mail.body)
    r.add_get(f"{_A}/messages/{{message_id}}/attachments/{{attachment_id}}", mail.attachment)
    r.add_get(f"{_A}/compose", mail.compose)
    r.add_post(f"{_A}/send", mail.send)
    r.add_post(f"{_A}/drafts/autosave", mail.autosave)
    r.add_post(f"{_A}/organize", organize.apply)
    r.add_get(f"{PREFIX}/operator", staff.operator)
    r.add_post(f"{PREFIX}/operator/requests", staff.create_request)
    r.add_post(f"{PREFIX}/operator/requests/{{request_id}}/approve", staff.approve)
    r.add_post(f"{PREFIX}/operator/requests/{{request_id}}/dismiss", staff.dismiss)
    r.add_get(f"{PREFIX}/operator/read", staff.support_read)
    r.add_get(f"{PREFIX}/operator/aggregates", staff.aggregates)
    r.add_get(f"{PREFIX}/reviewer", staff.reviewer)
    r.add_post(f"{PREFIX}/reviewer/verify", staff.verify)
    r.add_get(f"{PREFIX}/reviewer/export", staff.export)
    r.add_post(f"{PREFIX}/reviewer/evidence", staff.evidence)
