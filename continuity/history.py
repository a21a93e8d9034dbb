"""The ledger over days and months: seconds down per channel and day, availability, MTTR, the month's report.

Days are the organisation's calendar days (a day across a DST change has 23 or 25 hours), because "Tuesday's
outage" is the Tuesday people lived through. An outage still open counts up to now; one across midnight
counts on both days. Maintenance is planned and announced, so its time is counted apart and never as
downtime, even where an outage overlaps a window. Pure functions over the store's public methods: no SQL here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from continuity.store.protocol import Store
from continuity.store.records import SituationRecord

Interval = tuple[datetime, datetime]
UPTIME_DAYS = 90
# Step actions whose first success marks "customers were told" and "staff have the runbook".
_FIRST = {"customer_notice": "notice", "banner": "banner", "staff_runbook": "notify"}


def day_bounds(day: date, tz: str) -> Interval:
    """The UTC start and end of a calendar day in `tz` (23 or 25 hours long across a DST change)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _span(sit: SituationRecord, now: datetime) -> Interval:
    end = sit.closed_at if sit.closed_at is not None else now
    return sit.opened_at.astimezone(UTC), max(end, sit.opened_at).astimezone(UTC)


def _maintenance_span(sit: SituationRecord, now: datetime) -> Interval:
    """A maintenance situation opens when it is announced (ahead of the window): its time is from the
    window's start to the situation's close (or now)."""
    start, end = _span(sit, now)
    window = sit.data.get("maintenance") if sit.data else None
    try:
        begins = datetime.fromisoformat(window["starts_at"]).astimezone(UTC) if window else start
    except (KeyError, TypeError, ValueError):
        begins = start
    return max(start, begins), max(end, max(start, begins))


