"""The OpenAPI document lists every status code and content type the service answers, for the
answers the issue named (404 on malformed paths, 422 on conflicting bases, text/csv exports,
431 header limits) and the path-parameter forms the handlers check."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import ALICE, Stack

RID = "0" * 32


def _documented(doc: dict[str, Any], method: str, template: str, status: int) -> set[str]:
    """The content types the document gives `status` of this operation (empty: not listed)."""
    response = doc["paths"][template][method.lower()]["responses"].get(str(status), {})
    return set(response.get("content", {}))


CASES = [
    ("GET", "/v1/accounts/{account_id}/consents", "/v1/accounts/a%2Fb/consents", "alice",
     None, None),
    ("GET", "/v1/accounts/{account_id}/access-history",
     "/v1/accounts/a%2Fb/access-history", "alice", None, None),
    ("GET", "/v1/accounts/{account_id}/drafts/{draft_id}",
     f"/v1/accounts/{ALICE}/drafts/r%2F1", "alice", None, None),
    ("GET", "/v1/support/accounts/{account_id}/messages/{message_id}",
     f"/v1/support/accounts/{ALICE}/messages/abc", "op1",
     {"consent_id": RID, "access_request_id": RID}, None),
    ("GET", "/v1/audit/export", "/v1/audit/export", "rev", {"format": "csv"}, None),
    ("GET", "/v1/audit/export", "/v1/audit/export", "rev", {"format": "ocsf"}, None),
    ("GET", "/v1/accounts", "/v1/accounts", "alice", None, {"X-Big": "b" * 9000}),
    ("GET", "/healthz", "/healthz", None, None, {"X-Big": "b" * 9000}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "template", "path", "who", "params", "headers"), CASES)
async def test_answers_are_documented(
    stack: Stack, method: str, template: str, path: str, who: str | None,
    params: dict[str, str] | None, headers: dict[str, str] | None,
) -> None:  # fmt: skip
    """The status and content type of each of these answers is listed for its operation."""
    status_code, doc, _ = await stack.call("GET", "/openapi.json", None)
    assert status_code == 200
    status, _, resp = await stack.call(method, path, who, params=params, headers=headers)
    assert status < 500
    assert resp.content_type in _documented(doc, method, template, status), (status, resp)


async def test_path_parameters_carry_the_form_the_handler_checks(stack: Stack) -> None:
    """Every path parameter of every operation has a schema with the pattern it is checked by."""
    _, doc, _ = await stack.call("GET", "/openapi.json", None)
    for ops in doc["paths"].values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert param["schema"]["pattern"].startswith("^"), param
