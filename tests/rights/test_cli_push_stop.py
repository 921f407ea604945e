"""`connector retention run` in a push deployment stops Gmail push before it revokes a dormant
account's grant (`users.stop`, as the service's unlink does), so Gmail does not go on
publishing notices for a mailbox the connector no longer holds."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from audit.signing import generate_key, save_private_key
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow
from connector.db import session_factory
from connector.emulator.gmail_users import WATCH_DAYS
from connector.emulator.state import now_ms
from connector.policy.models import table
from tests.linking.conftest import Linking, link_account
from tests.rights.test_cli import _cli, _service_env

DAY = timedelta(days=1)
TOPIC = "projects/demo-project/topics/gmail"


async def test_a_dormant_account_unlinked_from_the_command_line_stops_its_watch_first(
    linking: Linking, tmp_path: Path
) -> None:
    w = linking
    account = await link_account(w)
    box = w.emu.state.mailbox(account.email or "")
    assert box is not None
    box.watch = {"topicName": TOPIC, "labelIds": [], "labelFilterBehavior": "include",
                 "expiration": now_ms() + WATCH_DAYS * 86_400_000}  # fmt: skip
    now = datetime.now(UTC)
    async with session_factory(w.engine)() as session, session.begin():
        accounts = table(AccountRow)
        await session.execute(
            update(accounts).where(accounts.c.id == account.id).values(updated_at=now - 400 * DAY)
        )
        session.add(ChangeRow(account_id=account.id, kind=ChangeKind.DORMANT_NOTICE.value,
                              label_ids=[], message_ids=[], created_at=now - 31 * DAY))  # fmt: skip
    key_file = tmp_path / "signing.pem"
    save_private_key(generate_key(), key_file)
    env = _service_env(
        w.emu, vault_keys=w.keys, audit_signing_key_file=str(key_file),
        sync_mode="push", gmail_api_endpoint=w.emu.gmail_endpoint, gmail_push_topic=TOPIC,
        gmail_push_subscription="projects/demo-project/subscriptions/connector",
        pubsub_api_endpoint=w.emu.pubsub_endpoint, pubsub_token="deployment-token",
    )  # fmt: skip
    args = ("retention", "run", "--db", w.url, "--audit-db", f"sqlite:///{tmp_path / 'a.db'}")
    done = await asyncio.to_thread(_cli, *args, env=env)  # the emulator answers meanwhile
    assert done.returncode == 0, done.stderr
    [receipt] = json.loads(done.stdout)["dormant_unlinked"]
    assert receipt["revocation"] == "revoked"
    assert box.watch is None  # users.stop ran, with the token, before the revoke
