"""`connector demo`: the Gmail emulator, the service on SQLite under ./var/demo (fresh each run),
alice's mailbox linked through the real link flow, tokens and curl examples printed.

`--smoke` runs the walkthrough itself over HTTP (compose, read, send, a consented support read,
a refused read, the access history, audit verify) and exits 0 when every step behaved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from audit.receipts import ReceiptStatus, verify_receipt
from audit.signing import generate_key, public_pem, save_private_key
from audit.trust import load_trusted_keys
from connector.accounts.vault import generate_key_entry
from connector.background import stop_on_signals
from connector.demo_dir import DemoDirError, claim
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.logs import configure_logging
from connector.settings import LogLevel, Settings, SyncMode
from connector.testing.fleet import free_port
from connector.web.app import create_app
from connector.web.auth import Role, mint_token
from connector.web.server import ServiceRunner
from connector.wiring import real_accounts

PEOPLE: tuple[tuple[str, Role], ...] = (
    ("alice", Role.USER),
    ("op-olivia", Role.OPERATOR),
    ("op-oscar", Role.OPERATOR),
    ("rev-rita", Role.REVIEWER),
)


JWT_SECRET_FILE = "jwt-secret"


class DemoError(RuntimeError):
    """A walkthrough step did not behave as the demo promises."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", default=None,
        help="state directory, emptied at each run if the demo created it (default: var/demo, "
        "var/demo-smoke with --smoke); a directory it did not create is refused",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="service port (default: a free one)")
    parser.add_argument(
        "--smoke", "--exit-after-checks", dest="smoke", action="store_true",
        help="run the walkthrough, print each step, exit 0 if all behaved (1 otherwise)",
    )  # fmt: skip


DEMO_TOPIC = "projects/connector-demo/topics/gmail"
DEMO_SUBSCRIPTION = "projects/connector-demo/subscriptions/connector"


def demo_settings(directory: Path, emu: Emulator, port: int) -> Settings:
    base = f"http://127.0.0.1:{port}"
    key_file = directory / "audit-signing.pem"
    key = generate_key()
    save_private_key(key, key_file)
    # The reviewer's verify (and the printed `audit verify`) trust this key, kept outside the
    # audit database.
    trusted = directory / "audit-trusted-keys.pem"
    trusted.write_text(public_pem(key.public_key()), encoding="ascii")
    # The JWT secret goes to a file only its owner reads, so `connector token mint` can mint
    # for this running demo (CONNECTOR_JWT_SECRET_FILE, printed in the banner's export line).
    jwt_secret = secrets.token_urlsafe(32)
    fd = os.open(directory / JWT_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(jwt_secret + "\n")
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'connector.db'}",
        audit_database_url=f"sqlite:///{directory / 'audit.db'}",
        **emu.connector_settings(),
        oauth_redirect_uris=(f"{base}/v1/oauth/callback",),
        vault_keys=generate_key_entry("demo1"),
        jwt_secret=jwt_secret,
        audit_signing_key_file=key_file,
        audit_trusted_keys_file=trusted,
        audit_witness_file=directory / "audit-witness.jsonl",
        audit_checkpoint_every=10,  # the walkthrough's events get signed checkpoints
        audit_hash_key=secrets.token_urlsafe(32),
        public_base_url=base,
        aggregate_k=2,
        host="127.0.0.1",
        port=port,
        log_level=LogLevel.WARNING,
        # New mail arrives by Gmail push, through the emulator's Pub/Sub (set up in `_stack`).
        sync_mode=SyncMode.PUSH,
        gmail_push_topic=DEMO_TOPIC,
        gmail_push_subscription=DEMO_SUBSCRIPTION,
        pubsub_api_endpoint=emu.pubsub_endpoint,
        pubsub_token="demo-deployment-token",
    )


