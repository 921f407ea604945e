"""DDL migrations owned by the audit package, for SQLite and PostgreSQL.

Each migration is a list of statements, applied in order inside one transaction, and recorded in
`audit_schema`. `audit_meta` holds the marker row ("kind" = "audit-log") that tells the CLI a
database is an audit log. Every table is append-only in the engine:

* both engines: BEFORE UPDATE / BEFORE DELETE triggers that raise;
* PostgreSQL also: a BEFORE TRUNCATE statement trigger, tables owned by the NOLOGIN role
  `audit_owner`, and a service role `audit_writer` holding only SELECT and INSERT, so that even
  dropping a trigger needs the owner's (or a superuser's) rights.
"""

from __future__ import annotations

LATEST_VERSION = 1
MARKER_KEY = "kind"
MARKER_VALUE = "audit-log"
OWNER_ROLE = "audit_owner"
WRITER_ROLE = "audit_writer"

# Tables whose rows are never changed once written.
APPEND_ONLY_TABLES = (
    "audit_events",
    "audit_checkpoints",
    "audit_keys",
    "audit_meta",
    "audit_schema",
)

_EVENT_INDEXES = (
    "CREATE INDEX audit_events_account ON audit_events (account_id, seq)",
    "CREATE INDEX audit_events_actor ON audit_events (actor_id, seq)",
    "CREATE INDEX audit_events_action ON audit_events (action, seq)",
    "CREATE INDEX audit_events_time ON audit_events (time)",
)


def _tables(integer: str, blob: str) -> list[str]:
    """The tables both engines share; only the 64-bit integer and byte-string types differ."""
    return [
        "CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE audit_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        f"""CREATE TABLE audit_events (
            seq {integer} PRIMARY KEY,
            time TEXT NOT NULL,
            account_id TEXT,
            actor_id TEXT NOT NULL,
            action TEXT NOT NULL,
            purpose TEXT,
            decision TEXT NOT NULL,
            body TEXT NOT NULL,
            prev_hash {blob} NOT NULL,
            hash {blob} NOT NULL
        )""",
        f"""CREATE TABLE audit_checkpoints (
            seq {integer} PRIMARY KEY,
            head_hash TEXT NOT NULL,
            time TEXT NOT NULL,
            key_id TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
        """CREATE TABLE audit_keys (
            key_id TEXT PRIMARY KEY, public_pem TEXT NOT NULL, added_at TEXT NOT NULL
        )""",
        *_EVENT_INDEXES,
    ]


def _sqlite_v1() -> list[str]:
    # seq INTEGER PRIMARY KEY is the rowid: appends go to the end of the b-tree, no separate index.
    statements = _tables("INTEGER", "BLOB")
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
            )
    return statements


def _pg_role(name: str, login: bool) -> str:
    # Roles are cluster-wide and several databases (or processes) may race to create them.
    return f"""DO $$ BEGIN
        CREATE ROLE {name} {"LOGIN" if login else "NOLOGIN"};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$"""


def _pg_v1() -> list[str]:
    statements = [
        _pg_role(OWNER_ROLE, login=False),
        _pg_role(WRITER_ROLE, login=True),
        *_tables("BIGINT", "BYTEA"),
        """CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""",
        f"ALTER FUNCTION audit_refuse() OWNER TO {OWNER_ROLE}",
    ]
    for table in APPEND_ONLY_TABLES:
        statements += [
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()",
            f"ALTER TABLE {table} OWNER TO {OWNER_ROLE}",
            f"REVOKE ALL ON {table} FROM PUBLIC",
            f"GRANT SELECT ON {table} TO {WRITER_ROLE}",
        ]
    statements += [
        f"GRANT INSERT ON audit_events, audit_checkpoints, audit_keys TO {WRITER_ROLE}",
    ]
    return statements


SQLITE_MIGRATIONS: dict[int, list[str]] = {1: _sqlite_v1()}
POSTGRES_MIGRATIONS: dict[int, list[str]] = {1: _pg_v1()}
