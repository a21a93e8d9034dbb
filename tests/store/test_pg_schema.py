"""POSTGRESQL ONLY, not part of the store contract: its schema is SQLite's, migration for migration, and
`store copy` knows every table and column of both.

Each SQLite migration N is mirrored by PostgreSQL migration N: applying the first N of each to an empty
database gives the same tables with the same columns, for every N. The copy's lists of time and flag columns
match PostgreSQL's timestamptz and boolean columns, so no column travels untranslated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuity.store import sqlite as sqlite_store
from continuity.store import store_copy
from continuity.store.pg_schema import MIGRATIONS as PG_MIGRATIONS
from continuity.store.pg_schema import VERSION_TABLE

psycopg = pytest.importorskip("psycopg")
from tests.store.pgserver import drop_database, fresh_database  # noqa: E402

Columns = dict[str, list[str]]


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_database(schema=False)
    yield url
    drop_database(url)


def sqlite_columns(path: Path, upto: int) -> Columns:
    conn = sqlite3.connect(path)
    try:
        for script in sqlite_store.MIGRATIONS[:upto]:
            conn.executescript(script)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name != 'sqlite_sequence'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in sorted(tables)}
    finally:
        conn.close()


def pg_columns(url: str, upto: int) -> tuple[Columns, dict[str, str]]:
    """Tables → columns after the first `upto` migrations, and column → data type."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        for script in PG_MIGRATIONS[:upto]:
            conn.execute(script)
        rows = conn.execute("SELECT table_name, column_name, data_type FROM information_schema.columns"
                            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position").fetchall()
    columns: Columns = {}
    types: dict[str, str] = {}
    for table, column, kind in rows:
        columns.setdefault(table, []).append(column)
        types[f"{table}.{column}"] = kind
    return columns, types


def test_both_backends_have_the_same_number_of_migrations() -> None:
    assert len(PG_MIGRATIONS) == len(sqlite_store.MIGRATIONS)


def test_every_migration_makes_the_same_tables_and_columns_on_both(tmp_path: Path, pg_url: str) -> None:
    for upto in range(1, len(sqlite_store.MIGRATIONS) + 1):
        expected = sqlite_columns(tmp_path / f"v{upto}.db", upto)
        got, _ = pg_columns(pg_url, upto)
        assert got == expected, f"after migration {upto}"


def test_the_copy_knows_every_table_and_translates_every_time_and_flag(tmp_path: Path, pg_url: str) -> None:
    latest = len(PG_MIGRATIONS)
    tables, types = pg_columns(pg_url, latest)
    assert sorted(store_copy.TABLES) == sorted(tables)
    times = {c.split(".")[1] for c, t in types.items() if t == "timestamp with time zone"}
    flags = {c.split(".")[1] for c, t in types.items() if t == "boolean"}
    assert times == set(store_copy.TIME_COLUMNS)
    assert flags == set(store_copy.FLAG_COLUMNS)
    # a column name means the same everywhere: no time column shares its name with a column of another type
    assert all(t == "timestamp with time zone" for c, t in types.items() if c.split(".")[1] in times)
    # every table the copy orders by id has one
    assert all("id" in tables[t] for t in store_copy.TABLES if t not in store_copy.ORDER_BY)


def test_a_store_opened_on_an_empty_database_is_at_the_latest_version(pg_url: str) -> None:
    from continuity.store.postgres import PostgresStore

    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(len(PG_MIGRATIONS),)]


def test_nodes_starting_at_once_on_an_empty_database_migrate_it_once(pg_url: str) -> None:
    import threading

    from continuity.store.postgres import PostgresStore

    barrier, errors, stores = threading.Barrier(8), list[BaseException](), list[PostgresStore]()

    def start() -> None:
        try:
            barrier.wait(10)
            stores.append(PostgresStore(pg_url, busy_timeout=20))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in stores:
        s.close()
    assert errors == []
    assert len(stores) == 8
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchall() == [(len(PG_MIGRATIONS),)]


def test_a_newer_schema_is_refused_naming_the_store_without_its_password(pg_url: str) -> None:
    from continuity.errors import OperationFailed
    from continuity.store.postgres import PostgresStore

    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version = 99")
    with_password = pg_url.replace("continuity@", "continuity:hunter2@")  # trust auth: any password is let in
    with pytest.raises(OperationFailed, match="schema version 99, newer") as caught:
        PostgresStore(with_password)
    assert "hunter2" not in str(caught.value) and "continuity:***@" in str(caught.value)


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    from continuity.errors import OperationFailed
    from continuity.store.postgres import PostgresStore

    with pytest.raises(OperationFailed, match="cannot connect to the store") as caught:
        PostgresStore("postgresql://continuity:hunter2@127.0.0.1:1/nothing", busy_timeout=2)
    assert "hunter2" not in str(caught.value)


def test_a_busy_store_says_once_that_it_waits(pg_url: str) -> None:
    from continuity.errors import StoreBusy
    from continuity.store.postgres import PostgresStore

    heard: list[str] = []
    holder, waiter = PostgresStore(pg_url), PostgresStore(pg_url, busy_timeout=0.3, on_wait=heard.append)
    try:
        with holder.transaction(), pytest.raises(StoreBusy, match="busy_timeout"), waiter.transaction():
            pass
        assert len(heard) == 1 and "is busy, waiting up to 0.3s" in heard[0]
    finally:
        holder.close()
        waiter.close()