@dataclass
class Demo:
    base: str
    settings: Settings
    emu: Emulator
    http: aiohttp.ClientSession
    tokens: dict[str, str]
    account_id: str = ""
    directory: Path = Path()

    async def message_ids(self, count: int) -> list[str]:
        """Ids of the newest `count` messages in alice's mailbox (for the printed examples)."""
        path = f"/v1/accounts/{self.account_id}/messages?max_results={count}"
        status, page = await self.call("GET", path, "alice")
        _expect(status == 200, f"list: {status}")
        return [m["id"] for m in page["messages"]]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, method: str, path: str, who: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, headers=self.auth(who),
                                     **kwargs) as r:  # fmt: skip
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body

    async def link_alice(self) -> dict[str, Any]:
        """The real flow: disclosure page, affirmative Continue, Google (emulated), callback."""
        status, started = await self.call("POST", "/v1/accounts/link", "alice")
        _expect(status == 201, f"start link answered {status}")
        async with self.http.get(started["disclosure_url"]) as page:
            html = await page.text()
        _expect("Limited Use" in html, "the disclosure page names the Limited Use requirements")
        ticket = started["disclosure_url"].split("ticket=", 1)[1]
        form = {"ticket": ticket, "disclosure_accepted": "yes"}
        # Step by step, so the last hop (the platform's return URL, if one is set) is not taken.
        url = f"{self.base}/v1/link/start"
        async with self.http.post(url, data=form, allow_redirects=False) as cont:
            _expect(cont.status == 302, f"Continue answered {cont.status}")
            url = cont.headers["Location"]  # Google's (the emulator's) consent
        async with self.http.get(url, allow_redirects=False) as consent:
            url = consent.headers["Location"]  # back to our callback
        async with self.http.get(url, allow_redirects=False) as done:
            outcome = done.headers.get("Location") or await done.text()
            _expect(done.status in (200, 303) and "link=failed" not in outcome,
                    f"link callback answered {done.status}: {outcome}")  # fmt: skip
        status, mine = await self.call("GET", "/v1/accounts", "alice")
        _expect(status == 200 and len(mine["accounts"]) == 1, f"accounts: {status} {mine}")
        account: dict[str, Any] = mine["accounts"][0]
        self.account_id = account["id"]
        return account


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise DemoError(what)


@contextlib.asynccontextmanager
async def running_demo(
    directory: Path, port: int, *, overrides: Mapping[str, Any] | None = None
) -> AsyncIterator[Demo]:
    """The demo stack on `directory`, held for this run (`connector.demo_dir.claim`: refused
    unless the demo made it, locked against a second run); `overrides` replace settings."""
    with claim(directory):
        async with _stack(directory, port, overrides) as demo:
            yield demo


@contextlib.asynccontextmanager
async def _stack(
    directory: Path, port: int, overrides: Mapping[str, Any] | None
) -> AsyncIterator[Demo]:
    async with run_emulator(EmulatorConfig(seed="demo", auto_approve=True)) as emu:
        # What a deployment sets up once in its Google Cloud project (see README, "Live mail").
        emu.pubsub.create_topic(DEMO_TOPIC)
        emu.pubsub.create_subscription(DEMO_SUBSCRIPTION, DEMO_TOPIC, ack_deadline=30)
        port = port or free_port()
        settings = demo_settings(directory, emu, port).model_copy(update=overrides or {})
        runner = ServiceRunner(create_app(settings, accounts=real_accounts), settings)
        await runner.setup()
        await web.TCPSite(runner, settings.host, port).start()
        tokens = {sub: mint_token(settings, sub, role, ttl_seconds=12 * 3600)
                  for sub, role in PEOPLE}  # fmt: skip
        try:
            # a browser's cookie jar (the link flow is bound to it), loopback hosts allowed
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                demo = Demo(f"http://127.0.0.1:{port}", settings, emu, http, tokens,
                            directory=directory)  # fmt: skip
                await demo.link_alice()
                yield demo
        finally:
            await runner.cleanup()


