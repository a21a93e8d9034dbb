"""The status page's history: 90 days of uptime per channel (cached per day) and the last 14 days' incidents.

Every visitor's browser asks for /status every minute, and 90 days of a busy ledger are thousands of
situations: the days before today cannot change unless the ledger does, so they are counted once per
(store, channels, day, `Store.ledger_mark()`) and only today is counted again at each request, from the
situations kept with them. A new situation, step, update or close moves the mark, so the next request counts
afresh: the page is never behind the ledger. The figures are those of `history.uptime`, to the second.

The section sits after the part of the page status.js refreshes in place: history is as of the page's
loading, and a visitor reading a day's cell is never interrupted.

A day's cell is `down` (some downtime), `maintenance` (planned maintenance, no downtime), `up`, or `nodata`
for days before the ledger's first situation. Those count as up in the percentage, as a channel without
health checks is up on the page: nobody declared a problem with it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from continuity.history import UPTIME_DAYS, daily_of, day_bounds
from continuity.store.records import EventRecord, SituationRecord
from continuity.variables import cause_key, cause_text, date_locale, human_datetime, human_duration

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.store.protocol import Store

UPTIME_TEMPLATE = "public/uptime.html"
INCIDENT_DAYS = 14
INCIDENTS_SHOWN = 20  # the newest; a page listing hundreds helps nobody (the monthly report has them all)
# Situations customers read about afterwards: outages, degraded channels and maintenance, never a surge (a
# campaign's, which the page names by its title only while it runs).
_INCIDENT_KINDS = ("outage", "degraded", "maintenance")
_KEPT = 8  # cache entries: a daemon serves one store, tests and benchmarks a few


@dataclass
class _Past:
    mark: tuple[int, int, int]
    days: dict[str, list[dict[str, Any]]]  # first .. yesterday, per channel
    today: list[SituationRecord]  # open, or closed today: what today's figures are counted from
    first_at: datetime | None
    closed: list[SituationRecord]  # incidents closed since 14 days before today, newest first
    shown: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (locale, id) ─► localised
    down: dict[str, int] = field(default_factory=dict)  # seconds down before today, per channel
    version: str = ""  # names this reckoning of the past days, for the rendered section's cache
    settled: dict[str, list[dict[str, Any]]] | None = None  # today's figures once nothing of today is open
    settled_at: datetime | None = None


class UptimeCache:
    """`uptime()` as `history.uptime` computes it, the days before today kept until the ledger moves; the
    recent incidents with their timelines likewise."""

    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], _Past] = {}
        self._lock = threading.Lock()
        self.misses = 0

    def _past(self, store: Store, channels: Sequence[str], tz: str, now: datetime, days: int,
              since: Callable[[SituationRecord], datetime] | None = None) -> _Past:
        today = now.astimezone(ZoneInfo(tz)).date()
        key = (str(store.path), tuple(channels), tz, today, days, since is None)
        mark = store.ledger_mark()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept.mark == mark:
            return kept
        self.misses += 1
        first = today - timedelta(days=days - 1)
        start_today = day_bounds(today, tz)[0]
        recent_from = day_bounds(today - timedelta(days=INCIDENT_DAYS), tz)[0]
        sits = store.situations_since(min(day_bounds(first, tz)[0], recent_from))
        past = daily_of(sits, channels, tz, first, today - timedelta(days=1), start_today) if days > 1 else {
            c: [] for c in channels}
        closed = sorted((s for s in sits if s.kind in _INCIDENT_KINDS and s.channel in channels
                         and s.closed_at is not None and s.closed_at >= recent_from),
                        key=lambda s: (s.closed_at, s.id), reverse=True)
        kept = _Past(mark, past, [s for s in sits if s.closed_at is None or s.closed_at >= start_today],
                     _records_begin(store, sits, channels, day_bounds(first, tz)[0], now, since), closed,
                     down={c: sum(d["down_seconds"] for d in past[c]) for c in channels},
                     version=hashlib.sha256(repr((key, mark)).encode()).hexdigest()[:16])
        with self._lock:
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[key] = kept
        return kept

    def for_page(self, loaded: LoadedConfig, store: Store, channels: Sequence[str], now: datetime, locale: str,
                 name: Callable[[SituationRecord], str],
                 since: Callable[[SituationRecord], datetime]) -> dict[str, Any]:
        """All the status page shows of the past, from one reckoning (one look at the ledger mark): `uptime`
        per channel, `history_from` (see `_records_begin`), `history_version` and `incidents`. `since(sit)`
        is when customers learnt of a situation (a campaign's launch, not its staff briefing)."""
        tz = loaded.config.organisation.timezone
        past = self._past(store, channels, tz, now, UPTIME_DAYS, since)
        return {"uptime": self._uptime(past, channels, tz, now, UPTIME_DAYS), "history_from": past.first_at,
                "history_version": past.version, "incidents": self._incidents(past, loaded, store, now, locale,
                                                                               name)}

    def uptime(self, store: Store, channels: Sequence[str], tz: str, now: datetime,
               days: int = UPTIME_DAYS) -> dict[str, dict[str, Any]]:
        """Per channel {"percent", "days"}, exactly as `history.uptime(store, channels, tz, now, days)`."""
        return self._uptime(self._past(store, channels, tz, now, days), channels, tz, now, days)

    def _uptime(self, past: _Past, channels: Sequence[str], tz: str, now: datetime,
                days: int) -> dict[str, dict[str, Any]]:
        today = now.astimezone(ZoneInfo(tz)).date()
        todays = past.settled if past.settled_at is not None and past.settled_at <= now else None
        if todays is None:
            todays = daily_of(past.today, channels, tz, today, today, now)
            # Every situation of today closed before now: later requests of today get the same figures.
            if all(s.closed_at is not None and s.closed_at <= now for s in past.today):
                past.settled, past.settled_at = todays, now
        period = (now - day_bounds(today - timedelta(days=days - 1), tz)[0]).total_seconds()
        out = {}
        for c in channels:
            down = past.down[c] + todays[c][0]["down_seconds"]
            out[c] = {"percent": round(100 * (1 - down / period), 2) if period > 0 else 100.0,
                      "days": [*past.days[c], *todays[c]]}
        return out  # as history.with_percent computes it, without adding up 89 days again

    def _incidents(self, past: _Past, loaded: LoadedConfig, store: Store, now: datetime, locale: str,
                   name: Callable[[SituationRecord], str]) -> list[dict[str, Any]]:
        """Outages, degraded channels and maintenance closed in the last 14 days (the newest 20), newest first,
        with their public timelines, in `locale`; each localised once per reckoning."""
        since = now - timedelta(days=INCIDENT_DAYS)
        chosen = []
        for sit in past.closed:  # newest first
            if sit.closed_at is None or sit.closed_at > now:
                continue
            if sit.closed_at < since or len(chosen) == INCIDENTS_SHOWN:
                break
            chosen.append(sit)
        todo = [(sit, store.events_for(sit.id)) for sit in chosen if (locale, sit.id) not in past.shown]
        for (sit, _), shown in zip(todo, incidents(loaded, todo, locale, name), strict=True):
            past.shown[(locale, sit.id)] = shown
        return [past.shown[(locale, sit.id)] for sit in chosen]


def _records_begin(store: Store, sits: list[SituationRecord], channels: Sequence[str], start: datetime,
                   now: datetime, since: Callable[[SituationRecord], datetime] | None) -> datetime | None:
    """Where the page's history begins: the window's start if the ledger is older; where the ledger began
    inside the window, its first situation customers may know of (one of these channels', or a surge from its
    launch: the briefing before it, and other channels, stay internal); None before any."""
    first = store.first_opened_at()
    if first is None or first < start:
        return None if first is None else start
    shown = [since(s) if since else s.opened_at for s in sits if s.channel in channels or s.kind == "surge"]
    return min((t for t in shown if t <= now), default=None)


# One per process: keyed by the store's path, checked against the ledger mark at every request.
CACHE = UptimeCache()


# presentation ------------------------------------------------------------------------------------------------

_REGIONS = {"en": "en_GB", "hu": "hu_HU", "sk": "sk_SK", "pl": "pl_PL"}


def _babel(locale: str) -> str:
    loc = locale.replace("-", "_")
    return loc if "_" in loc else _REGIONS.get(loc, loc)


@functools.lru_cache(maxsize=2048)
def _date_text(day: date, locale: str, year: bool) -> str:
    """`10 November` (`10 November 2025` for a day of another year than today's), in the locale's words."""
    from babel.dates import format_date, format_skeleton

    return format_date(day, "long", locale=_babel(locale)) if year else format_skeleton(
        "MMMMd", day, locale=_babel(locale))


@functools.lru_cache(maxsize=512)
def plural(n: int, locale: str) -> str:
    """The CLDR plural category of `n` in `locale` (one, few, many, other): "1 minuta, 3 minuty, 5 minut"."""
    from babel import Locale

    return str(Locale.parse(_babel(locale)).plural_form(n))


@functools.lru_cache(maxsize=512)
def percent_text(percent: float, locale: str) -> str:
    """Two decimals with the locale's separator and a no-break space before the sign: `99,93 %`."""
    from babel.numbers import format_decimal

    return format_decimal(percent, format="0.00", locale=_babel(locale)) + "\u00a0%"


def cells(days: list[dict[str, Any]], first_at: datetime | None, tz: str, locale: str) -> list[dict[str, Any]]:
    """One cell per day for the template: state, date as words, minutes down and of maintenance with the
    plural category of each (a part of a minute counts as a minute: a red cell never says 0)."""
    out = []
    this_year = days[-1]["date"][:4] if days else ""
    for d in days:
        day = date.fromisoformat(d["date"])
        down, maint = math.ceil(d["down_seconds"] / 60), math.ceil(d["maintenance_seconds"] / 60)
        if down:
            state = "down"
        elif maint:
            state = "maintenance"
        elif first_at is None or day_bounds(day, tz)[1] <= first_at:
            state = "nodata"
        else:
            state = "up"
        out.append({"date": d["date"], "date_text": _date_text(day, locale, d["date"][:4] != this_year),
                    "state": state,
                    "down_minutes": down, "down_form": plural(down, locale),
                    "maintenance_minutes": maint, "maintenance_form": plural(maint, locale)})
    return out


def bars(channels: list[dict[str, Any]], first_at: datetime | None, tz: str, locale: str) -> list[dict[str, Any]]:
    """Per channel of the status data: its name, key, percent as the locale writes it, and the day cells."""
    return [{"key": c["key"], "name": c["name"], "percent": c["uptime"]["percent"],
             "percent_text": percent_text(c["uptime"]["percent"], locale),
             "days": cells(c["uptime"]["days"], first_at, tz, locale)}
            for c in channels if "uptime" in c]


_PUBLIC_EVENTS = {"opened": "opened", "eta": "eta", "updated": "updated", "refreshed": "updated",
                  "closed": "resolved"}


def incidents(loaded: LoadedConfig, closed: list[tuple[SituationRecord, list[EventRecord]]], locale: str,
              name: Callable[[SituationRecord], str]) -> list[dict[str, Any]]:
    """The recent incidents as plain data: what happened (the prepared cause, never the staff reason), when,
    how long, and the public timeline, newest first. `name(situation)` is the page's name for its scope."""
    tz = loaded.config.organisation.timezone
    dates = date_locale(loaded, locale)  # English dates as organisation.english says
    out = []
    for sit, events in closed:
        assert sit.closed_at is not None
        starts, ends = sit.opened_at, sit.closed_at
        window = sit.data.get("maintenance") if sit.data else None
        if window:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                starts = max(starts, datetime.fromisoformat(window["starts_at"]))
        updates = []
        for ev in events:
            kind = _PUBLIC_EVENTS.get(ev.kind)
            if kind is None:
                continue
            if ev.kind == "refreshed" and sit.kind == "maintenance":
                kind = "started"
            eta = None
            if ev.kind == "eta":
                try:
                    eta = datetime.fromisoformat(ev.message.rsplit(" to ", 1)[1])
                except (IndexError, ValueError):
                    eta = None
            updates.append({"at": ev.at.isoformat(), "at_text": human_datetime(ev.at, dates, tz), "kind": kind,
                            "eta": eta.isoformat() if eta else None,
                            "eta_text": human_datetime(eta, dates, tz) if eta else None})
        updates.reverse()
        out.append({"id": sit.id, "kind": sit.kind, "channel": sit.channel, "channel_name": name(sit),
                    "cause": cause_text(loaded, cause_key(sit), locale),
                    "opened_at": starts.isoformat(), "opened_at_text": human_datetime(starts, dates, tz),
                    "closed_at": ends.isoformat(), "closed_at_text": human_datetime(ends, dates, tz),
                    "duration_seconds": round(max(0.0, (ends - starts).total_seconds())),
                    "duration_text": human_duration(max(ends - starts, timedelta(0)), locale),
                    "updates": updates})
    return out


class HistoryPart:
    """The uptime template's `style()` and `section()` for a page, rendered once per distinct content: the
    cells change only when a day's whole minutes or a percentage do, so a page polled every minute by every
    visitor during an outage costs one rendering a minute, not one a visitor."""

    def __init__(self, env: Any, find: Callable[[str, str], str | None], tz: str) -> None:
        self.env, self.find, self.tz = env, find, tz
        self._kept: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._lock = threading.Lock()

    def render(self, data: dict[str, Any]) -> tuple[str, str]:
        locale = data["locale"]
        rel = self.find(UPTIME_TEMPLATE, locale)
        if rel is None:
            return "", ""
        chans = [c for c in data["channels"] if "uptime" in c]
        # The days before today are named by `history_version`; of today, only its whole minutes can change.
        key: tuple[Any, ...] = (
            rel, locale, data.get("history_from"), data.get("history_version"),
            tuple((c["key"], c["name"], c["uptime"]["percent"], len(c["uptime"]["days"]),
                   -(-c["uptime"]["days"][-1]["down_seconds"] // 60) if c["uptime"]["days"] else 0,
                   -(-c["uptime"]["days"][-1]["maintenance_seconds"] // 60) if c["uptime"]["days"] else 0)
                  for c in chans),
            tuple((i["id"], i["closed_at"], len(i["updates"])) for i in data.get("incidents", [])))
        if data.get("history_version") is None:  # no name for the past (sample data): key on every day
            key += (tuple(tuple((d["down_seconds"], d["maintenance_seconds"]) for d in c["uptime"]["days"])
                          for c in chans),)
        with self._lock:
            hit = self._kept.get(key)
        if hit is not None:
            return hit
        first = data.get("history_from")
        module = self.env.get_template(rel).make_module({
            "uptime": bars(chans, datetime.fromisoformat(first) if first else None, self.tz, locale),
            "incidents": data.get("incidents", []), "locale": locale})
        out = (module.style(), module.section())
        with self._lock:
            if len(self._kept) >= 64:
                self._kept.clear()
            self._kept[key] = out
        return out


def with_sample_history(loaded: LoadedConfig, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`data` (build_status's) with 90 sample days per channel (no data, up, partly down, maintenance) and one
    past incident with every kind of update, so `continuity validate` renders every branch of the uptime
    template."""
    tz = loaded.config.organisation.timezone
    today = now.astimezone(ZoneInfo(tz)).date()
    days = []
    for i in range(UPTIME_DAYS):
        day = today - timedelta(days=UPTIME_DAYS - 1 - i)
        down, maint = (5400, 1200) if i % 30 == 10 else (0, 3600) if i % 30 == 20 else (60, 0) if i % 30 == 25 \
            else (0, 0)
        days.append({"date": day.isoformat(), "down_seconds": down, "maintenance_seconds": maint, "situations": []})
    for ch in data["channels"]:
        ch["uptime"] = {"percent": 99.93, "days": days}
    first = datetime.combine(today - timedelta(days=60), datetime.min.time(), ZoneInfo(tz))
    closed = now - timedelta(days=2)
    sample = [{"at": at.isoformat(), "at_text": human_datetime(at, data["locale"], tz), "kind": kind,
               "eta": closed.isoformat() if kind == "eta" else None,
               "eta_text": human_datetime(closed, data["locale"], tz) if kind == "eta" else None}
              for at, kind in ((closed, "resolved"), (closed, "started"), (closed, "updated"), (closed, "eta"),
                               (closed - timedelta(hours=1), "opened"))]
    incident = {"id": 1, "kind": "outage", "channel": None, "channel_name": "sample", "cause": "sample",
                "opened_at": (closed - timedelta(hours=1)).isoformat(), "opened_at_text": sample[-1]["at_text"],
                "closed_at": closed.isoformat(), "closed_at_text": sample[0]["at_text"], "duration_seconds": 3600,
                "duration_text": human_duration(timedelta(hours=1), data["locale"]), "updates": sample}
    return {**data, "history_from": first.isoformat(), "history_version": None,
            "incidents": [incident, {**incident, "id": 2, "kind": "maintenance"}]}
