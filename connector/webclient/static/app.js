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
