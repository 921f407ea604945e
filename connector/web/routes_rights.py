"""The owner's data rights over HTTP: export everything the connector holds about an account.

Decided and recorded before anything leaves: `account.data.exported` (HISTORY_READ, the owner's
own mailbox only) through the authority, then the reads it is made of, each recorded as usual.
Deletion on request is `DELETE /v1/accounts/{id}` (routes_accounts), with its signed receipt.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from audit.vocab import Action
from connector.errors import AccessDenied, AccountNotLinkedError
from connector.policy.recorder import Change
from connector.policy.vocab import Operation
from connector.rights import held
from connector.rights.export import ExportFormat, access_history, export_document, history_csv
from connector.web.context import request_id, services
from connector.web.routes_human import consent_json
from connector.web.routing import USER, QueryParam, RouteSpec, caller_of
from connector.web.validation import account_id, query_choice


async def _history(request: web.Request, account: str) -> list[dict[str, Any]]:
    oversight, actor = services(request).oversight, caller_of(request).actor
    return await access_history(oversight, actor, account, request_id=request_id(request))


async def _access_requests(request: web.Request, account: str) -> list[dict[str, Any]]:
    # What was asked of the owner's mail and what became of it; not the staff's case text, and
    # nothing under legal hold (a held case must not be disclosed to its subject).
    svc = services(request)
    now = svc.clock()
    found = await svc.access_requests.list_access_requests()
    return [
        {"id": r.fact.id, "purpose": r.fact.purpose.value,
         "status": r.fact.effective_status(now).value, "message_ids": sorted(r.fact.message_ids),
         "created_at": r.fact.created_at.isoformat(),
         "expires_at": None if r.fact.expires_at is None else r.fact.expires_at.isoformat()}
        for r in found if r.fact.account_id == account and not r.fact.legal_hold
    ]  # fmt: skip


async def _account(request: web.Request, account: str) -> dict[str, Any]:
    linking = services(request).accounts.linking
    if linking is None:  # accounts preset by the deployment: only the id is held here
        return {"id": account}
    return await linking.status(caller_of(request).sub, account)


async def _permit(request: web.Request, account: str) -> None:
    svc, actor = services(request), caller_of(request).actor
    change = Change(actor, Operation.HISTORY_READ, Action.ACCOUNT_DATA_EXPORTED,
                    account_id=account, request_id=request_id(request))  # fmt: skip
    try:
        await svc.authority.permit(change)  # refused (and recorded) unless the owner asks
    except AccessDenied:
        raise AccountNotLinkedError(account) from None  # no hint that it exists


async def document(request: web.Request, account: str) -> dict[str, Any]:
    """The whole export as JSON (also the web client's "Export my data"), recorded first."""
    await _permit(request, account)
    history = await _history(request, account)
    svc, actor = services(request), caller_of(request).actor
    consents = await svc.consents.list_consents(actor, account, request_id=request_id(request))
    return export_document(
        await _account(request, account), [consent_json(c) for c in consents],
        await _access_requests(request, account), history,
        sync_state=await held.sync_state(svc.engine, account),
        change_feed=await held.feed_summary(svc.engine, account),
    )  # fmt: skip


async def export_account_data(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    fmt = ExportFormat(query_choice(request, "format", tuple(ExportFormat), ExportFormat.JSON))
    name = f"my-data-{account}"
    if fmt is ExportFormat.JSON:
        return web.json_response(await document(request, account), headers={
            "Content-Disposition": f'attachment; filename="{name}.json"'})  # fmt: skip
    await _permit(request, account)
    text = history_csv(await _history(request, account))
    disposition = f'attachment; filename="{name}-access-history.csv"'
    return web.Response(
        text=text, content_type="text/csv", headers={"Content-Disposition": disposition}
    )


_OBJECT_LIST = {"type": "array", "items": {"type": "object"}}
EXPORT_SCHEMA = {
    "type": "object",
    "required": ["type", "account", "consents", "access_requests", "access_history",
                 "sync_state", "change_feed"],
    "properties": {
        "type": {"type": "string"}, "account": {"type": "object"}, "consents": _OBJECT_LIST,
        "access_requests": _OBJECT_LIST, "access_history": _OBJECT_LIST,
        "sync_state": {"type": ["object", "null"]}, "change_feed": {"type": "object"},
    },
}  # fmt: skip

ROUTES = [
    RouteSpec("GET", "/v1/accounts/{account_id}/export", export_account_data,
              "Export everything held about my account (JSON; CSV: the access history)",
              "accounts", USER, response=EXPORT_SCHEMA, errors=(400, 403, 404, 422, 503),
              extra={"response_types": ("application/json", "text/csv")},
              query=(QueryParam("format", {"enum": list(ExportFormat)}, "json or csv"),)),
]  # fmt: skip
