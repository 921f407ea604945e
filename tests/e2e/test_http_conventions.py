"""HTTP conventions across the API: Allow on 405, Location on 201, strict query parameters,
Idempotency-Key on every write that sends or creates, one pagination style, and an OpenAPI
document with servers, plain operation ids and typed responses."""

from __future__ import annotations

import re

from tests.e2e.conftest import ALICE, PROBLEM, Stack, first_message

VERBS = ("get", "list", "create", "update", "delete", "send", "post", "put", "read")
METHODS = ("get", "post", "put", "delete", "patch")


async def test_405_names_the_allowed_methods(stack: Stack) -> None:
    """A wrong method answers 405 problem+json with an Allow header listing the route's methods."""
    status, body, resp = await stack.call("PATCH", f"/v1/accounts/{ALICE}/drafts")
    assert status == 405
    assert resp.content_type == PROBLEM
    assert body["type"].endswith("/method-not-allowed")
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_the_document_names_servers_and_plain_operation_ids(stack: Stack) -> None:
    """`servers` is set; operation ids are unique, snake_case and never double a verb."""
    _, doc, _ = await stack.call("GET", "/openapi.json", None)
    assert doc["servers"] == [{"url": "/"}]  # no public base URL in the e2e settings
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for op_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", op_id), op_id
        method, _, rest = op_id.partition("_")  # the old ids: get_get_message, post_send_draft
        assert not (method in METHODS and rest.split("_")[0] in VERBS), op_id


async def test_201_answers_carry_location(stack: Stack) -> None:
    """A created draft, consent and access request each answer 201 with Location naming them."""
    status, draft, resp = await stack.call(
        "POST", f"/v1/accounts/{ALICE}/drafts", json={"to": ["b@example.org"], "subject": "x"}
    )
    assert status == 201
    assert resp.headers["Location"] == f"/v1/accounts/{ALICE}/drafts/{draft['id']}"
    status, again, _ = await stack.call("GET", resp.headers["Location"])
    assert (status, again["id"]) == (200, draft["id"])
    message = await first_message(stack)
    status, consent, resp = await stack.call(
        "POST", f"/v1/accounts/{ALICE}/consents",
        json={"message_ids": [message["id"]], "grantee_id": "op1"},
    )  # fmt: skip
    assert status == 201
    assert resp.headers["Location"] == f"/v1/consents/{consent['id']}"
    status, request, resp = await stack.call(
        "POST", "/v1/access-requests", "op1",
        json={"account_id": ALICE, "purpose": "security", "case_reference": "CASE-1",
              "reason": "suspected compromise", "message_ids": [message["id"]]},
    )  # fmt: skip
    assert status == 201
    assert resp.headers["Location"] == f"/v1/access-requests/{request['id']}"
    status, fetched, _ = await stack.call("GET", resp.headers["Location"], "op2")
    assert (status, fetched["id"]) == (200, request["id"])
    _, doc, _ = await stack.call("GET", "/openapi.json", None)
    for ops in doc["paths"].values():
        for op in ops.values():
            if "201" in op["responses"]:
                assert "Location" in op["responses"]["201"]["headers"]


async def test_unknown_query_parameters_are_refused_like_unknown_fields(stack: Stack) -> None:
    """A query parameter the operation does not declare is 422 validation-failed, naming it."""
    message = await first_message(stack)
    for who, path in (
        ("alice", f"/v1/accounts/{ALICE}/messages"),
        ("alice", f"/v1/accounts/{ALICE}/messages/{message['id']}"),
        ("op1", "/v1/access-requests"),
        ("rev", "/v1/audit/events"),
        (None, "/healthz"),
    ):
        status, body, resp = await stack.call(
            "GET", path, who, params={"surprise": "1", "max_result": "5"}
        )
        assert status == 422, (path, body)
        assert resp.content_type == PROBLEM
        fields = {e["field"]: e["problem"] for e in body["errors"]}
        assert fields.keys() >= {"surprise"}, body
        assert fields["surprise"] == "unknown query parameter"


async def test_the_oauth_callback_tolerates_what_google_adds(stack: Stack) -> None:
    """Google's redirect carries parameters of its own (iss, scope, authuser): not refused."""
    status, body, _ = await stack.call(
        "GET", "/v1/oauth/callback", None,
        params={"state": "s" * 20, "code": "c", "iss": "https://accounts.google.com",
                "scope": "openid", "authuser": "0"},
    )  # fmt: skip
    assert status != 422 or "unknown query parameter" not in str(body)


