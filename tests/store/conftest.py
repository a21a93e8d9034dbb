"""Contract tests for the store, run against every implementation.

Every test in this folder that is not in a module named `test_sqlite_*` gets its store through the
`store_factory` fixture, and uses only the store's public methods (transaction(), situations, steps, events,
send marks, maintenance windows, close(); the contract is written down in continuity/store/protocol.py): no
`store.conn`, no SQL. So the same tests hold any object with those methods to the same contract.

`store_factory` is parametrised over IMPLEMENTATIONS: "sqlite" (`SqliteStore(tmp_path / "s.db")`) and
"postgres" (`PostgresStore(url)` on an empty database of its own: CREATE DATABASE from a migrated, row-less
template, on a real server that tests/store/pgserver.py starts once per session with initdb and pg_ctl, on a
free loopback port, as the `postgres` user when run as root; dropped after the test). To add
another, write one function `(tmp_path, request) -> StoreFactory` whose `opener` opens a new, independent handle
on one fresh store, and add it to IMPLEMENTATIONS under its name, as `_postgres` below does (`request` is there
for such a function to `pytest.skip` when its server is missing, or to add a finalizer). Every contract test
then runs once per implementation: `pytest tests/store -k postgres` runs them against one.

The factory's contract:
- `opener(**options)` opens a new handle on the same store each time; every call is independent (its own
  connection), so two handles behave like two processes. The only option the tests pass is `busy_timeout`
  (seconds a write transaction may wait for a store another handle holds before raising StoreBusy).
- `opener` must be picklable: the concurrency tests send it to child processes started with the "spawn" start
  method, and each child opens its own handle with it (a `functools.partial` of the class and its arguments is).
- `constraint_errors` are the exceptions the store raises when a write breaks one of its constraints (a second
  open situation for a kind and channel, a step or event of a situation that does not exist).

SQLite-only tests (migrations of old store files, file locking at open) live in `test_sqlite_*.py` and build
their own SqliteStore, PostgreSQL-only ones (its migrations in step with SQLite's, start-up races, connection
errors) in `test_pg_*.py`: they are not part of the contract.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.store.sqlite import SqliteStore

# A store handle: any object with SqliteStore's public methods (continuity.store.Store, test_protocol.py).
Store = Any

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class StoreFactory:
    """Opens handles on one fresh store of one implementation, and closes them when the test ends."""

    name: str
    opener: Callable[..., Store]
    constraint_errors: tuple[type[BaseException], ...]
    _opened: list[Store] = field(default_factory=list)

    def open(self, **options: Any) -> Store:
        """A new, independent handle on the same store (another connection, as another process would have)."""
        store = self.opener(**options)
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        while self._opened:
            self._opened.pop().close()


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> StoreFactory:
    return StoreFactory("sqlite", functools.partial(SqliteStore, tmp_path / "s.db"), (sqlite3.IntegrityError,))


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> StoreFactory:
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install '.[test]'")
    from continuity.store.postgres import PostgresStore
    from tests.store.pgserver import drop_database, fresh_database

    url = fresh_database()  # skips when PostgreSQL's binaries are missing (fails under CI)
    request.addfinalizer(lambda: drop_database(url))  # runs after the factory closed its handles

    return StoreFactory("postgres", functools.partial(PostgresStore, url), (psycopg.IntegrityError,))


IMPLEMENTATIONS: dict[str, Callable[[Path, pytest.FixtureRequest], StoreFactory]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = IMPLEMENTATIONS[request.param](tmp_path, request)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A handle on a fresh, empty store."""
    return store_factory.open()


# helpers (public methods only) ----------------------------------------------------------------------------------


def add_situation(store: Store, *, kind: str = "outage", channel: str = "phone", **over: Any) -> int:
    fields: dict[str, Any] = dict(playbook="outage-phone", source="cli", opened_by="anna", reason="trunk down",
                                  eta=NOW + timedelta(hours=2), opened_at=NOW, data={"k": [1, 2]})
    fields.update(over)
    with store.transaction():
        sid: int = store.insert_situation(kind=kind, channel=channel, **fields)
    return sid


def add_step(store: Store, situation_id: int, key: str, **over: Any) -> int:
    """Plan one step (due at NOW unless `due_at` says otherwise); its row id."""
    fields: dict[str, Any] = dict(phase="open", step_id="staff-runbook", occurrence=1, action="notify",
                                  sink="staff_mail", template="outage/staff", reversible=False, idempotent=True,
                                  every_s=None, due_at=NOW)
    fields.update(over)
    with store.transaction():
        row_id = store.insert_step(situation_id=situation_id, key=key, **fields)
    assert isinstance(row_id, int)
    return row_id


def state_of(store: Store, row_id: int) -> str:
    row = store.get_step(row_id)
    assert row is not None
    return str(row.state)
