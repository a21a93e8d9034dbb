"""Times between Python and PostgreSQL: aware datetimes in, UTC datetimes out (as SqliteStore returns them)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(dt: datetime | None) -> datetime | None:
    """A parameter for a timestamptz column; a naive time counts as local, as SQLite's `ts` reads it."""
    return None if dt is None else dt.astimezone(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A timestamptz read back, in UTC (the session's zone is UTC already; this fixes the tzinfo object)."""
    return None if value is None else value.astimezone(UTC)


def req_utc(value: datetime) -> datetime:
    out = as_utc(value)
    assert out is not None
    return out
