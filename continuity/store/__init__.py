"""The store remembers: situations, the step ledger and the timeline, send marks, maintenance windows, the
auto-responder's state and the campaign registry. SQLite by default, PostgreSQL (postgres.py) for
several nodes on one database; `Store` (protocol.py) is the contract.

Every SQL statement of continuity lives in this package: sqlite.py (schema, migrations, the core tables),
autoreply.py and campaigns.py (mixins of SqliteStore); postgres.py and its pg_*.py the same for PostgreSQL;
store_copy.py moves every row from one store to another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from continuity.errors import InputError
from continuity.store.pg_url import INSTALL_HINT, is_postgres_url
from continuity.store.protocol import Store
from continuity.store.sqlite import DEFAULT_BUSY_TIMEOUT, SqliteStore


def store_path(url: str, base_dir: Path) -> Path:
    """The SQLite file a store URL names; a relative path is relative to the config file's folder."""
    if is_postgres_url(url):
        raise InputError("store.url names a PostgreSQL store; this works on a SQLite store file only "
                         "(sqlite:///path/to/continuity.db)")
    if not url.startswith("sqlite:///"):
        scheme = url.split(":", 1)[0]
        raise InputError(f"unsupported store URL scheme {scheme!r}; use sqlite:///path/to/continuity.db or "
                         "postgresql://USER@HOST:PORT/DB")
    path = Path(url[len("sqlite:///") :])
    return path if path.is_absolute() else base_dir / path


def open_store(url: str, base_dir: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
               on_wait: Callable[[str], None] | None = None) -> Store:
    """Open (creating it if need be) the store a URL names, by its scheme (sqlite:/// or postgresql://);
    `on_wait` hears once that it is busy."""
    if is_postgres_url(url):
        try:
            from continuity.store.postgres import PostgresStore
        except ImportError as exc:
            if "psycopg" not in (exc.name or str(exc)):  # a broken install of our own: not the user's to fix
                raise
            raise InputError(f"store.url: a postgresql:// store needs psycopg, which is not installed: "
                             f"{INSTALL_HINT}") from None
        return PostgresStore(url, busy_timeout=busy_timeout, on_wait=on_wait)
    return SqliteStore(store_path(url, base_dir), busy_timeout=busy_timeout, on_wait=on_wait)


__all__ = ["SqliteStore", "Store", "open_store", "store_path"]
