"""The linking stack's fixtures (emulator, audit log, linking over SQLite and PostgreSQL), shared
with tests/linking: deletion, dormancy and retention act on linked accounts."""

from tests.linking.conftest import audit_log, emu, linking  # noqa: F401  (fixtures)
