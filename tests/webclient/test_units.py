"""The web client's pure parts, without a browser: the sanitizer, the session cookie, the
frame-ancestors setting and the words of 'Who accessed my mail'."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from audit.event import Actor, AuditEvent, Basis
from audit.records import StoredEvent
from audit.vocab import Action, ActorKind, BasisKind, Decision, Outcome, Phase, Purpose
from connector.settings import Settings, SettingsError
from connector.web.auth import Role, TokenVerifier, mint_token
from connector.web.problems import ProblemError
from connector.webclient.mailview import message_view, plain_text, sanitize
from connector.webclient.security import mail_policy, page_policy
from connector.webclient.session import Sessions
from connector.webclient.wording import DID, TRIED, by_others

SECRET = "units-jwt-secret-0123456789abcdef0123456789"


def _settings(**extra: object) -> Settings:
    return Settings(jwt_secret=SECRET, audit_hash_key="units-hash-key", **extra)


# -- sanitizer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "gone"),
    [
        ("<script>alert(1)</script>ok", "alert"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ('<a href="javascript:alert(1)">x</a>', "javascript"),
        ('<a href="data:text/html,<script>x</script>">x</a>', "data:"),
        ('<form action="https://evil.example"><input name="p"></form>', "form"),
        ('<iframe src="https://evil.example"></iframe>', "iframe"),
        ("<style>body{display:none}</style>ok", "display"),
        ('<div style="position:fixed;top:0">x</div>', "position"),
        ('<div style="background-image:url(https://t.example/p)">x</div>', "t.example"),
        ('<base href="https://evil.example/">', "base"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "refresh"),
    ],
)
def test_the_sanitizer_removes_what_could_run_load_or_overlay(hostile: str, gone: str) -> None:
    """Each hostile construct is gone from the sanitized HTML."""
    assert gone not in sanitize(hostile, remote_allowed=True).html


def test_remote_images_are_blocked_and_counted_until_allowed() -> None:
    """A remote image loses its source (counted); allowed, it keeps it; data: images stay."""
    html = '<img src="https://t.example/p.gif"><img src="data:image/png;base64,AAAA">'
    blocked = sanitize(html, remote_allowed=False)
    assert "t.example" not in blocked.html
    assert "data:image/png" in blocked.html
    assert blocked.blocked_remote == 1
    allowed = sanitize(html, remote_allowed=True)
    assert 'src="https://t.example/p.gif"' in allowed.html
    assert allowed.blocked_remote == 0


def test_links_open_in_a_new_context_without_opener_or_referrer() -> None:
    """Every kept link has target=_blank and rel=noopener noreferrer; relative links go."""
    out = sanitize(
        '<a href="https://ok.example/">a</a><a href="/app/x">b</a>', remote_allowed=False
    )
    assert 'href="https://ok.example/"' in out.html
    assert out.html.count('rel="noopener noreferrer"') == 2
    assert 'target="_blank"' in out.html
    assert "/app/x" not in out.html


def test_message_view_reads_headers_bodies_and_attachments() -> None:
    """Gmail's format=full JSON: headers by name, the text and HTML parts, attachment parts."""
    data = base64.urlsafe_b64encode(b"Hello &amp; bye").decode()
    message = {
        "id": "a1", "threadId": "t1", "labelIds": ["INBOX", "UNREAD"], "snippet": "Hi &amp; bye",
        "payload": {"mimeType": "multipart/mixed",
                    "headers": [{"name": "Subject", "value": "Hi"},
                                {"name": "From", "value": "b@x"}],
                    "parts": [{"mimeType": "text/plain", "body": {"data": data}},
                              {"mimeType": "text/html", "body": {"data": data}},
                              {"mimeType": "application/pdf", "filename": "f.pdf",
                               "body": {"attachmentId": "att1", "size": 9}}]},
    }  # fmt: skip
    view = message_view(message)
    assert (view.header("subject"), view.header("FROM"), view.unread) == ("Hi", "b@x", True)
    assert view.snippet == "Hi & bye"
    assert view.text == "Hello &amp; bye"
    assert [(a.attachment_id, a.filename, a.size) for a in view.attachments] == [
        ("att1", "f.pdf", 9)
    ]
    assert plain_text("<p>a &amp; b</p><script>x</script>") == "a & b"


def test_the_mail_frame_policy_forbids_script_and_allows_remote_images_only_when_asked() -> None:
    """The body document's CSP sandboxes it without scripts; img-src widens only on request."""
    strict, wide = mail_policy(False), mail_policy(True)
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in strict
    assert "allow-scripts" not in strict
    assert "img-src data:;" in strict
    assert "img-src data: https: http:;" in wide
    assert "script-src" not in wide  # default-src 'none' covers it


# -- settings ---------------------------------------------------------------------------------


def test_frame_ancestors_are_checked_origins_and_go_into_the_page_policy() -> None:
    """Only 'self', 'none' or origins; nothing that could add a CSP directive."""
    policy = page_policy(_settings(web_frame_ancestors="'self', https://platform.example:8443"))
    assert policy.endswith("frame-ancestors 'self' https://platform.example:8443")
    for bad in ("https://a.example; script-src *", "*", "javascript:x", "'unsafe-inline'"):
        with pytest.raises(SettingsError):
            _settings(web_frame_ancestors=bad)


