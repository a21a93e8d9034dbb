"""`continuity campaign new NAME`: a campaign file to start from, dated ahead, so the shipped example never
hands anyone a campaign that is already over.

The shipped example (playbooks/campaign-example.yaml) is copied with its comments; only its name and dates
change: the start a given day (default two weeks from today, 00:00 organisation time), the end as long after it
as the example's.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from continuity.errors import InputError

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
AHEAD = timedelta(days=14)
_FIELD = re.compile(r"^(name|start|end):[^\n]*$", re.M)


def default_start(now: datetime, tz: str) -> datetime:
    """Midnight two weeks from today, organisation time: well past any `campaigns.min_lead`."""
    zone = ZoneInfo(tz)
    return datetime.combine(now.astimezone(zone).date() + AHEAD, time(0), tzinfo=zone)


def parse_start(text: str, tz: str) -> datetime:
    """`2027-03-01` (midnight) or `2027-03-01 08:00`, organisation time."""
    try:
        when = datetime.fromisoformat(text.strip())  # a bare date is its midnight; an offset given is kept
    except ValueError:
        raise InputError(f"--start {text!r}: give a date, 2027-03-01, or a date and time, '2027-03-01 08:00' "
                         f"({tz})") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=ZoneInfo(tz))


def scaffold(example: str, name: str, start: datetime, tz: str) -> str:
    """The example's text with this campaign's name and dates (same length as the example's campaign)."""
    if not NAME.match(name):
        raise InputError(f"campaign name {name!r}: lower-case letters, digits, - and _ only (e.g. spring-sale)")
    fields = dict(m.group(0).split(":", 1) for m in _FIELD.finditer(example))
    old_start, old_end = (_when(fields[k], tz) for k in ("start", "end"))
    end = start + (old_end - old_start)
    zone = ZoneInfo(tz)
    new = {"name": name, "start": f"{start.astimezone(zone):%Y-%m-%d %H:%M} {tz}",
           "end": f"{end.astimezone(zone):%Y-%m-%d %H:%M} {tz}"}
    text = _FIELD.sub(lambda m: f"{m.group(1)}: {new[m.group(1)]}", example)
    return text.replace("campaign register playbooks/campaign-example.yaml", f"campaign register {name}.yaml")


def _when(value: str, tz: str) -> datetime:
    """A `start:`/`end:` value of the example: `2026-11-27 00:00 Europe/Budapest` (a comment may follow)."""
    words = value.split("#", 1)[0].split()
    return datetime.fromisoformat(f"{words[0]}T{words[1]}").replace(tzinfo=ZoneInfo(words[2] if len(words) > 2
                                                                                     else tz))
