"""A seeded run for the evidence tests: `connector demo --smoke` (the real link flow, a consented
read, a refused read, an unlink with its receipt), plus the events the demo does not make (a
forbidden-purpose refusal, an approved security read, an account needing relink), appended to
the same signed log. Each test gets its own copy, so tampering in one cannot leak into another."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.event import Actor, AuditEvent, Basis
from audit.log import open_audit_log
from audit.signing import load_private_key
from audit.vocab import Action, ActorKind, BasisKind, Decision, Outcome, Phase, Purpose, Severity

REQUEST_ID = "req0000000000000000000000000001"


@dataclass(frozen=True)
class Seeded:
    directory: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.directory / 'audit.db'}"

    def args(self) -> list[str]:
        d = self.directory
        return ["--db", self.db, "--trusted-keys", str(d / "audit-trusted-keys.pem"),
                "--witness", str(d / "audit-witness.jsonl")]  # fmt: skip

    def evidence(self, out: Path, *extra: str) -> list[str]:
        d = self.directory
        return ["evidence", "--out", str(out), "--signing-key", str(d / "audit-signing.pem"),
                *self.args(), "--skip-tests", *extra]  # fmt: skip

    def verify(self, pack: Path, *extra: str) -> list[str]:
        return ["verify-pack", str(pack), *self.args(), *extra]


def _more_events() -> list[AuditEvent]:
    operator = Actor(ActorKind.OPERATOR, "op-olivia")
    account = "acct-seeded-extra"
    return [
        AuditEvent(operator, Action.GMAIL_MESSAGE_READ, Decision.DENY, Outcome.DENIED,
                   account_id=account, purpose=Purpose.ADVERTISING, phase=Phase.DECISION,
                   severity=Severity.HIGH, reasons=("purpose.forbidden",)),
        AuditEvent(Actor(ActorKind.OPERATOR, "op-oscar"), Action.ACCESS_REQUEST_APPROVED,
                   Decision.ALLOW, Outcome.OK, account_id=account, purpose=Purpose.SECURITY,
                   basis=Basis(BasisKind.ACCESS_REQUEST, REQUEST_ID)),
        AuditEvent(operator, Action.GMAIL_MESSAGE_READ, Decision.ALLOW, Outcome.PENDING,
                   account_id=account, purpose=Purpose.SECURITY, phase=Phase.DECISION,
                   basis=Basis(BasisKind.ACCESS_REQUEST, REQUEST_ID)),
        AuditEvent(Actor(ActorKind.SYSTEM, "token-refresh"), Action.ACCOUNT_NEEDS_RELINK,
                   Decision.ALLOW, Outcome.OK, account_id=account, purpose=Purpose.USER_FEATURE),
    ]  # fmt: skip


async def _append(directory: Path) -> None:
    key = load_private_key(directory / "audit-signing.pem")
    log = await open_audit_log(f"sqlite:///{directory / 'audit.db'}", signing_key=key,
                               create=False)  # fmt: skip
    try:
        for event in _more_events():
            await log.append(event)
    finally:
        await log.close()  # signs a checkpoint over them


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("evidence") / "demo"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "connector", "demo", "--smoke", "--dir", str(directory)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    asyncio.run(_append(directory))
    return directory


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path) -> Seeded:
    copy = tmp_path / "run"
    shutil.copytree(seeded_template, copy, ignore=shutil.ignore_patterns("*.lock"))
    return Seeded(copy)
