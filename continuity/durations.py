"""Durations as people write them in YAML and on the command line: 30s, 15m, 2h, 1d, 1h30m."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from continuity.errors import InputError

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int) -> timedelta:
    """Parse `2h`, `1h30m`, `0m` or a bare number of seconds; raise ValueError with a readable reason."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 30s, 15m, 2h or 1d")
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    s = str(text).strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration; expected something like 30s, 15m, 2h or 1d")
    pos, total = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"invalid duration {text!r}; expected something like 30s, 15m, 2h, 1d or 1h30m")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    """`1h 5m`, `45m`, `20s`: compact, for tables and reports."""
    secs = int(delta.total_seconds())
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    if not any(parts):
        parts = [f"{s}s"]
    return sign + " ".join(p for p in parts if p)


def parse_eta(text: str | None, now: datetime, tz: str, *, option: str = "--eta") -> datetime | None:
    """`2h`, `90m` (from now), `14:30` (next such local time) or an ISO date-time; errors name `option`."""
    if text is None or text == "":
        return None
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        hhmm = time.fromisoformat(text)
        local = now.astimezone(ZoneInfo(tz))
        cand = datetime.combine(local.date(), hhmm, tzinfo=ZoneInfo(tz))
        if cand <= local:
            cand += timedelta(days=1)
        return cand.astimezone(UTC)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(tz))
        return when.astimezone(UTC)
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a duration (2h, 90m), a time (14:30) or an ISO date-time") \
            from None
