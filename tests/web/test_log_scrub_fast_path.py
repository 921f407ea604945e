"""The log scrubber's fast path (`_SUSPECT`) leaves a string alone only when the full scrub
would leave it unchanged too: no token, sensitive parameter or address slips through it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connector import logs

# Pieces of everything the patterns look for, mixed with ordinary text.
_PIECES = st.sampled_from(
    ["Bearer ", "bEaReR\t", "ya29.", "1//", "eyJ", "abc.", "def", "=", "?", "&", ";", "q", "code",
     "access_token", "CLIENT_SECRET", "@", "%40", "a", "Z", "0", ".", "-", "_", " ", "/", "é",
     "x.example", "{account_id}"]
)  # fmt: skip


def _full_scrub(value: str) -> str:
    for pattern in logs._TOKEN_PATTERNS:
        value = pattern.sub(logs.REDACTED, value)
    value = logs._SENSITIVE_PARAM.sub(lambda m: m.group(1) + logs.REDACTED, value)
    return logs._ADDRESS.sub(logs.REDACTED, value)


@given(st.lists(_PIECES, max_size=12).map("".join) | st.text(max_size=40))
def test_fast_path_agrees_with_the_full_scrub(value: str) -> None:
    assert logs._scrub_string(value) == _full_scrub(value)


def test_plain_values_pass_and_secrets_do_not() -> None:
    route = "/v1/accounts/{account_id}/messages/{message_id}"
    assert logs._scrub_string(route) == route
    assert logs._scrub(200) == 200
    assert logs._scrub(None) is None
    for secret in ("Bearer abc.def", "ya29.tok", "1//refresh", "eyJa.eyJb.c", "a@b.example",
                   "a%40b.example", "/x?q=search+text", "code=xyz"):  # fmt: skip
        assert logs._scrub_string(secret) != secret, secret
