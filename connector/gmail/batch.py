"""Gmail batch wire format: multipart/mixed of application/http parts, both directions.

Built and parsed by hand on bytes: googleapiclient's own batch object targets Google's batch
URL whatever the endpoint and sends through httplib2, and a byte-level parser is both faster
and more forgiving (LF or CRLF, missing or reordered parts) than `email` for this format.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from connector.gmail.transport import HttpAnswer, HttpCall

MAX_BATCH_PARTS = 50  # Google accepts 100 but advises no more than 50
_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")
_LINE_RE = re.compile(rb"\r?\n")
_CONTENT_ID_RE = re.compile(r"<?(?:response-)?([^>]*)>?")
# Inner headers that describe the outer transport or that the outer request already carries.
_SKIPPED_INNER_HEADERS = frozenset({"accept-encoding", "user-agent", "x-goog-api-client"})


class BatchFormatError(ValueError):
    """The batch answer could not be parsed at all."""


@dataclass(frozen=True, slots=True)
class BatchRequest:
    content_type: str
    body: bytes


def encode_batch(calls: Sequence[HttpCall]) -> BatchRequest:
    """One multipart/mixed body; part `i` carries `Content-ID: <item-i>`."""
    if not 0 < len(calls) <= MAX_BATCH_PARTS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_PARTS} calls, got {len(calls)}")
    boundary = "batch_" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for index, call in enumerate(calls):
        url = urlsplit(call.uri)
        target = url.path + (f"?{url.query}" if url.query else "")
        lines = [
            f"--{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: <item-{index}>",
            "",
            f"{call.verb} {target} HTTP/1.1",
        ]
        lines += [
            f"{name}: {value}"
            for name, value in call.headers.items()
            if name.lower() not in _SKIPPED_INNER_HEADERS
        ]
        if call.body is not None:
            lines.append(f"Content-Length: {len(call.body)}")
        lines += ["", ""]
        chunks.append("\r\n".join(lines).encode("latin-1") + (call.body or b"") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return BatchRequest(f"multipart/mixed; boundary={boundary}", b"".join(chunks))


def _split_head(data: bytes) -> tuple[list[bytes], bytes]:
    match = _BLANK_LINE_RE.search(data)
    if match is None:
        return [line for line in _LINE_RE.split(data) if line], b""
    head = data[: match.start()]
    return [line for line in _LINE_RE.split(head) if line], data[match.end() :]


def _headers(lines: Sequence[bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            out[name.strip().lower()] = value.strip()
    return out


def _part_index(content_id: str) -> int | None:
    match = _CONTENT_ID_RE.fullmatch(content_id.strip())
    if match is None:
        return None
    _, _, number = match.group(1).rpartition("-")
    return int(number) if number.isdigit() else None


def _inner_answer(data: bytes) -> HttpAnswer | None:
    lines, body = _split_head(data.lstrip(b"\r\n"))
    if not lines:
        return None
    status_fields = lines[0].split(None, 2)
    if len(status_fields) < 2 or not status_fields[1].isdigit():
        return None
    return HttpAnswer(int(status_fields[1]), _headers(lines[1:]), body)


def decode_batch(content_type: str, body: bytes, size: int) -> list[HttpAnswer | None]:
    """Answers by part index; None where a part is missing or garbled (treat as retryable)."""
    match = _BOUNDARY_RE.search(content_type)
    if match is None:
        raise BatchFormatError("batch answer is not multipart with a boundary")
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    answers: list[HttpAnswer | None] = [None] * size
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        outer_lines, inner = _split_head(chunk.lstrip(b"\r\n"))
        index = _part_index(_headers(outer_lines).get("content-id", ""))
        if index is None or not 0 <= index < size:
            continue
        # The line break before the next delimiter belongs to the delimiter.
        if inner.endswith(b"\r\n"):
            inner = inner[:-2]
        elif inner.endswith(b"\n"):
            inner = inner[:-1]
        answers[index] = _inner_answer(inner)
    return answers
