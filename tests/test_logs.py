"""Redaction: tokens and mail content never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from connector.logs import configure_logging, get_logger, redact, request_id_var

CANARY_TOKEN = "ya29.CANARY-access-token-9f8e7d"
CANARY_REFRESH = "1//CANARY-refresh-token-abc"
CANARY_BODY = "CANARY-mail-body: the quarterly numbers are attached"


def test_redact_drops_sensitive_keys_at_any_depth() -> None:
    """Sensitive keys are replaced wherever they are nested."""
    out = redact(None, "info", {"event": "x", "ctx": {"headers": {"Authorization": "b"}, "n": 1}})
    assert out["ctx"] == {"headers": "[redacted]", "n": 1}


def test_redact_scrubs_token_shaped_strings_in_free_text() -> None:
    """A token pasted into a message or an unrelated key is scrubbed by pattern."""
    out = redact(
        None,
        "info",
        {
            "event": f"refresh with {CANARY_TOKEN}",
            "url": f"/x?code=abc&refresh_token={CANARY_REFRESH}",
        },
    )
    assert CANARY_TOKEN not in json.dumps(out)
    assert CANARY_REFRESH not in json.dumps(out)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_canary_token_and_body_never_reach_output(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plant a token and a message body through structlog and stdlib loggers; neither is printed."""
    configure_logging(fmt=fmt, level="DEBUG")  # type: ignore[arg-type]
    token = request_id_var.set("req-123")
    try:
        log = get_logger("canary")
        log.info("token refreshed", access_token=CANARY_TOKEN, refresh_token=CANARY_REFRESH)
        log.info("message fetched", body=CANARY_BODY, payload={"parts": [{"data": CANARY_BODY}]})
        log.warning("upstream said", detail=f"Authorization: Bearer {CANARY_TOKEN}")
        logging.getLogger("aiohttp.access").info("GET /x Authorization: Bearer %s", CANARY_TOKEN)
        with structlog.contextvars.bound_contextvars(snippet=CANARY_BODY):
            log.error("failed")
    finally:
        request_id_var.reset(token)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "token refreshed" in output
    assert "req-123" in output
    assert CANARY_TOKEN not in output
    assert CANARY_REFRESH not in output
    assert "CANARY-mail-body" not in output
