"""`continuity store copy`: every row of one store into another, ids kept, across backends (SQLite ⇄ PostgreSQL).

Moving up from SQLite must not lose history: situations, the ledger (steps, events, send marks), maintenance
windows, the auto-responder's state, the campaign registry and the console's users all come along with their
ids, so a report, a settle or a campaign refers to the same rows afterwards. Rows travel in one neutral form:
aware UTC datetimes for times, bools for flags, JSON as the text it was written as; each backend's adapter
below turns that into its own columns. The source is read in one snapshot; the destination is written in one
transaction that first checks it is empty (or, when forced, empties it), then checks the count of every
table against the source's before it commits: a copy is all there or not there at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from continuity.errors import InputError, OperationFailed
from continuity.store.times import from_ts, ts

# Every table, parents before children (the order rows are inserted in; the reverse is the order to empty).
TABLES: tuple[str, ...] = (
    "situations", "steps", "events", "send_marks", "maintenance", "autoreply_cursor", "autoreply_messages",
    "autoreply_senders", "campaigns", "campaign_versions", "console_users", "console_sessions", "console_failures",
)
# The order rows are read and written in, so parents come before children (steps.undo_of points back).
ORDER_BY: dict[str, str] = {
    "send_marks": "key, part", "autoreply_cursor": "mailbox", "autoreply_messages": "mailbox, key",
    "autoreply_senders": "mailbox, sender, situation_id", "console_users": "name", "console_sessions": "id_hash",
    "console_failures": "user_name, address, at",
}
# Columns that hold a time (text on SQLite, timestamptz on PostgreSQL) and a flag (0/1, boolean).
TIME_COLUMNS = frozenset({
    "eta", "opened_at", "closed_at", "due_at", "next_retry_at", "started_at", "finished_at", "at", "starts_at",
    "ends_at", "created_at", "updated_at", "opens_at", "last_ok_at", "last_error_at", "received_at", "decided_at",
    "sent_at", "answered_at", "expires_at",
})
FLAG_COLUMNS = frozenset({"reversible", "idempotent", "late", "ending"})
# Tables whose `id` a PostgreSQL identity numbers: after a copy it must go on from the highest id copied.
ID_TABLES = frozenset({"situations", "steps", "events", "maintenance", "campaigns", "campaign_versions"})


# The backends' own bookkeeping, not continuity's rows: SQLite's AUTOINCREMENT counters, PostgreSQL's version.
# Not history: the schema's version, SQLite's sequences, and who leads a cluster now (store/pg_cluster.py).
_BOOKKEEPING = frozenset({"sqlite_sequence", "continuity_schema", "cluster_lease", "cluster_nodes",
                          "cluster_observations"})

Row = dict[str, Any]


class _Adapter:
    """One store's rows in the neutral form."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.conn = store.conn

    def tables(self) -> list[str]:
        raise NotImplementedError

    def snapshot(self) -> Any:
        raise NotImplementedError

    def count(self, table: str) -> int:
        raise NotImplementedError

    def rows(self, table: str) -> list[Row]:
        raise NotImplementedError

    def clear(self, table: str) -> None:
        raise NotImplementedError

    def insert(self, table: str, rows: list[Row]) -> None:
        raise NotImplementedError

    def after_insert(self, table: str) -> None:
        """Whatever the backend needs once a table is filled (PostgreSQL's identity goes on after the ids)."""


