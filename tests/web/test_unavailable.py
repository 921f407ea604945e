"""Both stores unavailable answer alike: 503 problem+json with Retry-After; a real bug in SQL
stays a 500 (internal error), so a broken query is never dressed up as "try again"."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from connector.errors import AuditUnavailableError
from connector.web.errors import to_problem
from connector.web.problems import ProblemType


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        _wrapped(asyncpg.ConnectionDoesNotExistError("closed in the middle")),
        _wrapped(RuntimeError("dropped"), invalidated=True),
        _wrapped(asyncpg.exceptions.CannotConnectNowError("starting up")),
        sa_exc.OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=["refused", "timeout", "closed", "invalidated", "starting", "locked", "pool"],
)
def test_database_unreachable_is_503_with_retry_after(exc: BaseException) -> None:
    """Each way the connector database can be unreachable maps to database-unavailable."""
    problem = to_problem(exc)
    assert problem is not None
    assert problem.kind is ProblemType.DATABASE_UNAVAILABLE
    assert problem.status == 503
    assert int(problem.headers["Retry-After"]) >= 1


def test_audit_and_database_unavailable_agree() -> None:
    """The audit store down answers the same status and Retry-After as the database down."""
    audit = to_problem(AuditUnavailableError("AuditWriteError"))
    database = to_problem(ConnectionRefusedError(111, "refused"))
    assert audit is not None
    assert database is not None
    assert (audit.status, audit.headers) == (database.status, database.headers)


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT x", None, sqlite3.OperationalError("no such table: x")),
        _wrapped(asyncpg.exceptions.UndefinedColumnError("column x does not exist")),
        sa_exc.IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE failed")),
    ],
    ids=["no-table", "no-column", "integrity"],
)
def test_sql_bugs_stay_internal_errors(exc: BaseException) -> None:
    """A query that is wrong is not "temporarily unavailable": no problem type, so a 500."""
    assert to_problem(exc) is None
