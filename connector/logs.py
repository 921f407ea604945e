"""Diagnostic logging: structlog configured once, with a request id and redaction.

Logs are diagnostics; the audit table is evidence. Tokens and mail content must never reach a log,
so redaction runs last before rendering and drops sensitive keys wherever they are nested, and
scrubs bearer/OAuth-token-looking substrings, addresses and the values of sensitive URL query
parameters (`q=`, `code=`, ...) from any string value.

Library loggers (googleapiclient logs every URL it builds at DEBUG, search text included) go
through the same processors; the few whose DEBUG lines print row values are capped at INFO.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

import structlog

if TYPE_CHECKING:
    from connector import settings

REDACTED = "[redacted]"

# Keys whose values are secrets or mail content, compared case-insensitively after normalising
# '-' to '_'. Kept broad on purpose: a false positive costs a diagnostic, a miss leaks mail.
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "bearer",
        "code",
        "code_verifier",
        "client_secret",
        "secret",
        "password",
        "api_key",
        "key",
        "private_key",
        "assertion",
        "raw",
        "body",
        "data",
        "payload",
        "snippet",
        "subject",
        "html",
        "text",
        "content",
        "headers",
        "filename",
        "to",
        "from",
        "cc",
        "bcc",
        "reply_to",
        "email",
        "email_address",
        "query",
        "q",
    }
)

# `?q=...` / `&code=...`: the parameter's name is kept for diagnosis, its value dropped.
_SENSITIVE_PARAM = re.compile(
    r"(?i)([?&;](?:" + "|".join(sorted(map(re.escape, SENSITIVE_KEYS))) + r")=)[^&;#\s\"']*"
)
# An address, plain or URL-encoded: an address is personal data whichever library printed it.
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Libraries whose DEBUG lines repr statements with their parameters, i.e. stored row values.
CAPPED_LOGGERS: dict[str, int] = {"aiosqlite": logging.INFO}

_TOKEN_PATTERNS = (
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"ya29\.[A-Za-z0-9._-]+"),  # Google access tokens
    re.compile(r"1//[A-Za-z0-9._-]+"),  # Google refresh tokens
    re.compile(r"(?i)(access_token|refresh_token|code|client_secret)=[^&\s]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWTs
)

# Every pattern above needs one of these in the string to match (a bearer token needs "bearer", a
# sensitive parameter or `access_token=...` an "=", an address "@" or "%40"). Most logged values
# (event names, route templates, ids, timestamps) hold none, and one search of this is far cheaper
# than the seven substitutions: a string it does not match is left as it is, as they would leave it.
_SUSPECT = re.compile(r"(?i:bearer)|ya29\.|1//|=|@|%40|eyJ")
_PLAIN = (int, float, bool, type(None))

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


@functools.lru_cache(maxsize=4096)  # keys are mostly the code's own names; bounded anyway
def _is_sensitive(key: str) -> bool:
    return key.lower().replace("-", "_") in SENSITIVE_KEYS


def _scrub_string(value: str) -> str:
    if _SUSPECT.search(value) is None:
        return value
    for pattern in _TOKEN_PATTERNS:
        value = pattern.sub(REDACTED, value)
    value = _SENSITIVE_PARAM.sub(lambda m: m.group(1) + REDACTED, value)
    return _ADDRESS.sub(REDACTED, value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_string(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _is_sensitive(k) else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return REDACTED  # raw bytes are mail or secrets more often than not
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive keys anywhere and scrub token-shaped strings."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = _scrub(event_dict[key])
        elif _is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def add_request_id(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


LogFormat = Literal["json", "console"]


def configure_logging(fmt: LogFormat | settings.LogFormat = "console", level: str = "INFO") -> None:
    """Configure structlog and the stdlib root logger once, both through redaction."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")  # noqa: TRY004
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library loggers (aiohttp.access, googleapiclient, sqlalchemy) go through the same redaction.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name, floor in CAPPED_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, numeric_level))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
