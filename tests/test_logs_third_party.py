"""Third-party loggers at DEBUG go through our redaction: search text in a URL's query string and
addresses (plain or URL-encoded) never print, and loggers that print row values are capped."""

from __future__ import annotations

import logging

import pytest

from connector.logs import REDACTED, configure_logging

QUERY_URL = (
    "https://gmail.googleapis.com/gmail/v1/users/me/messages"
    "?maxResults=2&q=from%3Abob%40example.com+CANARY-search-77&alt=json"
)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_googleapiclient_url_is_redacted_at_debug(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """googleapiclient's "URL being requested" line keeps the path, loses the search text."""
    configure_logging(fmt=fmt, level="DEBUG")  # type: ignore[arg-type]
    logging.getLogger("googleapiclient.discovery").debug("URL being requested: GET %s", QUERY_URL)
    output = capsys.readouterr().err
    assert "URL being requested" in output
    assert "maxResults=2" in output  # not a search: kept for diagnosis
    assert f"q={REDACTED}" in output
    assert "CANARY-search-77" not in output
    assert "bob" not in output


def test_addresses_in_free_text_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """An address in any library's message, plain or %40-encoded, is replaced."""
    configure_logging(fmt="json", level="DEBUG")
    logging.getLogger("some.library").info("delivered to carol@example.org, dave%40example.net")
    output = capsys.readouterr().err
    assert "delivered to" in output
    assert "carol" not in output
    assert "dave" not in output


def test_loggers_printing_row_values_are_capped(capsys: pytest.CaptureFixture[str]) -> None:
    """aiosqlite's DEBUG lines repr each statement with its parameters: not printed at DEBUG."""
    configure_logging(fmt="json", level="DEBUG")
    logging.getLogger("aiosqlite").debug("executing %s", "INSERT ... ('CANARY-row-value')")
    logging.getLogger("aiosqlite").warning("aiosqlite warning still shows")
    output = capsys.readouterr().err
    assert "CANARY-row-value" not in output
    assert "aiosqlite warning still shows" in output