class _SqliteRows(_Adapter):
    def tables(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return [r[0] for r in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.conn.execute("BEGIN")  # deferred: a read snapshot from the first read on, writers go on
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def rows(self, table: str) -> list[Row]:
        order = ORDER_BY.get(table, "id")
        out = []
        for r in self.conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall():
            row = dict(r)
            for name in row:
                if name in TIME_COLUMNS:
                    row[name] = from_ts(row[name])
                elif name in FLAG_COLUMNS:
                    row[name] = bool(row[name])
            out.append(row)
        return out

    def clear(self, table: str) -> None:
        self.conn.execute(f"DELETE FROM {table}")
        # AUTOINCREMENT remembers the highest id ever used: a replaced store numbers on from the copy's ids
        self.conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))

    def insert(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        self.conn.executemany(sql, [tuple(_to_sqlite(c, row[c]) for c in columns) for row in rows])


def _to_sqlite(column: str, value: Any) -> Any:
    if column in TIME_COLUMNS:
        return ts(value)
    if column in FLAG_COLUMNS:
        return int(value)
    return value


class _PostgresRows(_Adapter):
    def tables(self) -> list[str]:
        rows = self.conn.execute("SELECT table_name AS t FROM information_schema.tables"
                                 " WHERE table_schema = current_schema()").fetchall()
        return [r["t"] for r in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"])

    def rows(self, table: str) -> list[Row]:
        order = ORDER_BY.get(table, "id")
        out = []
        for row in self.conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall():
            out.append({k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()})
        return out

    def clear(self, table: str) -> None:
        self.conn.execute(f"DELETE FROM {table}")

    def insert(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        with self.conn.cursor() as cur:
            cur.executemany(sql, [tuple(row[c] for c in columns) for row in rows])

    def after_insert(self, table: str) -> None:
        if table in ID_TABLES:
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                              f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")


def adapter(store: Any) -> _Adapter:
    from continuity.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return _SqliteRows(store)
    return _PostgresRows(store)


@dataclass
class CopyResult:
    """What was copied: rows per table, as counted in the destination before the commit."""

    counts: dict[str, int]
    replaced: dict[str, int]  # the destination's rows before, when --force emptied it


def counts(store: Any) -> dict[str, int]:
    """Rows per table of a store (every table continuity knows that the store has)."""
    rows = adapter(store)
    present = set(rows.tables())
    return {t: rows.count(t) for t in TABLES if t in present}


def copy_store(src: Any, dst: Any, *, force: bool = False, dst_name: str = "the destination",
               progress: Callable[[str, int], None] | None = None) -> CopyResult:
    """Copy every row of `src` into `dst` (ids kept); refuse a non-empty `dst` unless `force` (then its rows are
    replaced). Raises InputError for a non-empty destination, OperationFailed when a count does not match."""
    source, dest = adapter(src), adapter(dst)
    missing = [t for t in TABLES if t in set(source.tables()) and t not in set(dest.tables())]
    if missing:
        raise OperationFailed(f"{dst_name} has no table {', '.join(missing)}: its schema is older than the "
                              "source's; open it with this release of continuity first")
    unknown = sorted(set(source.tables()) - set(TABLES) - _BOOKKEEPING)
    if unknown:
        raise OperationFailed(f"the source has tables this continuity does not know ({', '.join(unknown)}): it was "
                              "written by a newer release; copy it with that release")
    tables = [t for t in TABLES if t in set(source.tables())]
    with source.snapshot():
        data = {t: source.rows(t) for t in tables}
    expected = {t: len(rows) for t, rows in data.items()}
    with dst.transaction():
        before = {t: dest.count(t) for t in TABLES if t in set(dest.tables())}
        filled = {t: n for t, n in before.items() if n}
        if filled and not force:
            listed = ", ".join(f"{t}: {n}" for t, n in filled.items())
            raise InputError(f"{dst_name} is not empty ({listed}); nothing was copied. Pass --force to replace "
                             "its contents with the source's")
        for table in reversed(TABLES):
            if table in before:
                dest.clear(table)
        for table in tables:
            dest.insert(table, data[table])
            dest.after_insert(table)
            if progress is not None:
                progress(table, len(data[table]))
        got = {t: dest.count(t) for t in tables}
        if got != expected:
            wrong = ", ".join(f"{t}: {got[t]} of {expected[t]}" for t in tables if got[t] != expected[t])
            raise OperationFailed(f"the copy into {dst_name} does not match the source ({wrong}); nothing was "
                                  "kept")
    return CopyResult(got, filled)
