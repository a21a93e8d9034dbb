"""The reports as one self-contained HTML page each, to mail to management or keep with a post-mortem.

`month_page`: a period's figures (history.period_report) with two charts, the daily downtime per channel and a
timeline of the period's situations; `situation_page`: one situation's post-incident page (views.report_view)
with its timeline chart. The charts are pygal's SVG, inline: pygal's script tags and its comments naming its
web site are removed, and so are the SVG namespace URIs (inline SVG in HTML needs none), so the page asks
for nothing outside itself and reads the same offline, in a mail client and printed. Every chart has a text
title and its figures stand in the tables beside it, for screen readers. The words come from the template
pack (templates/<locale>/report/*.html.j2), in the organisation's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from continuity.templating import TemplateCatalog, make_environment

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig

MONTH_TEMPLATE = "report/month.html"
SITUATION_TEMPLATE = "report/situation.html"
# What pygal adds that would reach outside the page or run: scripts, comments with its URLs, namespaces.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_COLOURS = ("#b3261e", "#1f5fa8", "#8a3c00", "#2e7d32", "#6a1b9a", "#00695c")


def inline_svg(chart: Any) -> str:
    """The chart as inline SVG markup that loads and runs nothing."""
    svg = chart.render(is_unicode=True)
    svg = _XMLNS.sub("", _COMMENT.sub("", _SCRIPT.sub("", svg)))
    return svg.replace("<title>Pygal</title>", "", 1)  # the page's figure caption names the chart


def _style(**extra: Any) -> Any:
    import pygal
    from pygal.style import Style

    return pygal.Config(js=[], disable_xml_declaration=True, style=Style(
        background="white", plot_background="white", foreground="#1f1f1f", foreground_strong="#1f1f1f",
        foreground_subtle="#555", colors=_COLOURS, font_family="system-ui, sans-serif",
        label_font_size=11, major_label_font_size=11, legend_font_size=12, title_font_size=14), **extra)


def downtime_chart(days: dict[str, list[dict[str, Any]]], names: dict[str, str]) -> str:
    """Minutes down per day (the day of the month under each bar), one bar series per channel."""
    import pygal

    chart = pygal.Bar(_style(height=320, width=900, legend_at_bottom=True, show_minor_x_labels=False))
    first = next(iter(days.values()), [])
    chart.x_labels = [str(int(d["date"][8:])) for d in first]
    chart.x_labels_major = [lbl for i, lbl in enumerate(chart.x_labels) if i % 5 == 0]
    for channel, rows in days.items():
        chart.add(names.get(channel, channel), [round(d["down_seconds"] / 60, 1) or None for d in rows])
    return inline_svg(chart)


def timeline_chart(spans: list[dict[str, Any]], start: datetime, end: datetime, rows: list[str], scale: float,
                   ticks: list[float], tick_label: Callable[[float], str]) -> str:
    """Horizontal bars on a time axis: one row per entry of `rows`, each span {row, from, to, label} drawn from
    `from` to `to`; x is in units of `scale` seconds since `start`, labelled at `ticks` by `tick_label`."""
    import pygal

    width = max((end - start).total_seconds() / scale, 1.0)
    # pygal draws labelled axes only around a series: a period without outages gets its "no data" text
    axes: dict[str, Any] = {"x_labels": ticks, "x_value_formatter": tick_label,
                            "y_labels": [{"label": r, "value": i} for i, r in enumerate(rows)]} if spans else {}
    chart = pygal.XY(_style(height=max(180, 80 + 46 * len(rows)), width=900, allow_interruptions=True,
                            dots_size=4, legend_at_bottom=True, no_data_text="—",
                            range=(-0.5, len(rows) - 0.5), xrange=(0, width), **axes))
    by_row: dict[int, list[Any]] = {}
    for span in spans:
        y = rows.index(span["row"])
        a = min(width, max(0.0, (span["from"] - start).total_seconds() / scale))
        b = min(width, max(a, (span["to"] - start).total_seconds() / scale))
        by_row.setdefault(y, []).extend([{"value": (a, y), "label": span["label"]},
                                         {"value": (b, y), "label": span["label"]}, None])
    for y, points in sorted(by_row.items()):
        chart.add(rows[y], points[:-1], stroke_style={"width": 14, "linecap": "butt"})
    return inline_svg(chart)


def _env(loaded: LoadedConfig) -> tuple[Any, TemplateCatalog]:
    return make_environment(loaded.template_dirs, autoescape=True), TemplateCatalog(loaded)


def _render(loaded: LoadedConfig, name: str, locale: str, context: dict[str, Any]) -> str:
    from markupsafe import Markup

    env, catalog = _env(loaded)
    rel = catalog.find(name, locale)
    if rel is None:
        raise LookupError(f"template {name}.j2 not found for locale {locale!r}")
    from babel.numbers import format_decimal

    from continuity.variables import human_duration

    def duration(seconds: int | None) -> str:
        if seconds is None:
            return "—"
        return f"{seconds} s" if seconds < 60 else human_duration(timedelta(seconds=seconds), locale)

    def percent(fraction: float) -> str:
        return format_decimal(fraction * 100, format="0.000", locale=locale.replace("-", "_")) + "\u00a0%"

    charts = {k: Markup(v) for k, v in context.pop("charts").items()}  # our own SVG, cleaned above
    return str(env.get_template(rel).render(**context, charts=charts, locale=locale, duration=duration,
                                            percent=percent))


def _local(text: str | None, tz: str) -> str:
    if not text:
        return "—"
    return datetime.fromisoformat(text).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def month_page(loaded: LoadedConfig, rep: dict[str, Any], days: dict[str, list[dict[str, Any]]],
               locale: str, names: dict[str, str]) -> str:
    """The period report (history.period_report) with `days` (history.daily over the same period)."""
    tz = loaded.config.organisation.timezone
    start, end = datetime.fromisoformat(rep["since"]), datetime.fromisoformat(rep["until"])
    channels = [r["channel"] for r in rep["channels"]]
    spans = [{"row": names.get(s["channel"], s["channel"]), "from": datetime.fromisoformat(s["opened_at"]),
              "to": datetime.fromisoformat(s["closed_at"]) if s["closed_at"] else end,
              "label": f"#{s['id']} {_local(s['opened_at'], tz)}"} for s in rep["situations"]]
    zone = ZoneInfo(tz)
    span_days = (end - start).total_seconds() / 86400

    def day_of_month(x: float) -> str:
        return str((start + timedelta(days=x)).astimezone(zone).day)

    charts = {
        "downtime": downtime_chart(days, names),
        "timeline": timeline_chart(spans, start, end, [names.get(c, c) for c in channels], 86400,
                                   [float(x) for x in range(0, int(span_days) + 1, 5)], day_of_month),
    }
    rep = {**rep, "campaigns": [{**c, "starts_text": _local(c["starts_at"], tz), "ends_text": _local(c["ends_at"], tz)}
                                for c in rep.get("campaigns", [])]}
    context = {"rep": rep, "charts": charts, "names": names, "tz": tz,
               "since_text": _local(rep["since"], tz), "until_text": _local(rep["until"], tz),
               "situations": [{**s, "opened_text": _local(s["opened_at"], tz),
                               "closed_text": _local(s["closed_at"], tz)} for s in rep["situations"]],
               "organisation": loaded.config.organisation.name}
    return _render(loaded, MONTH_TEMPLATE, locale, context)


# The rows of a situation's timeline chart, named by sign (the page's caption says what each means).
_ROWS = {"step-done": "✓", "step-failed": "✗", "step-uncertain": "?"}


def situation_page(loaded: LoadedConfig, rep: dict[str, Any], locale: str, now: datetime) -> str:
    """One situation's post-incident page (views.report_view) with its timeline chart: the situation from
    opening to close (or now) on the first row, then each step where it finished, by outcome."""
    tz = loaded.config.organisation.timezone
    opened = datetime.fromisoformat(rep["opened_at"])
    closed = datetime.fromisoformat(rep["closed_at"]) if rep["closed_at"] else now
    end = max(closed, opened + timedelta(minutes=1))
    rows = [f"#{rep['id']}", *[sign for ev, sign in _ROWS.items() if any(e["event"] == ev for e in rep["timeline"])]]
    spans = [{"row": rows[0], "from": opened, "to": closed, "label": f"#{rep['id']} {rep['kind']} {rep['channel']}"}]
    for e in rep["timeline"]:
        if e["event"] in _ROWS:
            at = datetime.fromisoformat(e["at"])
            spans.append({"row": _ROWS[e["event"]], "from": at, "to": at, "label": e["text"]})
    minutes = (end - opened).total_seconds() / 60
    step = next(n for n in (5, 10, 15, 30, 60, 120, 240, 480, 1440, 10**9) if minutes / n <= 8)
    charts = {"timeline": timeline_chart(spans, opened, end, rows, 60,
                                         [float(x) for x in range(0, int(minutes) + 1, step)],
                                         lambda x: f"+{int(x)}")}
    context = {"rep": rep, "charts": charts, "tz": tz, "organisation": loaded.config.organisation.name,
               "opened_text": _local(rep["opened_at"], tz), "closed_text": _local(rep["closed_at"], tz),
               "eta_text": _local(rep["eta"], tz) if rep["eta"] else None,
               "timeline": [{**e, "at_text": _local(e["at"], tz)} for e in rep["timeline"]]}
    return _render(loaded, SITUATION_TEMPLATE, locale, context)
