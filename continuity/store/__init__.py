"""The store remembers: situations, the step ledger and the timeline, send marks, maintenance windows, the
auto-responder's state and the campaign registry. SQLite by default; `Store` (protocol.py) is the contract.

Every SQL statement of continuity lives in this package: sqlite.py (schema, migrations, the core tables),
autoreply.py and campaigns.py (mixins of SqliteStore).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from continuity.errors import InputError
from continuity.store.protocol import Store
from continuity.store.sqlite import DEFAULT_BUSY_TIMEOUT, SqliteStore


def store_path(url: str, base_dir: Path) -> Path:
    """The SQLite file a store URL names; a relative path is relative to the config file's folder."""
    if not url.startswith("sqlite:///"):
        scheme = url.split(":", 1)[0]
        raise InputError(f"unsupported store URL scheme {scheme!r}; use sqlite:///path/to/continuity.db")
    path = Path(url[len("sqlite:///") :])
    return path if path.is_absolute() else base_dir / path


def open_store(url: str, base_dir: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
               on_wait: Callable[[str], None] | None = None) -> SqliteStore:
    """Open (creating it if need be) the store a URL names; `on_wait` hears once that it is busy."""
    return SqliteStore(store_path(url, base_dir), busy_timeout=busy_timeout, on_wait=on_wait)


__all__ = ["SqliteStore", "Store", "open_store", "store_path"]
