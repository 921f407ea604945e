"""The OAuth callback's link-state checks pinned: an acceptable callback, one fact changed, one
exact refusal (class, reason code, message), both sides of the expiry instant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.accounts.link_state import PendingLink
from connector.accounts.oauth import LinkService
from connector.errors import LinkError, LinkStateError

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
US = timedelta(microseconds=1)
PENDING = PendingLink(
    user_id="user1", account_id=None, code_verifier="v" * 50, scopes=("openid",),
    redirect_uri="https://app.example/cb", created_at=T0 - timedelta(minutes=1),
    expires_at=T0 + timedelta(minutes=9), browser_hash="b" * 64,
)  # fmt: skip
# The acceptable callback: the pending link, now, the signed-in user, Google's code and
# error, and the browser's link-cookie hash.
BASE: dict[str, Any] = {
    "pending": PENDING, "now": T0, "user_id": "user1", "code": "4/0code", "error": None,
    "browser": "b" * 64,
}  # fmt: skip
UNKNOWN = (LinkStateError, "unknown_state",
           "this link attempt is unknown or was already used; start linking again")
EXPIRED = (LinkStateError, "state_expired", "this link attempt expired; start again")
OTHER_USER = (LinkStateError, "state_user_mismatch", "this link was started by another user")
OTHER_BROWSER = (LinkStateError, "browser_mismatch",
                 "this link was started in another browser, so nothing was linked; start "
                 "linking again from your own account, in this browser")
DENIED = (LinkError, "access_denied", "Google did not authorize the link; nothing was linked")
FAILED = (LinkError, "authorization_error",
          "Google did not authorize the link; nothing was linked")
NO_CODE = (LinkError, "missing_code", "the callback carried no authorization code")


def problem(**change: Any) -> LinkError | None:
    args = {**BASE, **change}
    return LinkService._state_problem(
        args["pending"], args["now"], args["user_id"], args["code"], args["error"],
        browser=args["browser"],
    )  # fmt: skip


CASES: list[tuple[str, dict[str, Any], tuple[type[LinkError], str, str]]] = [
    ("unknown or used state", {"pending": None}, UNKNOWN),
    ("expired at the instant", {"now": PENDING.expires_at}, EXPIRED),
    ("expired long ago", {"now": PENDING.expires_at + timedelta(days=1)}, EXPIRED),
    ("another user", {"user_id": "user2"}, OTHER_USER),
    ("another browser", {"browser": "c" * 64}, OTHER_BROWSER),
    ("no link cookie", {"browser": None}, OTHER_BROWSER),
    ("user refused", {"error": "access_denied"}, DENIED),
    ("google failed", {"error": "server_error"}, FAILED),
    ("no code", {"code": None}, NO_CODE),
    ("empty code", {"code": ""}, NO_CODE),
    # the state is judged before anything Google said
    ("expired, and refused", {"now": PENDING.expires_at, "error": "access_denied"}, EXPIRED),
    ("another user, with an error", {"user_id": "user2", "error": "x"}, OTHER_USER),
    ("another browser, no code", {"browser": None, "code": None}, OTHER_BROWSER),
    ("error and no code", {"error": "access_denied", "code": None}, DENIED),
    ("expired, another user", {"now": PENDING.expires_at, "user_id": "user2"}, EXPIRED),
    ("another user and browser", {"user_id": "user2", "browser": None}, OTHER_USER),
]  # fmt: skip


def test_the_base_callback_is_acceptable() -> None:
    """The base case passes every check."""
    assert problem() is None


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_change_gives_exactly_one_refusal(
    name: str, change: dict[str, Any], expected: tuple[type[LinkError], str, str]
) -> None:
    """Each change is refused with exactly this class, reason code and message."""
    found = problem(**change)
    assert found is not None, name
    assert (type(found), found.reason, str(found)) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"now": PENDING.expires_at - US},
        {"user_id": None},  # a callback before sign-in is matched by the browser instead
        {"pending": replace(PENDING, browser_hash=None), "browser": None},
        {"pending": replace(PENDING, browser_hash=None), "browser": "anything"},
    ],
    ids=["a microsecond before expiry", "no signed-in user", "unbound link", "unbound, cookie"],
)
def test_the_other_side_of_each_check_is_acceptable(change: dict[str, Any]) -> None:
    """Just inside each check the callback still passes."""
    assert problem(**change) is None
