"""Canary: a token, a message body and a search query planted through the real stack never reach
a log line (at DEBUG, third-party loggers included) or a database column in plain text, and after
unlink no trace of either (or of the consent) is left."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.vault import Vault
from connector.db import create_engine
from connector.demo import running_demo
from connector.logs import configure_logging

CANARY_SUBJECT = "CANARY-subject-7d1f"
CANARY_BODY = "CANARY-body-4be2 the merger closes on friday"
CANARY_QUERY = "from:bob@example.com CANARY-query-91c3"


def _sqlite_dump(path: Path) -> str:
    """Every column of every row of every table, as text (BLOBs decoded leniently)."""
    connection = sqlite3.connect(path)
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        chunks: list[str] = []
        for name in tables:
            for row in connection.execute(f'SELECT * FROM "{name}"'):
                for value in row:
                    if isinstance(value, bytes):
                        chunks.append(value.decode("utf-8", "replace"))
                    else:
                        chunks.append(str(value))
        return "\n".join(chunks)
    finally:
        connection.close()


def _assert_absent(haystack: str, needles: dict[str, str], where: str) -> None:
    for label, needle in needles.items():
        assert needle not in haystack, f"{label} found in {where}"


async def test_canary_token_and_body_never_stored_or_logged(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Send, search and read a canary message at DEBUG; search all logs and every table."""
    configure_logging("json", "DEBUG")
    directory = tmp_path / "demo"
    async with running_demo(directory, 0) as demo:
        account = demo.account_id
        acc = f"/v1/accounts/{account}"
        status, sent = await demo.call("POST", f"{acc}/messages/send", "alice", json={
            "to": ["bob@example.com"], "subject": CANARY_SUBJECT, "text": CANARY_BODY})  # fmt: skip
        assert status == 200, sent
        status, message = await demo.call("GET", f"{acc}/messages/{sent['id']}", "alice")
        assert status == 200
        assert CANARY_SUBJECT in str(message)  # the owner does get their mail
        # googleapiclient logs each URL it builds at DEBUG, the search text in its query string
        status, found = await demo.call(
            "GET", f"{acc}/messages", "alice", params={"q": CANARY_QUERY}
        )
        assert status == 200, found
        status, consent = await demo.call("POST", f"{acc}/consents", "alice", json={
            "message_ids": [sent["id"]], "grantee_id": "op-olivia", "ttl_days": 1})  # fmt: skip
        assert status == 201, consent

        engine = create_engine(demo.settings.database_url)
        try:
            creds = await VaultCredentialStore(engine, Vault.from_settings(demo.settings)).load(
                account
            )
        finally:
            await engine.dispose()
        assert creds.access_token
        needles = {
            "refresh token": creds.refresh_token,
            "access token": creds.access_token,
            "subject": CANARY_SUBJECT,
            "body": CANARY_BODY,
            "address": "bob@example.com",
            "query": "CANARY-query-91c3",
            "query (URL-encoded)": quote(CANARY_QUERY, safe=""),
            "query (form-encoded)": quote_plus(CANARY_QUERY),
        }
        _assert_absent(_sqlite_dump(directory / "connector.db"), needles, "connector database")
        _assert_absent(_sqlite_dump(directory / "audit.db"), needles, "audit database")

        status, receipt = await demo.call("DELETE", acc, "alice")
        assert status == 200, receipt
        assert receipt["status"] == "unlinked"
        assert receipt["rows_deleted"].get("policy_consent") == 1, receipt

    after = _sqlite_dump(directory / "connector.db")
    _assert_absent(after, needles, "connector database after unlink")
    assert consent["id"] not in after  # the consent went with the account
    assert account in _sqlite_dump(directory / "audit.db")  # evidence is kept (ids only)
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert logs.strip(), "the stack logged nothing at DEBUG; the search would prove nothing"
    assert "URL being requested" in logs, "googleapiclient's DEBUG lines were not searched"
    _assert_absent(logs, needles, "log output")
