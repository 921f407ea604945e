"""run_emulator_in_thread serves synchronous clients from a background event loop."""

from __future__ import annotations

from contextlib import closing

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector.emulator.server import EmulatorConfig, run_emulator_in_thread


def test_sync_client_against_threaded_emulator() -> None:
    """A plain synchronous googleapiclient session works against the threaded emulator."""
    with run_emulator_in_thread(EmulatorConfig(users=1, messages_per_user=5)) as emu:
        token = emu.issue_tokens(emu.users[0])["access_token"]
        svc = build(
            "gmail",
            "v1",
            credentials=Credentials(token=token),
            client_options={"api_endpoint": emu.gmail_endpoint},
            static_discovery=True,
        )
        with closing(svc):
            profile = svc.users().getProfile(userId="me").execute()
        assert profile["emailAddress"] == "alice@example.com"
        assert profile["messagesTotal"] == 5
        assert emu.stats.requests["getProfile"] == 1
