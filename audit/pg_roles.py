"""What the service's PostgreSQL login may do to the audit tables: INSERT and SELECT, nothing else.

`SET ROLE audit_writer` on an administrator's session is no restriction: `RESET ROLE` (or a
`SET ROLE` back) gives the session its login's rights again. So the service logs in as a role
that holds nothing more than INSERT and SELECT (`audit_writer`, created by the migration), the
migrations run separately as the owner, and before the service writes anything it checks its
login here and refuses to start with more rights than that.

Checked for the login and every role it can become (membership, with or without INHERIT):
not a superuser, no CREATEROLE (it could grant itself anything), not the tables' owner, and no
UPDATE, DELETE, TRUNCATE, TRIGGER or REFERENCES on any audit table, and not the owner of their
schema (who may drop them).
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]

from audit.schema import APPEND_ONLY_TABLES

FORBIDDEN = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")

_ROLES = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole
FROM pg_roles r
WHERE pg_has_role(session_user, r.oid, 'MEMBER')
ORDER BY r.rolname = session_user DESC, r.rolname
"""
_OWNED = """
SELECT c.relname FROM pg_class c
WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r'
  AND pg_has_role($2, c.relowner, 'MEMBER')
ORDER BY c.relname
"""

_SCHEMA_OWNED = """
SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
WHERE c.relname = 'audit_events' AND pg_has_role($1, n.nspowner, 'MEMBER')
"""
_HELD = """
SELECT t, p FROM unnest($2::text[]) WITH ORDINALITY AS tables(t, i),
                 unnest($3::text[]) WITH ORDINALITY AS privileges(p, j)
WHERE has_table_privilege($1, t, p)
ORDER BY i, j
"""


async def privilege_problems(conn: asyncpg.Connection) -> list[str]:
    """Everything this session's login could do to the audit tables beyond INSERT/SELECT."""
    login = str(await conn.fetchval("SELECT session_user"))
    problems: list[str] = []
    for name, superuser, createrole in await conn.fetch(_ROLES):
        who = f"login {login}" if name == login else f"login {login} (through role {name})"
        if superuser:
            problems.append(f"{who} is a superuser")
            continue
        if createrole:
            problems.append(f"{who} has CREATEROLE")
        for table in await conn.fetch(_OWNED, list(APPEND_ONLY_TABLES), name):
            problems.append(f"{who} owns {table[0]}")
        for schema in await conn.fetch(_SCHEMA_OWNED, name):
            problems.append(f"{who} owns schema {schema[0]}, so it could drop the audit tables")
        held: dict[str, list[str]] = {}
        for table, privilege in await conn.fetch(_HELD, name, list(APPEND_ONLY_TABLES),
                                                 list(FORBIDDEN)):  # fmt: skip
            held.setdefault(table, []).append(privilege)
        problems += [f"{who} holds {', '.join(p)} on {t}" for t, p in held.items()]
    return sorted(set(problems), key=problems.index)
