"""Gmail search (`q`) parser and matcher.

Supports the operators clients rely on: from/to/cc/bcc/subject, label/in/is/has/category,
after/before/older/newer (YYYY/MM/DD in PST, or epoch seconds), older_than/newer_than,
larger/smaller, filename, rfc822msgid, free text and "phrases", `-` negation, OR, ( ) and { }.
Dates are midnight PST (UTC-8), as Gmail's search guide documents.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connector.emulator import errors
from connector.emulator.state import Mailbox, Message

Predicate = Callable[[Message, Mailbox], bool]
PST = timezone(timedelta(hours=-8))
_TOKEN_RE = re.compile(r'\s*(?:(\()|(\))|(\{)|(\})|(-)?((?:[A-Za-z_]+:)?(?:"[^"]*"|[^\s(){}"]+)))')
_IN_ALIASES = {
    "inbox": "INBOX",
    "sent": "SENT",
    "trash": "TRASH",
    "spam": "SPAM",
    "drafts": "DRAFT",
    "draft": "DRAFT",
    "starred": "STARRED",
    "important": "IMPORTANT",
    "chats": "CHAT",
    "unread": "UNREAD",
}
_CATEGORIES = {
    "primary": "CATEGORY_PERSONAL",
    "personal": "CATEGORY_PERSONAL",
    "social": "CATEGORY_SOCIAL",
    "promotions": "CATEGORY_PROMOTIONS",
    "updates": "CATEGORY_UPDATES",
    "forums": "CATEGORY_FORUMS",
}
_SYSTEM_LABELS_SEARCHABLE = {
    "INBOX",
    "SENT",
    "DRAFT",
    "TRASH",
    "SPAM",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "CHAT",
    *_CATEGORIES.values(),
}


@dataclass(frozen=True, slots=True)
class Query:
    predicate: Predicate | None
    mentions_spam_trash: bool  # in:trash / in:spam / in:anywhere lift the default exclusion

    def matches(self, msg: Message, box: Mailbox) -> bool:
        return self.predicate is None or self.predicate(msg, box)


def _normalise_label(name: str) -> str:
    return re.sub(r"[\s/_-]+", "-", name.strip().lower())


def _label_pred(value: str) -> Predicate:
    wanted = _normalise_label(value)
    upper = value.upper()

    def pred(msg: Message, box: Mailbox) -> bool:
        if upper in _SYSTEM_LABELS_SEARCHABLE and upper in msg.label_ids:
            return True
        for label_id in msg.label_ids:
            label = box.labels.get(label_id)
            if label is not None and _normalise_label(label.name) == wanted:
                return True
        return False

    return pred


def _has_label(label_id: str) -> Predicate:
    return lambda msg, _box: label_id in msg.label_ids


def _parse_date(value: str) -> int:
    """Return epoch milliseconds for YYYY/MM/DD (PST midnight) or epoch seconds."""
    if value.isdigit():
        return int(value) * 1000
    match = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if not match:
        raise errors.invalid_argument(f"Invalid date in query: {value}")
    year, month, day = (int(g) for g in match.groups())
    try:
        return int(datetime(year, month, day, tzinfo=PST).timestamp() * 1000)
    except ValueError as exc:
        raise errors.invalid_argument(f"Invalid date in query: {value}") from exc


def _parse_relative(value: str) -> int:
    match = re.fullmatch(r"(\d+)([dmy])", value.lower())
    if not match:
        raise errors.invalid_argument(f"Invalid relative date in query: {value}")
    amount, unit = int(match.group(1)), match.group(2)
    days = {"d": 1, "m": 30, "y": 365}[unit] * amount
    return int((time.time() - days * 86400) * 1000)


def _parse_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmM]?)", value)
    if not match:
        raise errors.invalid_argument(f"Invalid size in query: {value}")
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * factor


def _header_contains(names: tuple[str, ...], value: str) -> Predicate:
    needle = value.lower()
    if len(names) == 1:
        only = names[0]
        return lambda msg, _box: needle in msg.parsed.search_headers.get(only, "")

    def pred(msg: Message, _box: Mailbox) -> bool:
        index = msg.parsed.search_headers
        return any(needle in index.get(name, "") for name in names)

    return pred


def _words_in_subject(value: str) -> Predicate:
    words = value.lower().split()

    def pred(msg: Message, _box: Mailbox) -> bool:
        subject = msg.parsed.search_headers.get("subject", "")
        return all(w in subject for w in words)

    return pred


def _text(value: str) -> Predicate:
    needle = value.lower()
    return lambda msg, _box: needle in msg.parsed.text


def _rfc822(value: str) -> Predicate:
    wanted = value.strip().strip("<>").lower()
    return lambda msg, _box: msg.message_id_header.strip("<>").lower() == wanted


def _term(key: str, value: str) -> tuple[Predicate, bool]:
    """Build the predicate for `key:value`; the flag says it names trash/spam/anywhere."""
    lower = value.lower()
    if key == "from":
        return _header_contains(("from",), value), False
    if key in ("to", "cc", "bcc"):
        names = ("to", "cc", "bcc", "delivered-to") if key == "to" else (key,)
        return _header_contains(names, value), False
    if key == "subject":
        return _words_in_subject(value), False
    if key == "label":
        return _label_pred(value), lower in ("trash", "spam")
    if key == "in":
        if lower == "anywhere":
            return (lambda _m, _b: True), True
        label_id = _IN_ALIASES.get(lower)
        pred = _has_label(label_id) if label_id else _label_pred(value)
        return pred, lower in ("trash", "spam")
    if key == "is":
        if lower == "read":
            return (lambda m, _b: "UNREAD" not in m.label_ids), False
        label_id = _IN_ALIASES.get(lower)
        return (_has_label(label_id) if label_id else (lambda _m, _b: False)), False
    if key == "has":
        if lower == "attachment":
            return (lambda m, _b: m.parsed.has_attachment), False
        if lower == "userlabels":
            return (lambda m, _b: any(x.startswith("Label_") for x in m.label_ids)), False
        if lower == "nouserlabels":
            return (lambda m, _b: not any(x.startswith("Label_") for x in m.label_ids)), False
        return (lambda _m, _b: False), False
    if key == "category":
        return _has_label(_CATEGORIES.get(lower, "CATEGORY_" + value.upper())), False
    if key in ("after", "newer"):
        ms = _parse_date(value)
        return (lambda m, _b: m.internal_date >= ms), False
    if key in ("before", "older"):
        ms = _parse_date(value)
        return (lambda m, _b: m.internal_date < ms), False
    if key == "newer_than":
        ms = _parse_relative(value)
        return (lambda m, _b: m.internal_date >= ms), False
    if key == "older_than":
        ms = _parse_relative(value)
        return (lambda m, _b: m.internal_date < ms), False
    if key == "larger":
        size = _parse_size(value)
        return (lambda m, _b: len(m.raw) > size), False
    if key == "smaller":
        size = _parse_size(value)
        return (lambda m, _b: len(m.raw) < size), False
    if key == "filename":
        return (lambda m, _b: any(lower in f for f in m.parsed.filenames)), False
    if key == "rfc822msgid":
        return _rfc822(value), False
    return _text(f"{key}:{value}"), False


_KNOWN_KEYS = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "label",
    "in",
    "is",
    "has",
    "category",
    "after",
    "before",
    "older",
    "newer",
    "older_than",
    "newer_than",
    "larger",
    "smaller",
    "filename",
    "rfc822msgid",
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN_RE.match(text, pos)
            if not match or match.end() == pos:
                # A stray quote or other oddity: treat the rest as free text, like Gmail.
                self.tokens.append(text[pos:].strip().strip('"'))
                break
            paren_open, paren_close, brace_open, brace_close, neg, word = match.groups()
            token = paren_open or paren_close or brace_open or brace_close
            if token:
                self.tokens.append(token)
            else:
                if neg:
                    self.tokens.append("-")
                self.tokens.append(word)
            pos = match.end()
        self.pos = 0
        self.mentions_spam_trash = False

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_or(self, closer: str | None) -> Predicate | None:
        branches: list[Predicate] = []
        current = self.parse_and(closer)
        if current is not None:
            branches.append(current)
        while self.peek() == "OR":
            self.take()
            nxt = self.parse_and(closer)
            if nxt is not None:
                branches.append(nxt)
        return _any_of(branches)

    def parse_and(self, closer: str | None) -> Predicate | None:
        parts: list[Predicate] = []
        while (token := self.peek()) is not None and token not in ("OR", closer):
            if token in (")", "}"):
                self.take()  # unbalanced closer: ignore, as Gmail does
                continue
            pred = self.parse_unary()
            if pred is not None:
                parts.append(pred)
        return _all_of(parts)

    def _grouped(self, key: str) -> Predicate | None:
        """`subject:(a b)`: every word must match the same operator."""
        self.take()  # "("
        parts: list[Predicate] = []
        while (token := self.peek()) is not None and token != ")":
            word = self.take()
            if word not in ("(", "{", "}", "-", "OR", "AND"):
                pred, flag = _term(key, word.strip('"'))
                self.mentions_spam_trash |= flag
                parts.append(pred)
        if self.peek() == ")":
            self.take()
        return _all_of(parts)

    def parse_unary(self) -> Predicate | None:
        token = self.take()
        if token == "-":
            if self.peek() is None:
                return None
            negated = self.parse_unary()
            if negated is None:
                return None
            return lambda m, b: not negated(m, b)
        if token == "(":
            inner = self.parse_or(")")
            if self.peek() == ")":
                self.take()
            return inner
        if token == "{":
            alternatives: list[Predicate] = []
            while (nxt := self.peek()) is not None and nxt != "}":
                pred = self.parse_unary()
                if pred is not None:
                    alternatives.append(pred)
            if self.peek() == "}":
                self.take()
            return _any_of(alternatives)
        if token == "AND":
            return None
        key, sep, value = token.partition(":")
        if sep and not value and key.lower() in _KNOWN_KEYS and self.peek() == "(":
            return self._grouped(key.lower())
        if sep and not value and key.lower() in _KNOWN_KEYS:
            return None  # Gmail reads an empty `from:` as no condition: it matches everything
        if sep and key.lower() in _KNOWN_KEYS and value:
            pred, flag = _term(key.lower(), value.strip('"'))
            self.mentions_spam_trash |= flag
            return pred
        return _text(token.strip('"'))


def _joined(parts: list[Predicate], join: Callable[[Iterator[bool]], bool]) -> Predicate | None:
    """None for no parts (match everything), the part itself for one, else all/any of them."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return lambda m, b: join(p(m, b) for p in parts)


def _all_of(parts: list[Predicate]) -> Predicate | None:
    return _joined(parts, all)


def _any_of(parts: list[Predicate]) -> Predicate | None:
    return _joined(parts, any)


def parse_query(text: str | None) -> Query:
    """Parse a Gmail `q` string; an empty query matches everything."""
    if not text or not text.strip():
        return Query(None, False)
    parser = _Parser(text)
    predicate = parser.parse_or(None)
    while parser.peek() is not None:  # leftover closers etc.
        parser.take()
    return Query(predicate, parser.mentions_spam_trash)


__all__ = ["Query", "parse_query"]
