"""The web client: server-rendered pages under /app for the owner, operators and reviewers.

Every page calls the same services and plans as the JSON API (never Gmail directly) and runs the
same route-level policy decision as the API route it mirrors (`pages.page`). The browser holds a
signed session cookie obtained from the platform's JWT (`session`), every state change carries a
CSRF token, and every answer a strict Content-Security-Policy (`security`).
"""
