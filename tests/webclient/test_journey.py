"""The web client end to end in Chromium: link, read, search, compose with an attachment, reply
in thread, consent to a support read, the operator's read and its refusal after revoking, the
owner's 'Who accessed my mail', a second operator's approval, the reviewer's verify, export,
unlink. Tests run in file order and share the session's stack (unlink is last)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from connector.accounts.scopes import GMAIL_MODIFY
from connector.web.auth import Role
from tests.webclient.conftest import Live, consent_flow, signed_in

ATTACHMENT = b"%PDF-1.4 quarterly numbers\n"


def _inbox(live: Live, account: str) -> str:
    return f"{live.base}/app/accounts/{account}/inbox"


def test_sign_in_sets_an_httponly_session_and_links_through_the_disclosure(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """The hand-off token leaves the URL, the cookie is HttpOnly/Lax, the linked account shows."""
    page = signed_in(live, context)
    assert "token=" not in page.url
    assert page.url.endswith("/app/accounts")
    cookie = next(c for c in context.cookies() if c["name"].endswith("connector_session"))
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["expires"] > 0  # a session with an expiry, not a browser-lifetime cookie
    assert page.get_by_role("link", name="Open inbox").count() == 1
    assert "read" in page.locator(".card").inner_text()
    page.screenshot(path=str(shots / "01-accounts.png"), full_page=True)


def test_inbox_lists_searches_and_opens_a_thread(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """Headers and unread state in the list; a search narrows it; a thread shows the body."""
    page = signed_in(live, context)
    page.goto(_inbox(live, alice_account))
    rows = page.locator("table.messages tbody tr")
    assert rows.count() >= 2
    box = live.alice_box()
    for row in rows.all():  # bold exactly when Gmail says UNREAD
        unread = "UNREAD" in box.messages[row.get_attribute("data-message-id")].label_ids
        assert (row.get_attribute("class") == "unread") is unread
    page.screenshot(path=str(shots / "04-inbox.png"), full_page=True)
    subject = rows.first.locator("td a").inner_text().strip()
    word = subject.split()[0]
    page.get_by_label("Search mail").fill(f"subject:{word}")
    page.get_by_label("Folder").select_option("")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=subject*")
    found = [t.strip() for t in page.locator("table.messages tbody td a").all_inner_texts()]
    assert found
    assert all(word.lower() in t.lower() for t in found)
    page.locator("table.messages tbody td a").first.click()
    page.wait_for_url("**/threads/**")
    frame = page.frame_locator("iframe.mailbody").first
    assert frame.locator("body").inner_text(timeout=5000).strip()
    assert page.get_by_role("link", name="Reply", exact=True).count() >= 1
    page.screenshot(path=str(shots / "05-thread.png"), full_page=True)


def test_inbox_pages_with_sealed_tokens(live: Live, context: Any, alice_account: str) -> None:
    """Past a page of messages, "Older messages" shows the next page, none repeated."""
    box = live.alice_box()

    async def fill() -> list[str]:
        added = []
        for i in range(30):
            raw = (f"From: Newsletter <news@example.org>\r\nTo: {box.email}\r\n"
                   f"Subject: Issue {i}\r\n\r\nNumber {i}.\r\n").encode()  # fmt: skip
            added.append(box.add_message(raw, ["INBOX"]).id)
        return added

    async def empty(ids: list[str]) -> None:
        for message in ids:
            box.delete_message(box.messages[message])

    added: list[str] = live.call(fill())
    try:
        page = signed_in(live, context)
        page.goto(_inbox(live, alice_account))
        ids = "rows => rows.map(r => r.dataset.messageId)"
        first = page.locator("table.messages tbody tr").evaluate_all(ids)
        assert len(first) == 25
        page.get_by_role("link", name="Older messages").click()
        page.wait_for_url("**page_token=**")
        second = page.locator("table.messages tbody tr").evaluate_all(ids)
        assert second
        assert not set(first) & set(second)
        assert set(added) <= set(first) | set(second)
    finally:
        live.call(empty(added))


def test_compose_with_an_attachment_sends_and_the_attachment_downloads(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """Autosaved as one draft, sent once with its file (draft removed), the file downloads."""
    page = signed_in(live, context)
    page.goto(f"{live.base}/app/accounts/{alice_account}/compose")
    page.get_by_label("To", exact=True).fill("bob@example.com")
    page.get_by_label("Subject").fill("Quarterly numbers")
    page.get_by_label("Message").fill("Bob, the numbers are attached.")
    page.get_by_label("Attachments").set_input_files(
        files=[{"name": "numbers.pdf", "mimeType": "application/pdf", "buffer": ATTACHMENT}]
    )
    status = page.locator("#draft-status")
    status.get_by_text("Draft saved").wait_for()  # autosaved while typing (htmx)
    box = live.alice_box()
    assert [d for d in box.drafts.values() if b"Quarterly numbers" in d.message.raw]
    page.get_by_label("Message").press_sequentially(" Thanks!")
    page.wait_for_timeout(2000)
    saved = [d for d in box.drafts.values() if b"Quarterly numbers" in d.message.raw]
    assert len(saved) == 1  # replaced, not a second draft
    page.screenshot(path=str(shots / "06-compose.png"), full_page=True)
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/threads/**notice=sent")
    assert not [d for d in box.drafts.values() if b"Quarterly numbers" in d.message.raw]
    assert "Your message was sent." in page.locator("#notice").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="numbers.pdf").click()
    download = info.value
    assert download.suggested_filename == "numbers.pdf"
    assert Path(download.path()).read_bytes() == ATTACHMENT
    sent = sum(1 for m in live.alice_box().messages.values()
               if "SENT" in m.label_ids and b"Quarterly numbers" in m.raw)  # fmt: skip
    assert sent == 1


def test_reply_stays_in_the_thread(live: Live, context: Any, alice_account: str) -> None:
    """Reply is prefilled (To, Re: subject) and lands in the same thread."""
    page = signed_in(live, context)
    page.goto(_inbox(live, alice_account))
    page.locator("table.messages tbody td a").first.click()
    page.wait_for_url("**/threads/**")
    thread_url = page.url.split("?")[0]
    before = page.locator("article.message").count()
    page.get_by_role("link", name="Reply", exact=True).first.click()
    assert page.get_by_label("Subject").input_value().startswith("Re: ")
    assert page.get_by_label("To", exact=True).input_value()
    page.get_by_label("Message").fill("Sounds good, see you then.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**notice=sent")
    assert page.url.split("?")[0] == thread_url
    assert page.locator("article.message").count() == before + 1


def _consent_row(page: Any, grantee: str) -> Any:
    return page.locator("table.consents tbody tr", has_text=grantee).first


def test_consent_lets_the_operator_read_exactly_that_message_until_revoked(
    live: Live, browser: Any, alice_account: str, shots: Path
) -> None:
    """The operator reads exactly the consented message until revoked; the owner sees it all."""
    alice = browser.new_context()
    olivia = browser.new_context()
    try:
        page = signed_in(live, alice)
        page.goto(_inbox(live, alice_account))
        ids = page.locator("table.messages tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.messageId)"
        )
        chosen, other = ids[0], ids[1]
        page.locator(f"#sel-{chosen}").check()
        page.get_by_role("button", name="Grant support access…").click()
        page.get_by_label("Support person (their staff id)").fill("op-olivia")
        page.get_by_role("button", name="Grant access").click()
        page.wait_for_url("**notice=consent_granted")
        consent_id = _consent_row(page, "op-olivia").get_attribute("data-consent-id")
        assert consent_id
        page.screenshot(path=str(shots / "07-consents.png"), full_page=True)

        op = signed_in(live, olivia, "op-olivia", Role.OPERATOR)
        assert op.url.endswith("/app/operator")
        read = f"{live.base}/app/operator/read?account_id={alice_account}&consent_id={consent_id}"
        op.goto(f"{read}&message_id={chosen}")
        assert op.get_by_role("heading", name="Support read").count() == 1
        assert consent_id in op.locator(".basis").inner_text()
        assert chosen in op.locator("dl.meta").inner_text()
        op.screenshot(path=str(shots / "10-support-read.png"), full_page=True)
        refused = op.goto(f"{read}&message_id={other}")
        assert refused is not None
        assert refused.status == 403

        page.goto(f"{live.base}/app/accounts/{alice_account}/consents")
        _consent_row(page, "op-olivia").get_by_role("button", name="Revoke").click()
        page.wait_for_url("**notice=consent_revoked")
        assert "revoked" in _consent_row(page, "op-olivia").inner_text()
        after = op.goto(f"{read}&message_id={chosen}")
        assert after is not None
        assert after.status == 403

        page.goto(f"{live.base}/app/accounts/{alice_account}/history")
        rows = page.locator("table.history tbody tr", has_text="op-olivia")
        texts = rows.all_inner_texts()
        assert any("read a message" in t and "Allowed" in t for t in texts)
        assert sum("Refused" in t for t in texts) >= 2
        assert any("the access you granted" in t for t in texts)
        assert not page.locator("table.history tbody tr", has_text="Platform user alice").count()
        page.screenshot(path=str(shots / "08-who-accessed.png"), full_page=True)
    finally:
        alice.close()
        olivia.close()


def test_a_consent_to_a_support_case_is_read_by_whoever_works_it(
    live: Live, browser: Any, alice_account: str
) -> None:
    """A consent to a case: an operator working that case reads through the console's form."""
    alice, oscar = browser.new_context(), browser.new_context()
    try:
        page = signed_in(live, alice)
        page.goto(_inbox(live, alice_account))
        chosen = page.locator("table.messages tbody tr").first.get_attribute("data-message-id")
        page.goto(f"{live.base}/app/accounts/{alice_account}/consents?message_id={chosen}")
        page.get_by_label("Whoever works my support case").check()
        page.get_by_label("Support case id").fill("CASE-7")
        page.get_by_role("button", name="Grant access").click()
        page.wait_for_url("**notice=consent_granted")
        row = page.locator("table.consents tbody tr", has_text="whoever works case CASE-7")
        consent_id = row.get_attribute("data-consent-id")
        op = signed_in(live, oscar, "op-oscar", Role.OPERATOR)
        op.get_by_label("Account id").first.fill(alice_account)
        op.get_by_label("Message id", exact=True).fill(str(chosen))
        op.get_by_label("Consent id (the owner's consent)").fill(str(consent_id))
        op.get_by_label("Support case you are working").fill("CASE-7")
        op.get_by_role("button", name="Read", exact=True).click()
        op.wait_for_url("**/app/operator/read?**support_case=CASE-7**")
        assert op.get_by_role("heading", name="Support read").count() == 1
        assert str(chosen) in op.locator("dl.meta").inner_text()
        other_case = op.goto(op.url.replace("CASE-7", "CASE-8"))
        assert other_case is not None
        assert other_case.status == 403
    finally:
        alice.close()
        oscar.close()


