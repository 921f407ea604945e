"""Media upload bodies (`/upload/gmail/v1/...`): uploadType=media and multipart.

googleapiclient sends `multipart/related` with a JSON metadata part then the message/rfc822
part; `media` sends the message bytes alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from connector.emulator import errors
from connector.emulator.sending import SEND_SIZE_LIMIT

_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def too_large() -> errors.GmailError:
    return errors.GmailError(
        413, f"Media larger than: {SEND_SIZE_LIMIT}", errors.Reason.UPLOAD_TOO_LARGE
    )


def metadata_json(body: bytes, invalid: str) -> dict[str, Any]:
    """An upload's JSON metadata: {} when empty or not an object; 400 `invalid` when not JSON."""
    if not body.strip():
        return {}
    try:
        loaded = json.loads(body)
    except ValueError:
        raise errors.bad_request(invalid) from None
    return loaded if isinstance(loaded, dict) else {}


def _parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    delimiter = b"--" + boundary.encode()
    parts: list[tuple[dict[str, str], bytes]] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        part = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.partition(b"\n\n")
        headers: dict[str, str] = {}
        for line in re.split(rb"\r?\n", head):
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        parts.append((headers, content))
    return parts


def parse_upload(
    upload_type: str | None, content_type: str, body: bytes
) -> tuple[dict[str, Any], bytes]:
    """Return (metadata JSON, message bytes) from an upload request body."""
    if upload_type == "media":
        if len(body) > SEND_SIZE_LIMIT:
            raise too_large()
        return {}, body
    if upload_type != "multipart":
        raise errors.invalid_argument(
            f"Invalid upload type: {upload_type!r}; the emulator accepts media and multipart"
        )
    match = _BOUNDARY_RE.search(content_type)
    if not content_type.lower().startswith("multipart/") or match is None:
        raise errors.bad_request("Multipart upload needs a multipart/related body with a boundary")
    parts = _parts(body, match.group(1))
    if len(parts) != 2:
        raise errors.bad_request("Multipart upload needs exactly a metadata part and a media part")
    (meta_headers, meta_bytes), (_media_headers, media) = parts
    if len(media) > SEND_SIZE_LIMIT:
        raise too_large()
    metadata = metadata_json(meta_bytes, "Invalid JSON in upload metadata part")
    if "json" not in meta_headers.get("content-type", "application/json"):
        raise errors.bad_request("The first multipart part must be application/json metadata")
    return metadata, media
