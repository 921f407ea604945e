"""A sync run's commit as one PostgreSQL statement, run in autocommit: one round trip.

The transaction it replaces (`BEGIN`; lock the account's row; append the changes; upsert the
cursor; notify the other instances; `COMMIT`) took six round trips on every run. Here each step
is a CTE of one statement:

- `locked` takes the account's row lock; the appends and the cursor read their rows from it,
  so their seqs are drawn only once the lock is held: this account's feed writers still
  commit in seq order, and nothing is written for an account that is not linked;
- the changes arrive as arrays (`unnest ... WITH ORDINALITY`), so the statement has one shape
  whatever their number and SQLAlchemy compiles it once (a `VALUES` list of the rows would be
  compiled again on every run: it has no cache key);
- the relay notice is sent only when a change was appended.

The statement answers one row: `account` (NULL when the account is not linked) and `seqs` (the
appended seqs, NULL for none).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql

from connector.accounts.changes import Change
from connector.accounts.feed_relay import notice
from connector.accounts.models import ChangeRow, SyncStateRow
from connector.accounts.store import ACCOUNTS

_STATE = SyncStateRow.__table__  # type: ignore[attr-defined]
_CHANGE = ChangeRow.__table__  # type: ignore[attr-defined]
_TEXTS = postgresql.ARRAY(sa.String)
# The change columns sent as one array each (JSON ones as their text).
_ARRAYS = ("kind", "history_id", "message_id", "thread_id", "label_ids", "message_ids")


def commit_params(
    account_id: str, history_id: str, changes: Sequence[Change], now: datetime, full_sync: bool
) -> dict[str, Any]:
    """The parameters of `commit_statement` for one run."""
    told = notice(account_id)
    return {
        "account_id": account_id, "history_id": history_id, "now": now, "full_sync": full_sync,
        "channel": told["channel"], "payload": told["payload"],
        "kind": [c.kind.value for c in changes],
        "history_id_": [c.history_id for c in changes],
        "message_id": [c.message_id for c in changes],
        "thread_id": [c.thread_id for c in changes],
        "label_ids": [json.dumps(list(c.label_ids)) for c in changes],
        "message_ids": [json.dumps(list(c.message_ids)) for c in changes],
    }  # fmt: skip


@functools.cache
def commit_statement(relay: bool) -> sa.Select[Any]:
    """The commit; with `relay`, the other instances are told of appended changes."""
    account = sa.bindparam("account_id", type_=sa.String)
    now = sa.bindparam("now", type_=_STATE.c.updated_at.type)
    full_sync = sa.bindparam("full_sync", type_=sa.Boolean)
    lock = sa.select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == account).with_for_update()
    locked = lock.cte("locked")

    arrays = [sa.bindparam(f"{name}_" if name == "history_id" else name, type_=_TEXTS)
              for name in _ARRAYS]  # fmt: skip
    rows = func.unnest(*arrays).table_valued(*_ARRAYS, with_ordinality="n").render_derived()
    as_json = {"label_ids", "message_ids"}
    appended = [rows.c[name] if name not in as_json else sa.cast(rows.c[name], sa.JSON)
                for name in _ARRAYS]  # fmt: skip
    added = (
        sa.insert(_CHANGE)
        .from_select(
            ["account_id", *_ARRAYS, "created_at"],
            sa.select(locked.c.id, *appended, now)
            .select_from(locked.join(rows, sa.true()))
            .order_by(rows.c.n),
        )
        .returning(_CHANGE.c.seq)
        .cte("added")
    )

    moved = {
        "history_id": sa.bindparam("history_id", type_=sa.String),
        "consecutive_failures": sa.literal(0),
        "updated_at": now,
    }
    first_full_sync = sa.case((full_sync, now), else_=sa.null())
    state: dict[str, Any] = {"account_id": locked.c.id, **moved,
                             "last_full_sync_at": first_full_sync}  # fmt: skip
    last_full_sync = sa.case((full_sync, now), else_=_STATE.c.last_full_sync_at)
    insert = postgresql.insert(_STATE).from_select(list(state), sa.select(*state.values()))
    cursor = (
        insert.on_conflict_do_update(
            index_elements=[_STATE.c.account_id],
            set_={**moved, "last_full_sync_at": last_full_sync},
        )
        .returning(_STATE.c.account_id)
        .cte("cursor")
    )

    columns: list[Any] = [
        sa.select(cursor.c.account_id).scalar_subquery().label("account"),
        sa.select(func.array_agg(added.c.seq)).scalar_subquery().label("seqs"),
    ]
    if relay:
        one_added = sa.select(added.c.seq).limit(1).subquery("one_added")
        tell = func.pg_notify(sa.bindparam("channel", type_=sa.String),
                              sa.bindparam("payload", type_=sa.String))  # fmt: skip
        columns.append(sa.select(tell).select_from(one_added).scalar_subquery().label("told"))
    return sa.select(*columns)