def test_a_second_operator_decides_an_access_request(
    live: Live, browser: Any, alice_account: str, shots: Path
) -> None:
    """Only a second operator approves; the requester then reads under that stated basis."""
    olivia, oscar = browser.new_context(), browser.new_context()
    box = live.alice_box()
    named = next(m.id for m in box.newest_first() if "INBOX" in m.label_ids)
    try:
        page = signed_in(live, olivia, "op-olivia", Role.OPERATOR)
        page.get_by_label("Account id").nth(1).fill(alice_account)
        page.get_by_label("Case reference").fill("SEC-42")
        page.get_by_label("Reason").fill("Phishing report from the owner's team")
        page.get_by_label("Message ids (comma separated)").fill(named)
        page.get_by_role("button", name="File request").click()
        page.wait_for_url("**notice=request_created")
        row = page.locator("table.requests tbody tr", has_text="SEC-42")
        assert "awaiting another operator" in row.inner_text()
        assert row.get_by_role("button").count() == 0
        second = signed_in(live, oscar, "op-oscar", Role.OPERATOR)
        second.screenshot(path=str(shots / "09-operator.png"), full_page=True)
        second.get_by_role("button", name="Approve request for case SEC-42").click()
        second.wait_for_url("**notice=request_approved")
        assert "SEC-42" in second.locator("section", has_text="Decided").inner_text()
        request_id = row.get_attribute("data-request-id")
        read = page.goto(f"{live.base}/app/operator/read?account_id={alice_account}"
                         f"&access_request_id={request_id}&message_id={named}")  # fmt: skip
        assert read is not None
        assert read.status == 200
        assert "approved by a second operator" in page.locator(".basis").inner_text()
        second.goto(f"{live.base}/app/operator/aggregates")
        assert second.get_by_role("heading", name=re.compile("Usage aggregates")).count() == 1
        second.screenshot(path=str(shots / "11-aggregates.png"), full_page=True)
    finally:
        olivia.close()
        oscar.close()