async def walkthrough(demo: Demo, say: Any) -> None:
    """Every step the README walks through, checked."""
    acc = f"/v1/accounts/{demo.account_id}"
    status, page = await demo.call("GET", f"{acc}/messages?max_results=3", "alice")
    _expect(status == 200 and page["messages"], f"list: {status}")
    first, second = page["messages"][0]["id"], page["messages"][1]["id"]
    status, message = await demo.call("GET", f"{acc}/messages/{first}", "alice")
    _expect(status == 200 and message["id"] == first, f"read: {status}")
    say(f"read: message {first} ({len(page['messages'])} listed with headers only)")
    status, draft = await demo.call("POST", f"{acc}/drafts", "alice", json={
        "to": ["bob@example.com"], "subject": "Lunch?", "text": "Thursday at noon?"})  # fmt: skip
    _expect(status == 201, f"compose a draft: {status}")
    say(f"compose: draft {draft['id']} created")
    status, sent = await demo.call("POST", f"{acc}/drafts/{draft['id']}/send", "alice")
    _expect(status == 200 and "SENT" in sent["labelIds"], f"send: {status}")
    say(f"send: message {sent['id']} sent")
    status, consent = await demo.call("POST", f"{acc}/consents", "alice", json={
        "message_ids": [first], "grantee_id": "op-olivia", "ttl_days": 1})  # fmt: skip
    _expect(status == 201, f"consent: {status}")
    support = f"/v1/support/accounts/{demo.account_id}/messages"
    status, _ = await demo.call("GET", f"{support}/{first}?consent_id={consent['id']}", "op-olivia")
    _expect(status == 200, f"consented support read: {status}")
    say(f"consented support read: op-olivia read {first} under consent {consent['id']}")
    status, refused = await demo.call(
        "GET", f"{support}/{second}?consent_id={consent['id']}", "op-olivia"
    )
    _expect(status == 403, f"unconsented read should be refused, got {status}")
    say(f"refused read: {second} -> 403 {', '.join(refused['reasons'])}")
    status, history = await demo.call("GET", f"{acc}/access-history?max_results=20", "alice")
    _expect(status == 200, f"history: {status}")
    seen = {(e["actor"]["id"], e["decision"]) for e in history["events"]}
    _expect(("op-olivia", "allow") in seen and ("op-olivia", "deny") in seen,
            "alice's history shows op-olivia's allowed and refused reads")  # fmt: skip
    say(f"access history: {len(history['events'])} events, op-olivia's read and refusal listed")
    status, report = await demo.call("POST", "/v1/audit/verify", "rev-rita")
    _expect(status == 200 and report["authentic"], f"audit verify: {status} {report}")
    say(
        f"audit verify: ok, {report['events']} events, {report['checkpoints']} checkpoints, "
        f"authentic (pinned key) through seq {report['signed_seq']}, "
        f"{report['witnessed']} witnessed"
    )
    status, receipt = await demo.call("DELETE", acc, "alice")
    _expect(status == 200 and receipt["status"] == "unlinked", f"unlink: {status} {receipt}")
    say(f"unlink: revocation {receipt['revocation']}, rows deleted {receipt['rows_deleted']}")
    # What a user would do with the receipt: check it offline against the pinned key.
    assert demo.settings.audit_trusted_keys_file is not None
    check = verify_receipt(receipt, load_trusted_keys(demo.settings.audit_trusted_keys_file))
    _expect(check.status is ReceiptStatus.VALID, f"deletion receipt: {check.problems}")
    say(f"deletion receipt: signed, audit event seq {check.audit_seq} hash {check.audit_hash}")


def _exports(demo: Demo, mid: str, other: str) -> str:
    """One `export` line that sets everything the README walkthrough uses, pasted as-is: the
    venv's bin first on PATH (`audit`, `connector`), the service, the account, every token, two
    message ids, the demo directory, the JWT secret file (`connector token mint`) and the audit
    database (`audit ...` without --db)."""
    t = demo.tokens
    state = demo.directory
    values = {
        "PATH": f"{Path(sys.executable).parent}:$PATH",
        "BASE": demo.base, "ACC": demo.account_id,
        "U": t["alice"], "O": t["op-olivia"], "O2": t["op-oscar"], "R": t["rev-rita"],
        "MID": mid, "OTHER": other, "DEMO": str(state),
        "CONNECTOR_JWT_SECRET_FILE": str(state / JWT_SECRET_FILE),
        "CONNECTOR_AUDIT_DATABASE_URL": demo.settings.audit_database_url,
    }  # fmt: skip
    return "export " + " ".join(f'{name}="{value}"' for name, value in values.items())


