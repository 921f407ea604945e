#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install, lint, type-check, and run every test against
# SQLite and a real, throwaway PostgreSQL server that this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

pgdir=$(mktemp -d /tmp/connector-pg.XXXXXX)
trap 'bash scripts/pg.sh stop "$pgdir"' EXIT
CONNECTOR_TEST_PG_URL=$(bash scripts/pg.sh start "$pgdir")
export CONNECTOR_TEST_PG_URL
export CONNECTOR_REQUIRE_PG=1  # PostgreSQL tests fail, never skip, when the server is missing

# The web client's browser tests drive the OS Chromium through Playwright (never
# `playwright install`, which downloads a browser of its own); install it when it is missing.
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export CONNECTOR_REQUIRE_BROWSER=1  # browser tests fail, never skip, without Chromium

echo "== ruff"
.venv/bin/ruff check connector audit tests scripts
echo "== mypy (strict)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