async def _walk(stack: Stack, path: str, who: str, key: str, **params: str) -> list[str]:
    """Every item id of a list, one item per page, following next_page_token to its end."""
    seen: list[str] = []
    query: dict[str, str] = {"max_results": "1", **params}
    for _ in range(200):
        status, page, _ = await stack.call("GET", path, who, params=query)
        assert status == 200, (path, page)
        assert set(page) >= {key, "next_page_token"}, page
        assert len(page[key]) <= 1
        seen += [str(item.get("id", item.get("seq"))) for item in page[key]]
        if page["next_page_token"] is None:
            return seen
        query = {"max_results": "1", **params, "page_token": page["next_page_token"]}
    raise AssertionError(f"{path} never reached its last page")


async def test_every_list_pages_the_same_way(stack: Stack) -> None:
    """page_token + max_results in, items + next_page_token out (null at the end), every list;
    walking one item per page visits each item once."""
    message = await first_message(stack)
    for subject in ("one", "two"):
        await stack.call("POST", f"/v1/accounts/{ALICE}/drafts",
                         json={"to": ["b@example.org"], "subject": subject})  # fmt: skip
        await stack.call("POST", f"/v1/accounts/{ALICE}/consents",
                         json={"message_ids": [message["id"]], "grantee_id": "op1"})  # fmt: skip
        await stack.call("POST", "/v1/access-requests", "op1", json={
            "account_id": ALICE, "purpose": "security", "case_reference": f"C-{subject}",
            "reason": "r", "message_ids": [message["id"]]})  # fmt: skip
    lists = [
        (f"/v1/accounts/{ALICE}/messages", "alice", "messages", {"format": "ids"}),
        (f"/v1/accounts/{ALICE}/drafts", "alice", "drafts", {}),
        (f"/v1/accounts/{ALICE}/consents", "alice", "consents", {}),
        ("/v1/access-requests", "op2", "access_requests", {}),
        (f"/v1/accounts/{ALICE}/access-history", "alice", "events", {}),
        ("/v1/audit/events", "rev", "events", {"action": "consent.granted"}),
    ]
    for path, who, key, params in lists:
        ids = await _walk(stack, path, who, key, **params)
        assert len(ids) >= 2, path
        assert len(ids) == len(set(ids)), path
    old = [("/v1/audit/events", "rev", {"limit": "5"}), ("/v1/audit/events", "rev",
           {"after_seq": "1"}), (f"/v1/accounts/{ALICE}/access-history", "alice",
           {"before_seq": "9"})]  # fmt: skip
    for path, who, params in old:
        status, body, _ = await stack.call("GET", path, who, params=params)
        assert status == 422, body  # the old cursor parameters are unknown now


TYPED_MODULES = {f"connector.web.routes_{m}" for m in ("inbox", "human", "audit", "accounts",
                                                        "health")}  # fmt: skip


def _typed(schema: dict[str, object], components: dict[str, object]) -> bool:
    """A schema that names its fields (directly or through a component), not a bare object."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _typed(components[ref.rsplit("/", 1)[1]], components)  # type: ignore[arg-type]
    return schema.get("type") != "object" or bool(schema.get("properties"))


async def test_json_answers_have_typed_schemas(stack: Stack) -> None:
    """Every JSON success answer of these routes has a schema naming its fields; Gmail
    resources are components (Message, Thread, Draft, SentMessage) shared by reference."""
    from connector.web.app import all_routes

    _, doc, _ = await stack.call("GET", "/openapi.json", None)
    components = doc["components"]["schemas"]
    assert {"Message", "Thread", "Draft", "SentMessage", "Account"} <= set(components)
    checked = 0
    for spec in all_routes():
        if spec.handler.__module__ not in TYPED_MODULES:
            continue
        op = doc["paths"][spec.path][spec.method.lower()]
        content = op["responses"][str(spec.status)].get("content", {})
        if "application/json" in content:
            checked += 1
            assert _typed(content["application/json"]["schema"], components), spec.path
    assert checked >= 25
    assert "content" not in doc["paths"]["/v1/link/start"]["post"]["responses"]["302"]