def _union(spans: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        elif end > start:
            out.append((start, end))
    return out


def _minus(spans: list[Interval], holes: list[Interval]) -> list[Interval]:
    """`spans` without the time covered by `holes` (both unions, sorted)."""
    out: list[Interval] = []
    for start, end in spans:
        cur = start
        for h_start, h_end in holes:
            if h_end <= cur or h_start >= end:
                continue
            if h_start > cur:
                out.append((cur, h_start))
            cur = max(cur, h_end)
        if cur < end:
            out.append((cur, end))
    return out


def _seconds(spans: Iterable[Interval], window: Interval) -> int:
    total = 0.0
    for start, end in spans:
        lo, hi = max(start, window[0]), min(end, window[1])
        if hi > lo:
            total += (hi - lo).total_seconds()
    return round(total)


class _Channel:
    """One channel's outages and maintenance over a period, as unions of intervals."""

    def __init__(self, situations: Sequence[SituationRecord], now: datetime) -> None:
        self.outages = [s for s in situations if s.kind == "outage"]
        self.maint = _union(_maintenance_span(s, now) for s in situations if s.kind == "maintenance")
        self.down = _minus(_union(_span(s, now) for s in self.outages), self.maint)
        self.spans = {s.id: _span(s, now) for s in self.outages}
        self.spans.update({s.id: _maintenance_span(s, now) for s in situations if s.kind == "maintenance"})
        self.now = now

    def day(self, window: Interval) -> dict[str, Any]:
        ids = [sid for sid, (s, e) in self.spans.items() if s < window[1] and e > window[0]]
        return {"down_seconds": _seconds(self.down, window), "maintenance_seconds": _seconds(self.maint, window),
                "situations": sorted(ids)}


def _grouped(situations: Iterable[SituationRecord], channels: Sequence[str], now: datetime) -> dict[str, _Channel]:
    found: dict[str, list[SituationRecord]] = {c: [] for c in channels}
    for sit in situations:
        if sit.channel in found and sit.opened_at <= now:
            found[sit.channel].append(sit)
    return {c: _Channel(sits, now) for c, sits in found.items()}


def _by_channel(store: Store, channels: Sequence[str], since: datetime, now: datetime) -> dict[str, _Channel]:
    return _grouped(store.situations_since(since), channels, now)


def daily(store: Store, channels: Sequence[str], tz: str, first: date, last: date,
          now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Per channel, one entry per calendar day from `first` to `last` (inclusive), oldest first; a day's
    part after `now` has not happened and counts nothing."""
    return daily_of(store.situations_since(day_bounds(first, tz)[0]), channels, tz, first, last, now)


def daily_of(situations: Iterable[SituationRecord], channels: Sequence[str], tz: str, first: date, last: date,
             now: datetime) -> dict[str, list[dict[str, Any]]]:
    """`daily` over situations already read (those opened or closed since `first` began, and every open one),
    so a cache can keep them and count today again at each request without asking the store."""
    per = _grouped(situations, channels, now)
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in channels}
    day = first
    while day <= last:
        lo, hi = day_bounds(day, tz)
        window = (lo, min(hi, max(lo, now.astimezone(UTC))))
        for c in channels:
            out[c].append({"date": day.isoformat(), **per[c].day(window)})
        day += timedelta(days=1)
    return out


def uptime(store: Store, channels: Sequence[str], tz: str, now: datetime,
           days: int = UPTIME_DAYS) -> dict[str, dict[str, Any]]:
    """Per channel, the last `days` calendar days up to today and the availability over them in percent
    (two decimals), for the status page."""
    today = now.astimezone(ZoneInfo(tz)).date()
    first = today - timedelta(days=days - 1)
    return with_percent(daily(store, channels, tz, first, today, now), tz, first, now)


def with_percent(rows: dict[str, list[dict[str, Any]]], tz: str, first: date,
                 now: datetime) -> dict[str, dict[str, Any]]:
    """Per channel {"percent", "days"}: the availability from `first`'s start to now, two decimals."""
    period = (now.astimezone(UTC) - day_bounds(first, tz)[0]).total_seconds()
    out = {}
    for c, entries in rows.items():
        down = sum(e["down_seconds"] for e in entries)
        out[c] = {"percent": round(100 * (1 - down / period), 2) if period > 0 else 100.0, "days": entries}
    return out


def month_period(month: str, tz: str) -> Interval:
    """The UTC bounds of calendar month `YYYY-MM` in `tz`; ValueError naming the expected form."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = date(year, mon, 1)
    except ValueError:
        raise ValueError(f"{month!r}: expected YYYY-MM") from None
    nxt = date(year + (mon == 12), mon % 12 + 1, 1)
    return day_bounds(first, tz)[0], day_bounds(nxt, tz)[0]


def _first_done(store: Store, sit: SituationRecord) -> dict[str, int | None]:
    """Seconds from opening to the first success of each kind of step (None: never)."""
    out: dict[str, int | None] = {name: None for name in _FIRST}
    for step in store.steps_for(sit.id):
        # "undone": it went out and was switched off when the situation closed
        if step.phase == "undo" or step.state not in ("done", "undone") or step.finished_at is None:
            continue
        for name, action in _FIRST.items():
            took = round((step.finished_at - sit.opened_at).total_seconds())
            if step.action == action and (out[name] is None or took < (out[name] or 0)):
                out[name] = max(took, 0)
    return out


def period_report(store: Store, channels: Sequence[str], tz: str, since: datetime, until: datetime,
                  now: datetime) -> dict[str, Any]:
    """The figures for a period [since, until): per channel outages, seconds down, availability and the
    longest outage; MTTR; per situation how fast staff and customers were told; maintenance time; the
    auto-responder's totals. Time after `now` has not happened and is left out of the period."""
    end = min(until, now).astimezone(UTC)
    start = since.astimezone(UTC)
    window = (start, max(start, end))
    period = (window[1] - window[0]).total_seconds()
    per = _by_channel(store, channels, start, now)
    rows: list[dict[str, Any]] = []
    durations: list[int] = []
    situations: list[dict[str, Any]] = []
    maint_total = 0
    for c in channels:
        ch = per[c]
        outages = [s for s in ch.outages if ch.spans[s.id][0] < window[1] and ch.spans[s.id][1] > window[0]]
        lengths = [round((ch.spans[s.id][1] - ch.spans[s.id][0]).total_seconds()) for s in outages]
        durations += lengths
        down = _seconds(ch.down, window)
        maint = _seconds(ch.maint, window)
        maint_total += maint
        rows.append({"channel": c, "outages": len(outages), "down_seconds": down,
                     "availability": round(1 - down / period, 5) if period > 0 else 1.0,
                     "longest_outage_seconds": max(lengths, default=0), "maintenance_seconds": maint})
        for s, length in zip(outages, lengths, strict=True):
            situations.append({"id": s.id, "channel": c, "opened_at": s.opened_at.isoformat(),
                               "closed_at": s.closed_at.isoformat() if s.closed_at else None,
                               "duration_seconds": length, **{f"{k}_seconds": v for k, v in
                                                              _first_done(store, s).items()}})
    situations.sort(key=lambda r: r["id"])
    return {"since": window[0].isoformat(), "until": window[1].isoformat(), "period_seconds": round(period),
            "channels": rows, "mttr_seconds": round(sum(durations) / len(durations)) if durations else None,
            "situations": situations, "maintenance_minutes": round(maint_total / 60),
            "autoreplies": autoreplies(store, *window), "campaigns": campaigns(store, *window)}


def autoreplies(store: Store, since: datetime, until: datetime) -> dict[str, Any]:
    """The auto-responder's decisions in [since, until): answered (sent), skipped, and the skips by reason."""
    answered = skipped = 0
    reasons: dict[str, int] = {}
    for state, reason, n in store.autoreply_decided_between(since, until):
        if state == "sent":
            answered += n
        elif state == "skipped":
            skipped += n
            reasons[reason] = reasons.get(reason, 0) + n
    return {"answered": answered, "skipped": skipped, "skipped_by_reason": dict(sorted(reasons.items()))}


def campaigns(store: Store, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Campaign runs that overlapped [since, until), with what the store knows of their surge: the expected
    load from the campaign's snapshot, and the mails the auto-responder decided during the run (its volume)."""
    out = []
    for run in store.campaign_runs():
        ran = run.situation_id is not None or run.state in ("live", "ended")
        if run.starts_at >= until or run.ends_at <= since or not ran:
            continue
        version = store.get_campaign_version(run.name, run.version)
        load = version.snapshot.get("load") if version else None
        lo, hi = max(run.starts_at, since), min(run.ends_at, until)
        mails = sum(n for state, _r, n in store.autoreply_decided_between(lo, hi) if state in ("sent", "skipped"))
        out.append({"name": run.name, "run": run.run, "state": run.state, "starts_at": run.starts_at.isoformat(),
                    "ends_at": run.ends_at.isoformat(), "situation_id": run.situation_id,
                    "expected_load": load if isinstance(load, str) else None, "autoreply_mails": mails})
    return out


def report_markdown(rep: dict[str, Any]) -> str:
    """The period report as Markdown for the management meeting."""
    lines = [f"# Availability {rep['since']} – {rep['until']}", "",
             f"MTTR: {rep['mttr_seconds'] if rep['mttr_seconds'] is not None else '—'} s · "
             f"maintenance: {rep['maintenance_minutes']} min · auto-replies answered "
             f"{rep['autoreplies']['answered']}, skipped {rep['autoreplies']['skipped']}", "",
             "| channel | outages | down (s) | availability | longest (s) | maintenance (s) |",
             "|---|---|---|---|---|---|"]
    for r in rep["channels"]:
        lines.append(f"| {r['channel']} | {r['outages']} | {r['down_seconds']} | {r['availability']:.5f} | "
                     f"{r['longest_outage_seconds']} | {r['maintenance_seconds']} |")
    if rep["situations"]:
        lines += ["", "| situation | channel | opened | duration (s) | first customer notice (s) | banner (s) |"
                      " staff runbook (s) |", "|---|---|---|---|---|---|---|"]
        for s in rep["situations"]:
            def shown(v: int | None) -> str:
                return "—" if v is None else str(v)
            lines.append(f"| #{s['id']} | {s['channel']} | {s['opened_at']} | {s['duration_seconds']} | "
                         f"{shown(s['customer_notice_seconds'])} | {shown(s['banner_seconds'])} | "
                         f"{shown(s['staff_runbook_seconds'])} |")
    skips = rep["autoreplies"].get("skipped_by_reason") or {}
    if skips:
        lines += ["", "Auto-replies skipped by reason: " + ", ".join(f"{k} {v}" for k, v in skips.items())]
    if rep.get("campaigns"):
        lines += ["", "| campaign | run | from | to | expected load | auto-responder mails |",
                  "|---|---|---|---|---|---|"]
        for c in rep["campaigns"]:
            lines.append(f"| {c['name']} | {c['run']} | {c['starts_at']} | {c['ends_at']} | "
                         f"{c['expected_load'] or '—'} | {c['autoreply_mails']} |")
    return "\n".join(lines) + "\n"
