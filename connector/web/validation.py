"""Strict input validation: typed request models built from JSON, identifiers checked by form.

Malformed JSON → 400 `malformed-request`; a line break in anything that becomes a mail header →
400 `header-injection`; an identifier of the wrong form → 400 `invalid-id`; wrong types, missing
or unknown fields, out-of-range values → 422 `validation-failed` listing every problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

from aiohttp import web

from audit.event import IDENTIFIER
from connector.mime import has_line_break
from connector.web.problems import ProblemError, ProblemType

# Message and thread ids: lowercase hex below 2^63 (Gmail calls larger ones "Invalid id value").
GMAIL_ID = re.compile(r"^(?:[0-9a-f]{1,15}|[0-7][0-9a-f]{15})$")
DRAFT_ID = re.compile(r"^r-?[0-9]{1,24}$")
ATTACHMENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,1024}={0,2}$")
RECORD_ID = re.compile(r"^[0-9a-f]{32}$")  # consent and access-request ids (uuid4 hex)
LABEL_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
MAX_QUERY_CHARS = 1024
# Far deeper than any request body (a draft is 3 levels): refused before any handler walks it.
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidInputError(ProblemError):
    """A 422 listing every field problem found, not just the first."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        super().__init__(ProblemType.VALIDATION_FAILED, detail, extra={"errors": problems})


def path_id(request: web.Request, name: str, pattern: re.Pattern[str], what: str) -> str:
    value = request.match_info[name]
    return check_id(value, pattern, what)


def check_id(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ProblemError(
            ProblemType.INVALID_ID,
            f"{what} {value[:40]!r} is not of the expected form ({pattern.pattern})",
        )
    return value


def account_id(request: web.Request) -> str:
    return path_id(request, "account_id", IDENTIFIER, "account id")


def check_header_value(name: str, value: str) -> str:
    # Every str.splitlines() break, not only CR/LF: the email package splits on those too.
    if has_line_break(value):
        raise ProblemError(
            ProblemType.HEADER_INJECTION,
            f"{name} contains a line break (CR, LF, VT, FF, FS, GS, RS, NEL, U+2028 or U+2029); "
            "header values must be one line",
            extra={"field": name},
        )
    return value


async def read_json(request: web.Request) -> Mapping[str, Any]:
    """The request body as a JSON object (the size limit is the app's client_max_size)."""
    if request.content_type != "application/json":
        raise ProblemError(
            ProblemType.UNSUPPORTED_MEDIA_TYPE, "send the body as 'Content-Type: application/json'"
        )
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProblemError(
            ProblemType.MALFORMED_REQUEST, f"the body is not valid JSON ({type(exc).__name__})"
        ) from None
    except RecursionError:  # the C decoder recurses once per level
        _too_deep()
    # Only a \uD800-\uDFFF escape can make a lone surrogate: raw UTF-8 cannot hold one.
    _check_tree(data, strings=b"\\u" in raw)
    if not isinstance(data, dict):
        raise InvalidInputError([{"field": "(body)", "problem": "expected a JSON object"}])
    return data


def _too_deep() -> NoReturn:
    raise ProblemError(
        ProblemType.MALFORMED_REQUEST,
        f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
    )


def _check_tree(data: Any, *, strings: bool) -> None:
    """Refuse nesting deeper than any request needs and (when `strings`) lone surrogates, which
    no UTF-8 encoder downstream (mail, database, audit) can write. Iterative: no recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(item, dict | list) or (strings and isinstance(item, str)):
                    stack.append((item, depth + 1))
                if strings and isinstance(key, str):
                    stack.append((key, depth + 1))
        elif isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            raise ProblemError(
                ProblemType.MALFORMED_REQUEST,
                "the body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is "
                "not a Unicode character; send well-formed Unicode text",
            )


class Fields:
    """Collects typed fields from a JSON object, gathering every problem before failing."""

    def __init__(self, data: Mapping[str, Any], allowed: set[str]) -> None:
        self._data = data
        self.problems: list[dict[str, str]] = [
            {"field": key, "problem": "unknown field"} for key in data if key not in allowed
        ]

    def _bad(self, name: str, problem: str) -> None:
        self.problems.append({"field": name, "problem": problem})

    def string(
        self, name: str, *, required: bool = False, max_len: int = 1000, default: str = ""
    ) -> str:
        value = self._data.get(name)
        if value is None:
            if required:
                self._bad(name, "required")
            return default
        if not isinstance(value, str):
            self._bad(name, "expected a string")
            return default
        if len(value) > max_len:
            self._bad(name, f"at most {max_len} characters")
        if required and not value.strip():
            self._bad(name, "must not be empty")
        return value

    def optional_string(self, name: str, *, max_len: int) -> str | None:
        if self._data.get(name) is None:
            return None
        return self.string(name, max_len=max_len)

    def strings(self, name: str, *, max_items: int = 100, max_len: int = 1000) -> tuple[str, ...]:
        value = self._data.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._bad(name, "expected a list of strings")
            return ()
        if len(value) > max_items:
            self._bad(name, f"at most {max_items} items")
        if any(len(v) > max_len for v in value):
            self._bad(name, f"items are at most {max_len} characters")
        return tuple(value)

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        value = self._data.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self._bad(name, "expected an integer")
            return default
        if not low <= value <= high:
            self._bad(name, f"must be between {low} and {high}")
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._data.get(name, default)
        if not isinstance(value, bool):
            self._bad(name, "expected true or false")
            return default
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = True) -> str:
        value = self.string(name, required=required, max_len=64)
        if value and value not in choices:
            self._bad(name, f"must be one of {', '.join(choices)}")
        return value

    def timestamp(self, name: str) -> datetime | None:
        value = self.optional_string(name, max_len=64)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self._bad(name, "expected an ISO 8601 timestamp with a UTC offset")
            return None
        if parsed.tzinfo is None:
            self._bad(name, "the timestamp needs a UTC offset (e.g. 'Z' or '+00:00')")
            return None
        return parsed

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def bad(self, name: str, problem: str) -> None:
        self._bad(name, problem)

    def done(self) -> None:
        if self.problems:
            raise InvalidInputError(self.problems)


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInputError(
            [{"field": name, "problem": f"must be an integer from {low} to {high}"}]
        )
    return int(raw)


def query_choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in choices:
        raise InvalidInputError(
            [{"field": name, "problem": f"must be one of {', '.join(choices)}"}]
        )
    return value


def query_text(request: web.Request, name: str, *, max_len: int = MAX_QUERY_CHARS) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    if len(value) > max_len:
        raise InvalidInputError([{"field": name, "problem": f"at most {max_len} characters"}])
    if has_line_break(value) or "\x00" in value:
        raise ProblemError(ProblemType.MALFORMED_REQUEST, f"{name} contains a control character")
    return value


def query_time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInputError(
            [{"field": name, "problem": "expected an ISO 8601 timestamp with offset"}]
        )
    return parsed
