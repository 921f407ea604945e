"""The Limited Use disclosure shown right before the user is sent to Google's consent page.

Google requires an affirmative statement that use of data from Google Workspace APIs adheres to
the Google API Services User Data Policy, including the Limited Use requirements, shown in the
app before the consent request, with an affirmative action to continue. The page lists each
scope that will be requested and why. Nothing is stored until the user presses Continue.
Google's verification also checks that the page names the app and links its privacy policy
(CONNECTOR_APP_NAME, CONNECTOR_PRIVACY_POLICY_URL).

`render_link_outcome` is the plain page the OAuth callback ends on when the deployment set no
return URL (CONNECTOR_LINK_RETURN_URLS): what happened, in words, and what to do next.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from connector.accounts.scopes import SCOPE_PURPOSES

POLICY_URL = "https://developers.google.com/terms/api-services-user-data-policy"
CONFIRM_FIELD = "disclosure_accepted"  # the form field the confirm button submits


def limited_use_statement(app_name: str) -> str:
    return (
        f"{app_name}'s use and transfer of information received from Google APIs will adhere to "
        "the Google API Services User Data Policy, including the Limited Use requirements."
    )


def render_disclosure(
    *,
    app_name: str,
    scopes: Iterable[str],
    confirm_action: str,
    hidden_fields: Mapping[str, str] | None = None,
    cancel_url: str | None = None,
    privacy_policy_url: str = "",
) -> str:
    """The disclosure page; its Continue button POSTs `disclosure_accepted=yes` to
    `confirm_action` (with `hidden_fields`), and only then does linking start."""
    esc = html.escape
    items = "\n".join(
        f"<li><code>{esc(s)}</code>: {esc(SCOPE_PURPOSES.get(s, 'Needed for the feature.'))}</li>"
        for s in scopes
    )
    hidden = "\n".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
        for k, v in (hidden_fields or {}).items()
    )
    cancel = f'<a href="{esc(cancel_url)}">Cancel</a>' if cancel_url else ""
    privacy = (
        f'<p id="privacy">Read <a href="{esc(privacy_policy_url)}">{esc(app_name)}\'s privacy '
        "policy</a> for how it handles your data.</p>"
        if privacy_policy_url
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Link your Gmail account - {esc(app_name)}</title></head>
<body>
<h1>Link your Gmail account to {esc(app_name)}</h1>
<p id="limited-use">{esc(limited_use_statement(app_name))}
See the <a href="{POLICY_URL}">Google API Services User Data Policy</a>.</p>
<p>Next, Google will ask you to allow the following. You may untick any of them; the matching
feature stays off until you grant it.</p>
<ul id="scopes">
{items}
</ul>
<p>{esc(app_name)} does not use your Gmail data for advertising, does not sell it, does not use
it to train AI models, and people read your mail only with your agreement for specific messages,
for security, or to comply with the law.</p>
{privacy}
<form method="post" action="{esc(confirm_action)}">
{hidden}
<button type="submit" name="{CONFIRM_FIELD}" value="yes">Continue to Google</button>
{cancel}
</form>
</body>
</html>
"""


def render_link_outcome(*, app_name: str, linked: bool, detail: str, reason: str | None) -> str:
    """The callback's page when no return URL is set: linked, or why not (with its code)."""
    esc = html.escape
    if linked:
        title = "Your Gmail account is linked"
        body = f"{esc(app_name)} can now use the features you allowed. You can close this window."
    else:
        title = "Your Gmail account was not linked"
        body = f"{esc(detail)} <small>(code: <code>{esc(reason or 'unknown')}</code>)</small>"
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} - {esc(app_name)}</title></head>
<body>
<h1>{title}</h1>
<p>{body}</p>
</body>
</html>
"""
