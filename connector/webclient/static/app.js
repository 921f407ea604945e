// The web client's own script (served from 'self'; the CSP allows no inline script). Pages work
// without it: forms post and links navigate. htmx (vendored beside it) adds in-place updates.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Move focus to the page's heading after a full navigation so screen readers announce it.
  const main = document.getElementById("main");
  if (main && !location.hash) {
    const heading = main.querySelector("h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); }
  }
});

// Live updates: the inbox follows its account's change feed (server-sent events under the
// session cookie) and, when a change arrives, fetches the same page again and swaps in its
// rows, keeping the messages the user has ticked. Without the script the page is just static.
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("live-status");
  const rows = document.getElementById("message-rows");
  if (!status || !rows || !window.EventSource) { return; }
  let pending = null;
  const refresh = async () => {
    pending = null;
    const answer = await fetch(location.href, { credentials: "same-origin" });
    if (!answer.ok) { return; }
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html")
      .getElementById("message-rows");
    if (!fresh) { return; }
    const ticked = new Set([...rows.querySelectorAll("input[name=message_id]:checked")]
      .map((box) => box.value));
    rows.replaceChildren(...fresh.children);
    rows.querySelectorAll("input[name=message_id]").forEach((box) => {
      box.checked = ticked.has(box.value);
    });
    status.textContent = "The message list was updated.";
  };
  const source = new EventSource(status.dataset.events);
  source.addEventListener("change", () => {
    // A burst of changes (a sync of several messages) refreshes once.
    if (pending === null) { pending = setTimeout(refresh, 300); }
  });
});
