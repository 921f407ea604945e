"""Starting a link is a 201 whose Location is the link attempt's disclosure page."""

from __future__ import annotations

from pathlib import Path

from connector.demo import running_demo


async def test_starting_a_link_answers_location(tmp_path: Path) -> None:
    """POST /v1/accounts/link: 201, Location equals the disclosure_url in the body."""
    async with (
        running_demo(tmp_path / "demo", 0) as demo,
        demo.http.post(f"{demo.base}/v1/accounts/link", headers=demo.auth("alice")) as resp,
    ):
        assert resp.status == 201
        body = await resp.json()
        assert resp.headers["Location"] == body["disclosure_url"]
