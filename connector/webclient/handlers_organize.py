"""Organizing from the inbox and the thread view: archive, read/unread, star, spam, a label,
trash, for several messages at once. The API's own plans (`plans_organize`) run through the API's
own feature-checking runner, so a mailbox linked without the `organize` feature gets the same
recorded 403 `scope-not-granted` as an API caller."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from aiohttp import web

from connector.accounts.scopes import Feature
from connector.policy import plans
from connector.policy import plans_organize as organize
from connector.web.routes_organize import _ACTIONS, LabelAction, _run
from connector.web.validation import GMAIL_ID, LABEL_ID, account_id, check_id
from connector.webclient.pages import ACC, Notice, form_of, form_text, page, redirect

# Offered in the forms, in this order; each one of the API's label actions.
OFFERED = {LabelAction.ARCHIVE: "Archive", LabelAction.READ: "Mark read",
           LabelAction.UNREAD: "Mark unread", LabelAction.STAR: "Star",
           LabelAction.UNSTAR: "Unstar", LabelAction.SPAM: "Report spam"}  # fmt: skip
# Where to return: the inbox view (with its search) or the thread the action came from.
_BACK = re.compile(
    r"^/app/accounts/[A-Za-z0-9_-]{1,128}/(inbox|threads/[0-9a-f]{1,16})(\?[A-Za-z0-9_=&%.:+~-]{0,900})?$"
)


def _with_notice(back: str, notice: Notice) -> str:
    path, _, query = back.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("notice=")]
    return f"{path}?{'&'.join([*kept, f'notice={notice}'])}"


async def user_labels(request: web.Request, account: str) -> list[dict[str, str]]:
    """The mailbox's own labels (for 'Label as'), through the gate like the API's list."""
    found = await _run(request, Feature.READ, plans.labels(account))
    return sorted(
        ({"id": str(lb["id"]), "name": str(lb.get("name", lb["id"]))}
         for lb in found.get("labels", []) if lb.get("type") == "user"),
        key=lambda lb: lb["name"].lower(),
    )  # fmt: skip


@page("POST", f"{ACC}/messages/batch-modify", change=True)
async def apply(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    ids = [
        check_id(str(m), GMAIL_ID, "message id") for m in form_of(request).getall("message_id", [])
    ]
    action = form_text(request, "action", 32)
    back = form_text(request, "back", 200)
    back = back if _BACK.fullmatch(back) else f"/app/accounts/{account}/inbox"
    if not ids:
        return redirect(_with_notice(back, Notice.NOTHING_SELECTED))
    if action == "grant":  # the consent form, with these messages chosen
        query = urlencode([("message_id", m) for m in ids])
        return redirect(f"/app/accounts/{account}/consents?{query}")
    if action == "trash":
        for message in ids:
            await _run(request, Feature.ORGANIZE, organize.message_trash(account, message))
        return redirect(f"/app/accounts/{account}/inbox?notice={Notice.ORGANIZED}")
    if action == "label":
        add: tuple[str, ...] = (check_id(form_text(request, "label_id", 64), LABEL_ID, "label"),)
        remove: tuple[str, ...] = ()
    else:
        add, remove = _ACTIONS[LabelAction(action)] if action in set(LabelAction) else ((), ())
    if not add and not remove:
        return redirect(_with_notice(back, Notice.NOTHING_SELECTED))
    for plan in organize.batch_modify(account, ids, add, remove):
        await _run(request, Feature.ORGANIZE, plan)
    return redirect(_with_notice(back, Notice.ORGANIZED))