def test_reviewer_filters_verifies_and_exports_the_trail(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """The trail is queried with a filter, verified authentic (progress shown), exported."""
    page = signed_in(live, context, "rev-rita", Role.REVIEWER)
    page.get_by_label("Actor id").fill("op-olivia")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**actor_id=op-olivia**")
    actors = page.locator("table.events tbody tr td:nth-child(3)").all_inner_texts()
    assert actors
    assert all("op-olivia" in a for a in actors)
    page.get_by_role("button", name="Verify hash chain and signatures").click()
    report = page.locator("#verify-report")
    report.wait_for()
    assert "Intact" in report.inner_text()
    assert "authentic" in report.inner_text()
    page.screenshot(path=str(shots / "12-reviewer.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="JSON lines").click()
    lines = Path(info.value.path()).read_text().splitlines()
    assert lines
    assert all(json.loads(line)["event"]["actor"]["id"] == "op-olivia" for line in lines)


def test_export_my_data_is_one_json_file(live: Live, context: Any, alice_account: str) -> None:
    """The export holds the account, the consents and the access history."""
    page = signed_in(live, context)
    page.goto(_inbox(live, alice_account))
    with page.expect_download() as info:
        page.get_by_role("link", name="Export my data").click()
    data = json.loads(Path(info.value.path()).read_text())
    assert data["account"]["id"] == alice_account
    assert any(c["grantee_id"] == "op-olivia" for c in data["consents"])
    assert data["accessed_by_others"] >= 1


def _labels_of(live: Live, message_id: str) -> set[str]:
    box = live.alice_box()
    return set(box.messages[message_id].label_ids)


def test_organize_several_messages_archive_label_star_and_trash(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """Refused until organize is turned on; then archive two at once, label, star, trash."""
    page = signed_in(live, context)
    page.goto(_inbox(live, alice_account))
    ids = page.locator("table.messages tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.messageId)"
    )
    page.locator(f"#sel-{ids[0]}").check()
    page.get_by_role("button", name="Archive").click()
    assert page.get_by_role("heading", name="A Gmail permission was not granted").count() == 1
    assert "INBOX" in _labels_of(live, ids[0])

    # Turn organize on from the accounts page: the disclosure, then Google asks for gmail.modify.
    page.goto(f"{live.base}/app/accounts")
    page.get_by_role("button", name="Turn on organize").click()
    assert GMAIL_MODIFY in consent_flow(live, page)
    page.goto(f"{live.base}/app/accounts")
    assert "organize" in page.locator(".card").inner_text()
    assert page.get_by_role("button", name="Turn on organize").count() == 0

    async def add_label() -> None:
        live.alice_box().create_label("Receipts")

    live.call(add_label())
    page.goto(_inbox(live, alice_account))
    page.screenshot(path=str(shots / "04b-inbox-organize.png"), full_page=True)
    page.locator(f"#sel-{ids[0]}").check()
    page.locator(f"#sel-{ids[1]}").check()
    page.get_by_role("button", name="Archive").click()
    page.wait_for_url("**notice=organized")
    assert "INBOX" not in _labels_of(live, ids[0])
    assert "INBOX" not in _labels_of(live, ids[1])
    shown = page.locator("table.messages tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.messageId)"
    )
    assert ids[0] not in shown
    assert ids[1] not in shown

    page.get_by_label("Folder").select_option("")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**label=")
    page.locator(f"#sel-{ids[0]}").check()
    page.get_by_label("Label", exact=True).select_option(label="Receipts")
    page.get_by_role("button", name="Apply label").click()
    page.wait_for_url("**notice=organized")
    receipts = live.alice_box().label_by_name("Receipts")
    assert receipts is not None
    assert receipts.id in _labels_of(live, ids[0])
    page.locator(f"#sel-{ids[0]}").check()
    page.get_by_role("button", name="Star", exact=True).click()
    page.wait_for_url("**notice=organized")
    assert "STARRED" in _labels_of(live, ids[0])
    page.locator(f"#sel-{ids[0]}").check()
    page.get_by_role("button", name="Mark unread").click()
    page.wait_for_url("**notice=organized")
    assert "UNREAD" in _labels_of(live, ids[0])
    assert page.locator(f"tr[data-message-id='{ids[0]}']").get_attribute("class") == "unread"

    page.goto(_inbox(live, alice_account))
    page.locator("table.messages tbody td a").first.click()
    page.wait_for_url("**/threads/**")
    trashed = page.locator("article.message").first.get_attribute("data-message-id")
    page.locator("form.toolbar").get_by_role("button", name="Trash").click()
    page.wait_for_url("**/inbox?notice=organized")
    assert "TRASH" in _labels_of(live, trashed)


def test_unlink_shows_the_receipt(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    """Unlink revokes at Google and deletes what the connector holds; the receipt says so."""
    page = signed_in(live, context)
    page.goto(f"{live.base}/app/accounts/{alice_account}/unlink")
    page.screenshot(path=str(shots / "13-unlink.png"), full_page=True)
    page.get_by_role("button", name="Unlink and delete my data").click()
    assert page.get_by_role("heading", name="Account unlinked").count() == 1
    receipt = page.locator("dl.receipt").inner_text()
    assert alice_account in receipt
    assert "unlinked" in receipt
    page.screenshot(path=str(shots / "14-receipt.png"), full_page=True)
    page.goto(f"{live.base}/app/accounts")
    assert page.get_by_role("link", name="Open inbox").count() == 0
    live.state.pop("account", None)
