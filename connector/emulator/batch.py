"""Batch endpoint (`/batch`, `/batch/gmail/v1`): multipart/mixed of application/http parts.

Each part is dispatched through the same `GmailApi.handle` as a plain request, so it is
authorised and charged on its own; replies echo `Content-ID: <response-...>` as Google does.
"""

from __future__ import annotations

import re
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from connector.emulator import errors
from connector.emulator.api import ApiRequest, ApiResponse, GmailApi, error_response

MAX_BATCH_PARTS = 100
_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_LINE_RE = re.compile(rb"\r?\n")


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    match = re.search(rb"\r?\n\r?\n", data)
    if match is None:
        return [line.decode("latin-1") for line in _LINE_RE.split(data) if line], b""
    head = data[: match.start()]
    return [line.decode("latin-1") for line in _LINE_RE.split(head) if line], data[match.end() :]


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            out[name.strip().lower()] = value.strip()
    return out


def parse_batch(content_type: str, body: bytes) -> list[tuple[str, ApiRequest]]:
    match = _BOUNDARY_RE.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise errors.bad_request("Batch requests must be multipart/mixed with a boundary")
    delimiter = b"--" + match.group(1).encode()
    chunks = body.split(delimiter)[1:]
    parts: list[tuple[str, ApiRequest]] = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break
        outer_lines, inner = _split_head(chunk.lstrip(b"\r\n"))
        content_id = _headers(outer_lines).get("content-id", "")
        request_lines, request_body = _split_head(inner)
        if not request_lines:
            raise errors.bad_request("Empty batch part")
        method, _, rest = request_lines[0].partition(" ")
        target = rest.rsplit(" ", 1)[0] if rest.upper().endswith(("HTTP/1.1", "HTTP/1.0")) else rest
        url = urlsplit(target.strip())
        request_body = request_body.removesuffix(b"\r\n").removesuffix(b"\n")
        parts.append(
            (
                content_id,
                ApiRequest(
                    method.upper(),
                    url.path,
                    parse_qs(url.query, keep_blank_values=True),
                    _headers(request_lines[1:]),
                    request_body,
                ),
            )
        )
    if len(parts) > MAX_BATCH_PARTS:
        raise errors.invalid_argument(f"Too many requests in batch: maximum is {MAX_BATCH_PARTS}")
    return parts


def _response_id(content_id: str) -> str:
    inner = content_id.strip().removeprefix("<").removesuffix(">")
    return f"<response-{inner}>"


def _render_part(content_id: str, response: ApiResponse) -> bytes:
    reason = HTTPStatus(response.status).phrase if response.status else "Service Unavailable"
    lines = [
        "Content-Type: application/http",
        f"Content-ID: {_response_id(content_id)}",
        "",
        f"HTTP/1.1 {response.status} {reason}",
        *(f"{k}: {v}" for k, v in response.headers.items()),
        f"Content-Length: {len(response.body)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + response.body


async def run_batch(
    api: GmailApi, content_type: str, body: bytes, outer_auth: str | None
) -> tuple[bytes, str]:
    """Execute a batch; returns (response body, response content type)."""
    parts = parse_batch(content_type, body)
    api.stats.batches += 1
    rendered: list[bytes] = []
    for content_id, request in parts:
        if outer_auth and "authorization" not in request.headers:
            request.headers = {**request.headers, "authorization": outer_auth}
        response = await api.handle(request)
        if response.drop:
            # A part cannot drop the shared connection; Google reports such failures as 503.
            response = error_response(errors.backend_error(503))
        rendered.append(_render_part(content_id, response))
    boundary = "batch_" + secrets.token_hex(12)
    payload = b"".join(f"--{boundary}\r\n".encode() + part + b"\r\n" for part in rendered)
    payload += f"--{boundary}--\r\n".encode()
    return payload, f"multipart/mixed; boundary={boundary}"