def _signin(demo: Demo, sub: str, role: Role, page: str) -> str:
    """The link the platform would send its user to: a short-lived token for the web client."""
    token = mint_token(demo.settings, sub, role, ttl_seconds=3600)
    return f"{demo.base}/app/signin?next={page}&token={token}"


def _print_banner(demo: Demo, mid: str, other: str) -> None:
    t = demo.tokens
    acc = demo.account_id
    lines = [
        "Gmail Limited-Use connector demo (Ctrl-C to stop)",
        f"  service   {demo.base}   (OpenAPI: {demo.base}/openapi.json)",
        f"  emulator  {demo.emu.base_url}",
        f"  alice's linked account: {acc}",
        "",
        "Web client (open in a browser; sign-in links valid 1 h):",
        f"  alice     {_signin(demo, 'alice', Role.USER, f'/app/accounts/{acc}/inbox')}",
        f"  op-olivia {_signin(demo, 'op-olivia', Role.OPERATOR, '/app/operator')}",
        f"  rev-rita  {_signin(demo, 'rev-rita', Role.REVIEWER, '/app/reviewer')}",
        "",
        "Bearer tokens (valid 12 h):",
        *[f"  {sub:<10} {role.value:<9} {t[sub]}" for sub, role in PEOPLE],
        "",
        "In another terminal, paste this line, then the README's walkthrough (or these):",
        f"  {_exports(demo, mid, other)}",
        '  curl -s -H "Authorization: Bearer $U" "$BASE/v1/accounts/$ACC/messages"',
        '  curl -s -H "Authorization: Bearer $U" -H "Content-Type: application/json" '
        '-d \'{"to":["bob@example.com"],"subject":"Hi","text":"Hello"}\' '
        '"$BASE/v1/accounts/$ACC/messages/send"',
        '  curl -s -H "Authorization: Bearer $O" '
        '"$BASE/v1/support/accounts/$ACC/messages/$MID"   # refused: no basis',
        '  curl -s -H "Authorization: Bearer $U" "$BASE/v1/accounts/$ACC/access-history"',
        '  curl -s -X POST -H "Authorization: Bearer $R" "$BASE/v1/audit/verify"',
        "  connector token mint --sub alice --role user   # more tokens for this demo",
        "",
        f"  {_audit_verify_command(demo.settings)}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _audit_verify_command(settings: Settings) -> str:
    """The offline check, with the demo's pinned key and witness file."""
    db = settings.audit_database_url.split(":///", 1)[1]
    return (
        f"audit verify --db sqlite:///{db} --trusted-keys {settings.audit_trusted_keys_file} "
        f"--witness {settings.audit_witness_file}"
    )


async def _main(args: argparse.Namespace) -> int:
    directory = Path(args.dir or ("var/demo-smoke" if args.smoke else "var/demo"))
    async with running_demo(directory, args.port) as demo:
        if args.smoke:
            try:
                await walkthrough(demo, lambda line: sys.stdout.write(f"ok  {line}\n"))
            except DemoError as exc:
                sys.stdout.write(f"FAILED  {exc}\n")
                return 1
            sys.stdout.write("demo smoke: all steps behaved\n")
            return 0
        mid, other = await demo.message_ids(2)
        _print_banner(demo, mid, other)
        await stop_on_signals().wait()
        sys.stdout.write("stopping\n")
    return 0


def run(args: argparse.Namespace) -> int:
    configure_logging("console", "WARNING")
    # absolute, so the printed paths work from any directory; not resolved, so a symbolic
    # link is still seen (and refused) as one
    args.dir = os.path.abspath(args.dir or ("var/demo-smoke" if args.smoke else "var/demo"))
    try:
        return asyncio.run(_main(args))
    except DemoDirError as exc:
        sys.stderr.write(f"connector demo: {exc}\n")
        return 2