# -- sessions ---------------------------------------------------------------------------------


class _Request:
    """What `Sessions.read` looks at: the cookies."""

    def __init__(self, cookies: dict[str, str]) -> None:
        self.cookies = cookies


def test_a_session_comes_from_a_valid_platform_token_only() -> None:
    """The platform's JWT signs in; a forged or expired one is refused with a 401 problem."""
    settings = _settings()
    sessions = Sessions(settings, TokenVerifier(settings))
    session, cookie = sessions.sign_in(mint_token(settings, "alice", Role.USER))
    assert (session.caller.sub, session.caller.role) == ("alice", Role.USER)
    read = sessions.read(_Request({"connector_session": cookie}))  # type: ignore[arg-type]
    assert read is not None
    assert read.csrf == session.csrf
    forged = jwt.encode({"sub": "alice", "role": "admin", "iss": settings.jwt_issuer,
                         "aud": settings.jwt_audience, "iat": 0, "exp": 2**40},
                        "another-secret-0123456789abcdef0123456789", algorithm="HS256")  # fmt: skip
    with pytest.raises(ProblemError):
        sessions.sign_in(forged)
    expired = mint_token(settings, "alice", Role.USER, ttl_seconds=-3600)
    with pytest.raises(ProblemError):
        sessions.sign_in(expired)


def test_a_session_cookie_cannot_be_edited_replayed_after_sign_out_or_outlive_its_expiry() -> None:
    """A cookie signed with another key, or signed out, or past its expiry reads as none."""
    settings = _settings(web_session_minutes=5)
    sessions = Sessions(settings, TokenVerifier(settings))
    session, cookie = sessions.sign_in(mint_token(settings, "alice", Role.USER))
    claims = jwt.decode(cookie, options={"verify_signature": False})
    claims["role"] = "admin"
    edited = jwt.encode(claims, "a-guessed-key-0123456789abcdef0123456789", algorithm="HS256")
    assert sessions.read(_Request({"connector_session": edited})) is None  # type: ignore[arg-type]
    assert claims["exp"] - claims["iat"] == 300
    later = Sessions(settings, TokenVerifier(settings),
                     clock=lambda: datetime.now(UTC) + timedelta(minutes=6))  # fmt: skip
    assert later.read(_Request({"connector_session": cookie})) is None  # type: ignore[arg-type]
    asyncio.run(sessions.sign_out(session))
    assert sessions.read(_Request({"connector_session": cookie})) is None  # type: ignore[arg-type]


# -- words ------------------------------------------------------------------------------------


def _stored(
    seq: int, actor: Actor, action: Action, decision: Decision, phase: Phase
) -> StoredEvent:
    event = AuditEvent(
        actor=actor, action=action, decision=decision,
        outcome=Outcome.DENIED if decision is Decision.DENY else Outcome.PENDING,
        account_id="acc-1", purpose=Purpose.CONSENTED_SUPPORT,
        basis=Basis(BasisKind.CONSENT, "c" * 32), phase=phase,
        reasons=("consent.not_covering",) if decision is Decision.DENY else (),
    )  # fmt: skip
    return StoredEvent(seq, event, "0" * 64, "1" * 64)


def test_who_accessed_lists_others_once_per_access_in_words() -> None:
    """The owner's own events and outcome duplicates are left out; a refusal says 'tried to'."""
    olivia, alice = Actor(ActorKind.OPERATOR, "op-olivia"), Actor(ActorKind.USER, "alice")
    events = [
        _stored(1, olivia, Action.GMAIL_MESSAGE_READ, Decision.ALLOW, Phase.DECISION),
        _stored(2, olivia, Action.GMAIL_MESSAGE_READ, Decision.ALLOW, Phase.OUTCOME),
        _stored(3, olivia, Action.GMAIL_MESSAGE_READ, Decision.DENY, Phase.DECISION),
        _stored(4, alice, Action.GMAIL_MESSAGE_READ, Decision.ALLOW, Phase.DECISION),
    ]
    told = by_others(events, "alice")
    assert [(t.seq, t.who, t.did, t.result) for t in told] == [
        (1, "Support staff member op-olivia", "read a message", "Allowed"),
        (3, "Support staff member op-olivia", "tried to read a message",
         "Refused: nothing was shown"),
    ]  # fmt: skip
    assert told[0].why == "to help you, with your consent"
    assert told[0].basis.startswith("the access you granted")


def test_every_mail_access_by_staff_has_words() -> None:
    """Each gated read an operator can make is told in words, allowed and refused."""
    reads = {a for a in Action if a.value.startswith("gmail.") and a.value.endswith(".read")}
    reads |= {Action.GMAIL_MESSAGE_LIST}
    owner_only = {Action.GMAIL_DRAFT_READ, Action.GMAIL_VACATION_READ}  # no basis reaches them
    assert reads - set(DID) - owner_only == set()
    assert {
        Action.GMAIL_MESSAGE_READ,
        Action.GMAIL_THREAD_READ,
        Action.GMAIL_ATTACHMENT_READ,
    } <= set(TRIED)
