"""The store remembers: situations, the step ledger and the timeline. SQLite by default."""

from __future__ import annotations

from pathlib import Path

from continuity.errors import InputError
from continuity.store.sqlite import SqliteStore


def open_store(url: str, base_dir: Path) -> SqliteStore:
    """Open the store a URL names; relative SQLite paths are relative to the config file's folder."""
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        path = Path(raw)
        if not path.is_absolute():
            path = base_dir / path
        return SqliteStore(path)
    scheme = url.split(":", 1)[0]
    raise InputError(f"unsupported store URL scheme {scheme!r}; use sqlite:///path/to/continuity.db")


__all__ = ["SqliteStore", "open_store"]
