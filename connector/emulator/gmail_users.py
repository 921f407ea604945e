"""Gmail v1 `users.watch` / `users.stop` and the `users.settings` reads and writes clients use
(send-as identities with their signatures, the vacation responder)."""

from __future__ import annotations

import re
from typing import Any

from connector.emulator import errors
from connector.emulator.gmail_call import Call
from connector.emulator.state import now_ms

WATCH_DAYS = 7  # Gmail's watch expires after 7 days unless renewed
_TOPIC = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")
_VACATION_FLAGS = ("enableAutoReply", "restrictToContacts", "restrictToDomain")
_VACATION_TEXTS = ("responseSubject", "responseBodyPlainText", "responseBodyHtml")
_VACATION_TIMES = ("startTime", "endTime")


def users_watch(call: Call) -> dict[str, Any]:
    """Register push notifications; answers the current historyId and the expiration (ms)."""
    data = call.json()
    topic = data.get("topicName")
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise errors.invalid_argument("Invalid topicName does not match projects/*/topics/*")
    labels = data.get("labelIds") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise errors.invalid_argument("Invalid labelIds")
    call.check_labels(labels)
    if call.box.push is not None and not call.box.push.topic_known(topic):
        # Gmail sends a test message when the watch is made; with no topic it cannot.
        raise errors.GmailError(
            404,
            f"Error sending test message to Cloud PubSub {topic} : Resource not found",
            errors.Reason.NOT_FOUND,
        )
    behaviour = data.get("labelFilterBehavior") or data.get("labelFilterAction") or "include"
    if behaviour not in ("include", "exclude"):
        raise errors.invalid_argument(f"Invalid labelFilterBehavior: {behaviour}")
    expiration = now_ms() + WATCH_DAYS * 86_400_000
    call.box.watch = {"topicName": topic, "labelIds": list(labels),
                      "labelFilterBehavior": behaviour, "expiration": expiration}  # fmt: skip
    return {"historyId": str(call.box.history_id), "expiration": str(expiration)}


def users_stop(call: Call) -> None:
    """Stop push for the mailbox; answers 204 whether or not a watch was set."""
    call.box.watch = None


def send_as_list(call: Call) -> dict[str, Any]:
    return {"sendAs": [dict(identity) for identity in call.box.send_as]}


def send_as_get(call: Call) -> dict[str, Any]:
    wanted = call.params["sendAsEmail"].lower()
    for identity in call.box.send_as:
        if identity["sendAsEmail"].lower() == wanted:
            return dict(identity)
    raise errors.not_found()


def get_vacation(call: Call) -> dict[str, Any]:
    return dict(call.box.vacation)


def update_vacation(call: Call) -> dict[str, Any]:
    """PUT semantics: the body replaces the settings; fields are type-checked as Gmail does."""
    data = call.json()
    settings: dict[str, Any] = {"enableAutoReply": False}
    for name, value in data.items():
        flag = name in _VACATION_FLAGS and isinstance(value, bool)
        if flag or (name in _VACATION_TEXTS and isinstance(value, str)):
            settings[name] = value
        elif name in _VACATION_TIMES and isinstance(value, str | int) and str(value).isdigit():
            settings[name] = str(value)
        else:
            raise errors.invalid_argument(f"Invalid value at 'vacation_settings.{name}'")
    start, end = settings.get("startTime"), settings.get("endTime")
    if start is not None and end is not None and int(end) <= int(start):
        raise errors.invalid_argument("End time must be after start time")
    call.box.vacation = settings
    return dict(settings)
