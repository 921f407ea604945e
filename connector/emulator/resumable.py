"""Resumable uploads (`uploadType=resumable`), the protocol googleapiclient uses for
`MediaIoBaseUpload(resumable=True)`: an initial request returns a session `Location`, then PUTs
carry the bytes with `Content-Range`; 308 + `Range` until complete, then the method's answer.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from connector.emulator import errors
from connector.emulator.sending import SEND_SIZE_LIMIT
from connector.emulator.upload import metadata_json, too_large

_RANGE_RE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")
MAX_SESSIONS = 1000


@dataclass
class UploadSession:
    method_id: str
    params: dict[str, str]
    email: str
    query: dict[str, list[str]]
    metadata: dict[str, Any]
    data: bytearray = field(default_factory=bytearray)

    def as_multipart(self) -> tuple[str, bytes]:
        """The completed upload re-expressed as the equivalent multipart request."""
        boundary = "emu_resumable_" + secrets.token_hex(8)
        body = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
            + json.dumps(self.metadata).encode()
            + f"\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n".encode()
            + bytes(self.data)
            + f"\r\n--{boundary}--".encode()
        )
        return f"multipart/related; boundary={boundary}", body


class ResumableSessions:
    def __init__(self) -> None:
        self._sessions: dict[str, UploadSession] = {}

    def start(
        self,
        method_id: str,
        params: dict[str, str],
        email: str,
        query: dict[str, list[str]],
        body: bytes,
    ) -> str:
        metadata = metadata_json(body, "Invalid JSON payload received.")
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        upload_id = "ADPycd" + secrets.token_urlsafe(24)
        self._sessions[upload_id] = UploadSession(method_id, params, email, query, metadata)
        return upload_id

    def get(self, upload_id: str) -> UploadSession:
        session = self._sessions.get(upload_id)
        if session is None:
            raise errors.not_found()
        return session

    def add_chunk(self, upload_id: str, content_range: str | None, chunk: bytes) -> int | None:
        """Store a chunk; returns bytes received if more are expected, None when complete."""
        session = self.get(upload_id)
        total: int | None = None
        if content_range:
            match = _RANGE_RE.fullmatch(content_range.strip())
            if match is None:
                raise errors.bad_request("Invalid Content-Range header")
            start, _end, size = match.groups()
            if start is not None and int(start) != len(session.data):
                raise errors.bad_request("Content-Range does not continue the upload")
            total = None if size == "*" else int(size)
        session.data += chunk
        if len(session.data) > SEND_SIZE_LIMIT:
            del self._sessions[upload_id]
            raise too_large()
        if total is not None and len(session.data) < total:
            return len(session.data)
        return None

    def finish(self, upload_id: str) -> UploadSession:
        return self._sessions.pop(upload_id)
