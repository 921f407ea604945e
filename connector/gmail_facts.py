"""Facts about Gmail itself that the emulator and the client both honour (see gmail-api.md).

Pure data, no behaviour: Google's per-user quota limits and per-method unit costs, and the
`errors[].reason` vocabulary of its error envelope. It lives outside `connector.gmail` so that
the emulator can use it without importing the client package (only the access gate may).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

# Per user, by regime name (`QuotaRegime` values): (units, window in seconds). Both regimes are
# a moving window of charged units.
REGIME_LIMITS: Mapping[str, tuple[int, float]] = MappingProxyType(
    {"legacy": (250, 1.0), "per_minute": (6000, 60.0)}
)

# The documented (older) per-method unit table; keys are discovery method ids without the
# "gmail.users." prefix.
LEGACY_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "getProfile": 1,
        "labels.list": 1,
        "labels.get": 1,
        "labels.create": 5,
        "labels.delete": 5,
        "labels.patch": 5,
        "labels.update": 5,
        "messages.get": 5,
        "messages.list": 5,
        "messages.send": 100,
        "messages.modify": 5,
        "messages.trash": 5,
        "messages.untrash": 5,
        "messages.delete": 10,
        "messages.batchModify": 50,
        "messages.batchDelete": 50,
        "messages.insert": 25,
        "messages.import": 25,
        "messages.attachments.get": 5,
        "threads.get": 10,
        "threads.list": 10,
        "threads.modify": 10,
        "threads.trash": 10,
        "threads.untrash": 10,
        "threads.delete": 20,
        "drafts.create": 10,
        "drafts.get": 5,
        "drafts.list": 5,
        "drafts.update": 15,
        "drafts.delete": 10,
        "drafts.send": 100,
        "history.list": 2,
        "watch": 100,
        "stop": 50,
        "settings.getVacation": 1,
        "settings.updateVacation": 5,
        "settings.sendAs.list": 1,
        "settings.sendAs.get": 1,
    }
)
# The newer regime is reported to charge more for reads.
PER_MINUTE_UNITS: Mapping[str, int] = MappingProxyType(
    {**LEGACY_UNITS, "messages.get": 20, "threads.get": 40}
)
REGIME_UNITS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {"legacy": LEGACY_UNITS, "per_minute": PER_MINUTE_UNITS}
)
DEFAULT_UNITS = 5  # a method missing from the table


class Reason(StrEnum):
    """Gmail `errors[].reason` values: the emulator emits them, the client classifies on them."""

    INVALID_ARGUMENT = "invalidArgument"
    BAD_REQUEST = "badRequest"
    NOT_FOUND = "notFound"
    AUTH_ERROR = "authError"
    REQUIRED = "required"
    INSUFFICIENT_PERMISSIONS = "insufficientPermissions"
    FORBIDDEN = "forbidden"
    USER_RATE_LIMIT_EXCEEDED = "userRateLimitExceeded"
    RATE_LIMIT_EXCEEDED = "rateLimitExceeded"
    BACKEND_ERROR = "backendError"
    DUPLICATE = "duplicate"
    UPLOAD_TOO_LARGE = "uploadTooLarge"
    METHOD_NOT_ALLOWED = "httpMethodNotAllowed"


RATE_LIMIT_REASONS = frozenset({Reason.USER_RATE_LIMIT_EXCEEDED, Reason.RATE_LIMIT_EXCEEDED})
