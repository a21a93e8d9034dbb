"""Times as the store writes them: fixed-width UTC ISO text, so string order is time order."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(dt: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so string order is time order."""
    if dt is None:
        return None
    utc = dt.astimezone(UTC)
    if utc.year < 1000:  # isoformat pads the year to four digits, strftime does not: keep strftime's text
        return utc.strftime(_FORMAT)
    # isoformat is several times cheaper than strftime and writes the same text ("+00:00" becomes "Z").
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


def from_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    if len(text) == 27 and text[-1] == "Z" and text[4] == "-" and text[10] == "T" and text[19] == ".":
        # What ts writes: fromisoformat reads it several times faster than strptime (and reads "Z" as UTC).
        return datetime.fromisoformat(text)
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def required_ts(text: str) -> datetime:
    value = from_ts(text)
    assert value is not None
    return value
