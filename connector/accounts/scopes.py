"""Features and the narrowest Gmail scope each one needs (incremental authorization).

The connector asks for a feature's scope only when the user turns that feature on, and never for
`https://mail.google.com/` (full mailbox access, including permanent deletion).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from connector.errors import ScopeNotGrantedError

_GMAIL = "https://www.googleapis.com/auth/gmail."
GMAIL_READONLY = _GMAIL + "readonly"
GMAIL_SEND = _GMAIL + "send"
GMAIL_COMPOSE = _GMAIL + "compose"
GMAIL_MODIFY = _GMAIL + "modify"
GMAIL_SETTINGS_BASIC = _GMAIL + "settings.basic"
# Non-sensitive; lets the owner see which address is linked. Optional: a user may untick it.
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
FORBIDDEN_SCOPES = frozenset({"https://mail.google.com/"})


class Feature(StrEnum):
    READ = "read"  # list, search and read messages
    SEND = "send"  # send messages
    DRAFTS = "drafts"  # create, edit and send drafts
    # Off by default: asked for only when the user turns them on (incremental authorization).
    ORGANIZE = "organize"  # labels, archive, read/unread, star, spam, trash (never delete)
    SETTINGS = "settings"  # send-as addresses and signatures (read), vacation responder


_REQUIRED: dict[Feature, str] = {
    Feature.READ: GMAIL_READONLY,
    Feature.SEND: GMAIL_SEND,
    Feature.DRAFTS: GMAIL_COMPOSE,
    Feature.ORGANIZE: GMAIL_MODIFY,
    Feature.SETTINGS: GMAIL_SETTINGS_BASIC,
}
# What a link asks for unless the user turns more on.
DEFAULT_FEATURES: tuple[Feature, ...] = (Feature.READ, Feature.SEND, Feature.DRAFTS)
# Broader scopes Google also accepts for the feature's calls (granted by an earlier version,
# say); the connector never requests them, but does not refuse a feature they already allow.
_ALSO_SATISFIED_BY: dict[Feature, frozenset[str]] = {
    Feature.READ: frozenset({GMAIL_MODIFY}),
    Feature.SEND: frozenset({GMAIL_COMPOSE, GMAIL_MODIFY}),
    Feature.DRAFTS: frozenset({GMAIL_MODIFY}),
    Feature.ORGANIZE: frozenset(),
    Feature.SETTINGS: frozenset(),
}

# Shown on the disclosure page, next to each scope, before the user is sent to Google.
SCOPE_PURPOSES: dict[str, str] = {
    GMAIL_READONLY: "Read: list, search and open your messages inside the platform. "
    "Read-only: the connector cannot change or delete mail with it.",
    GMAIL_SEND: "Send: send the messages you write in the platform, only when you press Send.",
    GMAIL_COMPOSE: "Drafts: save, edit and send drafts you write in the platform.",
    GMAIL_MODIFY: "Organize: archive, label, mark read or unread, star, report spam and move to "
    "trash when you ask for it in the platform. It cannot delete mail permanently, and it is "
    "asked for only because you turned Organize on.",
    GMAIL_SETTINGS_BASIC: "Settings: show your send-as addresses and signatures and read or "
    "change your vacation responder when you ask; asked for only because you turned it on.",
    USERINFO_EMAIL: "Your address: show you which Gmail address is linked.",
}


def required_scope(feature: Feature) -> str:
    return _REQUIRED[feature]


def scopes_for(features: Iterable[Feature]) -> tuple[str, ...]:
    """The scopes to request for `features`, in a stable order, plus the address scope."""
    wanted = {_REQUIRED[Feature(f)] for f in features}
    if not wanted:
        raise ValueError("choose at least one feature to link")
    scopes = (*(s for s in _REQUIRED.values() if s in wanted), USERINFO_EMAIL)
    assert not FORBIDDEN_SCOPES & set(scopes)
    return scopes


def feature_enabled(feature: Feature, granted: Iterable[str]) -> bool:
    granted_set = set(granted)
    return _REQUIRED[feature] in granted_set or bool(_ALSO_SATISFIED_BY[feature] & granted_set)


def features_granted(granted: Iterable[str]) -> frozenset[Feature]:
    granted_set = frozenset(granted)
    return frozenset(f for f in Feature if feature_enabled(f, granted_set))


def check_feature(account_id: str, feature: Feature, granted: Iterable[str]) -> None:
    """Raise `ScopeNotGrantedError` (with how to grant it) unless `feature` is allowed."""
    if not feature_enabled(feature, granted):
        raise ScopeNotGrantedError(account_id, feature.value, required_scope(feature))
