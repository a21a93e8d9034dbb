"""Times as the store writes them: fixed-width UTC ISO text, so string order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def ts(dt: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so string order is time order."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def required_ts(text: str) -> datetime:
    value = from_ts(text)
    assert value is not None
    return value
