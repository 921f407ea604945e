"""The emulator answers with the same structure as recorded Gmail responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.emulator.mime_parse import b64url_decode
from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, Api

RECORDED = Path("/work/shared/fixtures/gmail/recorded")


def skeleton(value: Any) -> Any:
    """Keys, types and nesting, without the values."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(v) for v in value[:1]]
    return type(value).__name__


def assert_superset(expected: Any, actual: Any, path: str = "$") -> None:
    """Every key/type in the recording exists with the same type in the emulator answer."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, sub in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_superset(sub, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert actual, path
        assert_superset(expected[0], actual[0], f"{path}[0]")
    else:
        assert expected == actual, f"{path}: {expected} != {actual}"


def rebuild_raw(recorded: dict[str, Any]) -> bytes:
    """The RFC 822 bytes equivalent to a recorded full-format message."""
    payload = recorded["payload"]
    head = "".join(f"{h['name']}: {h['value']}\r\n" for h in payload["headers"])
    if "parts" not in payload:
        return head.encode() + b"\r\n" + b64url_decode(payload["body"]["data"])
    boundary = payload["headers"][-1]["value"].split("boundary=")[1]
    body = b""
    for part in payload["parts"]:
        part_head = "".join(f"{h['name']}: {h['value']}\r\n" for h in part["headers"])
        body += f"--{boundary}\r\n{part_head}\r\n".encode()
        body += b64url_decode(part["body"]["data"]) + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return head.encode() + b"\r\n" + body


@pytest.mark.parametrize("name", ["plain_text_message", "multipart_alternative_message"])
async def test_recorded_message_structure(name: str, emu: Emulator, api: Api) -> None:
    """Store the recorded message's bytes, fetch it, and compare structure and part bodies."""
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    box = emu.state.mailbox(ALICE)
    assert box is not None
    msg = box.add_message(rebuild_raw(recorded), list(recorded["labelIds"]))
    status, got = await api.get(f"messages/{msg.id}")
    assert status == 200
    assert_superset(skeleton(recorded), skeleton(got))
    assert got["snippet"] == recorded["snippet"]
    if "parts" in recorded["payload"]:
        for want, have in zip(recorded["payload"]["parts"], got["payload"]["parts"], strict=True):
            assert have["partId"] == want["partId"]
            assert have["body"] == want["body"]
    else:
        assert got["payload"]["body"] == recorded["payload"]["body"]
    names = [h["name"] for h in got["payload"]["headers"]]
    assert names == [h["name"] for h in recorded["payload"]["headers"]]


async def test_recorded_profile_structure(api: Api) -> None:
    """getProfile has exactly the recorded keys and types."""
    recorded = json.loads((RECORDED / "get_profile.json").read_text())
    _, got = await api.get("profile")
    assert skeleton(got) == skeleton(recorded)
