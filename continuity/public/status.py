"""The public status page: each customer channel's state and the open situations, per locale.

Customers see what a support lead would tell them, never the ledger: no staff names, no sink errors, no
probe details. What happened is told by a prepared cause in the page's language (`--cause`); the reason a person
typed is for staff and shows only when they published it (`--public-reason`), and only on the page of the
language it is written in; the daemon's reasons ("smtp: connection refused 10.0.0.5:25") and a campaign's
(its dates and load forecast) never do. A campaign's surge
opens at the staff briefing but stays off the public pages until the launch, and is named by its title, never
by its `campaign:<name>` scope key; for customers it begins at the launch (`opened_at`), and nothing logged
before it (the briefing) is shown.

Channel state, most telling first: an open outage, a maintenance window in progress, a surge; without one,
the daemon's health checks (down, degraded, up, or unknown before the first check). A channel without
health checks is `up` unless a situation says otherwise: nobody declared a problem with it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from continuity.config.loader import LoadedConfig
from continuity.errors import InputError, Location
from continuity.store.records import EventRecord, SituationRecord
from continuity.store.sqlite import SqliteStore
from continuity.templating import make_environment
from continuity.variables import (
    cause_key,
    cause_text,
    channel_name,
    customer_reason,
    date_locale,
    human_datetime,
)

STATUS_TEMPLATE = "public/status.html"
# From calm to alarming; the page's headline follows the most alarming channel.
SEVERITY = ("up", "unknown", "degraded", "busy", "maintenance", "down", "outage")
_SITUATION_STATUS = {"outage": "outage", "maintenance": "maintenance", "surge": "busy"}
# Timeline events customers may see, by the engine's event kind; everything else is internal.
_PUBLIC_EVENTS = {"opened": "opened", "eta": "eta", "updated": "updated", "refreshed": "updated"}
# Situation sources whose reason a person typed for customers to read; the others' reasons are internal.
PERSON_SOURCES = ("cli", "http", "console", "maintenance")
# The prefix of a campaign's scope key (engine.CAMPAIGN_SCOPE), and the name of its surge where the
# campaign's snapshot has no title.
_CAMPAIGN_SCOPE = "campaign:"
_HIGH_DEMAND = {"en": "high demand", "hu": "nagy érdeklődés", "sk": "zvýšený záujem",
                "pl": "zwiększone zainteresowanie"}


def public_channels(loaded: LoadedConfig) -> list[str]:
    """The channels customers use: as configured, else those with a contact to give out."""
    chosen = loaded.config.daemon.public.channels
    if chosen is not None:
        return list(chosen)
    return [key for key, ch in loaded.config.channels.items() if ch.contact]


def _launch(sit: SituationRecord) -> datetime | None:
    """A campaign surge's launch time, None for any other situation (or an unreadable launch)."""
    campaign = sit.data.get("campaign") if sit.data else None
    if not isinstance(campaign, dict) or not campaign.get("starts_at"):
        return None
    try:
        return datetime.fromisoformat(campaign["starts_at"])
    except (TypeError, ValueError):
        return None


def public_since(sit: SituationRecord) -> datetime:
    """When the situation began for customers: a campaign's launch, not the staff briefing that opened it."""
    return _launch(sit) or sit.opened_at


def launched(sit: SituationRecord, now: datetime) -> bool:
    """False for a campaign's surge before its launch: staff are briefed ahead, customers learn of it at
    the launch (like the banner and the auto-reply, which start at the launch step too)."""
    campaign = sit.data.get("campaign") if sit.data else None
    if not isinstance(campaign, dict) or not campaign.get("starts_at"):
        return True
    try:
        return datetime.fromisoformat(campaign["starts_at"]) <= now
    except (TypeError, ValueError):
        return False  # unreadable launch time: say nothing rather than announce too early


def public_situations(loaded: LoadedConfig, store: SqliteStore, now: datetime) -> list[SituationRecord]:
    """Open situations customers are told about: those of public channels, and every launched surge."""
    shown = set(public_channels(loaded))
    return [s for s in store.open_situations()
            if (s.channel in shown or s.kind == "surge") and launched(s, now)]


# Control characters other than tab and line breaks. A reason may carry them (the HTTP API takes any JSON string,
# "\u0000" included); in HTML they are parse errors that browsers drop or replace each in their own way.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _shown(text: str) -> str:
    return _CONTROL.sub(" ", text)


_EMAIL = re.compile(r"[^@\s<>\"']+@[^@\s<>\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\(?[0-9][0-9 ()./-]{4,}[0-9]")


def contact_href(contact: str | None) -> str | None:
    """The link a contact opens on a phone: `tel:+3612345678`, `mailto:help@…`, or the http(s) URL itself;
    None for anything else (a chat's name, a street address), which stays plain text."""
    text = (contact or "").strip()
    if re.fullmatch(r"https?://[^\s<>\"']+", text, re.IGNORECASE):
        return text
    if _EMAIL.fullmatch(text):
        return f"mailto:{text}"
    if _PHONE.fullmatch(text):
        return "tel:" + re.sub(r"[^0-9+]", "", text)
    return None


def public_reason(sit: SituationRecord, locale: str, default_locale: str) -> str | None:
    """The reason as customers may read it: only one a person typed and published for them, in its language."""
    if sit.source not in PERSON_SOURCES:
        return None
    text = customer_reason(sit, locale, default_locale)
    return _shown(text) if text else None


def situation_name(loaded: LoadedConfig, sit: SituationRecord, locale: str) -> str:
    """What the page calls the situation's scope: the channel's name, or a campaign's public title."""
    if not sit.channel.startswith(_CAMPAIGN_SCOPE):
        return channel_name(loaded, sit.channel, locale)
    campaign = sit.data.get("campaign") if sit.data else None
    snapshot = campaign.get("snapshot") if isinstance(campaign, dict) else None
    title = snapshot.get("title") if isinstance(snapshot, dict) else None
    if isinstance(title, str) and title:
        return _shown(title)
    org = loaded.config.organisation
    order = (locale, org.default_locale, "en")
    if isinstance(title, dict):
        for loc in order:
            if isinstance(title.get(loc), str) and title[loc]:
                return _shown(str(title[loc]))
    return next(_HIGH_DEMAND[loc] for loc in (locale, locale.split("-")[0], "en") if loc in _HIGH_DEMAND)


def _match(tag: str, served: list[str]) -> str | None:
    tag = tag.strip().lower()
    if not tag:
        return None
    for loc in served:
        if loc.lower() == tag:
            return loc
    primary = tag.split("-")[0]
    for loc in served:
        if loc.lower().split("-")[0] == primary:
            return loc
    return None


def pick_locale(loaded: LoadedConfig, requested: str | None, accept_language: str | None) -> str:
    """`?lang=` first, then the browser's Accept-Language by its q-values, then the organisation's default."""
    org = loaded.config.organisation
    served = list(org.locales)
    if requested:
        found = _match(requested, served)
        if found:
            return found
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            weighted.append((-q, i, tag))
    for _, _, tag in sorted(weighted):
        found = org.default_locale if tag.strip() == "*" else _match(tag, served)
        if found:
            return found
    return org.default_locale


def _maintenance(sit: SituationRecord, now: datetime) -> dict[str, Any] | None:
    window = sit.data.get("maintenance") if sit.data else None
    if not window:
        return None
    start, end = datetime.fromisoformat(window["starts_at"]), datetime.fromisoformat(window["ends_at"])
    return {"starts_at": start, "ends_at": end, "started": now >= start}


def _updates(events: Callable[[int], list[EventRecord]], sit: SituationRecord) -> list[dict[str, Any]]:
    since = public_since(sit)
    out = []
    for ev in events(sit.id):
        kind = _PUBLIC_EVENTS.get(ev.kind)
        if kind is None or ev.at < since:  # before a campaign's launch everything is internal
            continue
        eta = None
        if ev.kind == "eta":
            try:
                eta = datetime.fromisoformat(ev.message.rsplit(" to ", 1)[1])
            except (IndexError, ValueError):
                eta = None
        if ev.kind == "refreshed" and sit.kind == "maintenance":
            kind = "started"
        out.append({"at": ev.at, "kind": kind, "eta": eta})
    out.reverse()  # newest first, as status pages read
    return out


def status_data(loaded: LoadedConfig, store: SqliteStore, health: Mapping[str, str | None], now: datetime,
                locale: str) -> dict[str, Any]:
    """The status as plain data for one locale: machine values (ISO times, state words) and the localised
    text beside them (`*_text`), so /status.json and the HTML page say the same thing. Each channel carries
    its 90 days of uptime (history.uptime, cached per day by public.uptime), days in the organisation's
    timezone; `incidents` are the last 14 days' closed ones with their timelines."""
    from continuity.public.uptime import CACHE

    data = build_status(loaded, public_situations(loaded, store, now), store.events_for, health, now, locale)
    past = CACHE.for_page(loaded, store, [c["key"] for c in data["channels"]], now, locale,
                          lambda sit: situation_name(loaded, sit, locale), public_since)
    for ch in data["channels"]:
        ch["uptime"] = past["uptime"][ch["key"]]
    first = past["history_from"]
    data["history_from"] = first.isoformat() if first else None  # days wholly before it: no data
    data["history_version"] = past["history_version"]  # changes when the days before today do
    data["incidents"] = past["incidents"]
    return data


def build_status(loaded: LoadedConfig, situations: list[SituationRecord],
                 events: Callable[[int], list[EventRecord]], health: Mapping[str, str | None], now: datetime,
                 locale: str) -> dict[str, Any]:
    org = loaded.config.organisation
    tz = org.timezone
    dates = date_locale(loaded, locale)  # English dates as organisation.english says (en-GB unless en-US)

    def when(dt: datetime | None) -> str | None:
        return human_datetime(dt, dates, tz) if dt else None

    by_channel: dict[str, list[SituationRecord]] = {}
    for sit in situations:
        by_channel.setdefault(sit.channel, []).append(sit)

    channels: list[dict[str, Any]] = []
    for key in public_channels(loaded):
        status: str | None = None
        for sit in by_channel.get(key, []):
            window = _maintenance(sit, now)
            if sit.kind == "maintenance" and window is not None and not window["started"]:
                continue  # announced ahead: the channel still works
            candidate = _SITUATION_STATUS.get(sit.kind, "outage")
            if status is None or SEVERITY.index(candidate) > SEVERITY.index(status):
                status = candidate
        probe = health.get(key)
        channels.append({
            "key": key,
            "name": channel_name(loaded, key, locale),
            "contact": loaded.config.channels[key].contact,
            "contact_href": contact_href(loaded.config.channels[key].contact),
            "status": status or probe or "up",
            "health": probe,
        })

    shown: list[dict[str, Any]] = []
    statuses: list[str] = [c["status"] for c in channels]
    for sit in situations:
        window = _maintenance(sit, now)
        ch_cfg = loaded.config.channels.get(sit.channel)
        fallbacks = []
        for fb in ch_cfg.fallbacks if ch_cfg else []:
            fb_cfg = loaded.config.channels.get(fb.channel)
            fallbacks.append({"key": fb.channel, "name": channel_name(loaded, fb.channel, locale),
                              "contact": fb_cfg.contact if fb_cfg else None,
                              "contact_href": contact_href(fb_cfg.contact if fb_cfg else None)})
        updates = [{"at": u["at"].isoformat(), "at_text": when(u["at"]), "kind": u["kind"],
                    "eta": u["eta"].isoformat() if u["eta"] else None, "eta_text": when(u["eta"])}
                   for u in _updates(events, sit)]
        shown.append({
            "id": sit.id,
            "kind": sit.kind,
            "channel": None if sit.channel.startswith(_CAMPAIGN_SCOPE) else sit.channel,
            "channel_name": situation_name(loaded, sit, locale),
            "cause": cause_text(loaded, cause_key(sit), locale),
            "reason": public_reason(sit, locale, org.default_locale),
            "opened_at": public_since(sit).isoformat(),
            "opened_at_text": when(public_since(sit)),
            "eta": sit.eta.isoformat() if sit.eta else None,
            "eta_text": when(sit.eta),
            "maintenance": None if window is None else {
                "starts_at": window["starts_at"].isoformat(), "starts_at_text": when(window["starts_at"]),
                "ends_at": window["ends_at"].isoformat(), "ends_at_text": when(window["ends_at"]),
                "started": window["started"],
            },
            "fallbacks": fallbacks,
            "updates": updates,
        })
        if sit.kind != "maintenance" or window is None or window["started"]:
            statuses.append(_SITUATION_STATUS.get(sit.kind, "outage"))
    overall = max(statuses, key=SEVERITY.index, default="up")
    return {
        "organisation": org.name,
        "website": org.website,
        "locale": locale,
        "locales": list(org.locales),
        "generated_at": now.isoformat(),
        "generated_at_text": when(now),
        "overall": overall,
        "channels": channels,
        "situations": shown,
    }


def language_name(locale: str) -> str:
    """A language's own name for itself (Magyar, Slovenčina), for the page's language links."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(locale.replace("-", "_")).get_display_name(locale.replace("-", "_")) or locale
    except (ValueError, UnknownLocaleError):
        return locale
    return name[:1].upper() + name[1:]


class StatusPage:
    """Renders status.html.j2 with autoescaping: unlike the text blocks of messages, this is HTML, and a
    reason typed during an outage must come out as text."""

    def __init__(self, loaded: LoadedConfig) -> None:
        from continuity.templating import TemplateCatalog

        self.loaded = loaded
        self.catalog = TemplateCatalog(loaded)
        self.env = make_environment(loaded.template_dirs, autoescape=True)
        from continuity.public.uptime import HistoryPart

        self.history = HistoryPart(self.env, self.catalog.find, loaded.config.organisation.timezone)

    def render(self, data: dict[str, Any], refresh_seconds: int = 60) -> str:
        locale = data["locale"]
        rel = self.catalog.find(STATUS_TEMPLATE, locale)
        if rel is None:
            raise LookupError(f"template {STATUS_TEMPLATE}.j2 not found for locale {locale!r}")
        languages = [{"code": loc, "name": language_name(loc), "current": loc == locale} for loc in data["locales"]]
        style, section = self.history.render(data)  # public/uptime.html.j2: 90 days, recent incidents
        return self.env.get_template(rel).render(**data, languages=languages, refresh_seconds=refresh_seconds,
                                                 uptime_style=style, uptime_section=section)


def sample_situations(loaded: LoadedConfig, now: datetime) -> tuple[list[SituationRecord], list[EventRecord]]:
    """An outage (with and without a person's reason), a maintenance in progress and a surge: every branch
    of the status template, for `continuity validate`."""
    from dataclasses import replace
    from datetime import timedelta

    from continuity.samples import sample_situation

    channel = next(iter(public_channels(loaded) or loaded.config.channels))
    outage = replace(sample_situation(channel, now - timedelta(minutes=40)), id=1, eta=now + timedelta(hours=2))
    quiet = replace(outage, id=2, source="daemon", eta=None)
    window = {"maintenance": {"starts_at": (now - timedelta(hours=1)).isoformat(),
                              "ends_at": (now + timedelta(hours=1)).isoformat()}}
    maintenance = replace(outage, id=3, kind="maintenance", data=window)
    surge = replace(outage, id=4, kind="surge")
    events = [EventRecord(1, 1, now - timedelta(minutes=40), "opened", "opened"),
              EventRecord(2, 1, now - timedelta(minutes=10), "eta", f"ETA changed by x to {outage.eta.isoformat()}"
                          if outage.eta else "eta"),
              EventRecord(3, 1, now - timedelta(minutes=5), "updated", "reason changed"),
              EventRecord(4, 3, now, "refreshed", "maintenance window started")]
    return [outage, quiet, maintenance, surge], events


def check_templates(loaded: LoadedConfig, now: datetime) -> int:
    """Render the status page in every served locale with sample situations; errors name file and line."""
    import jinja2

    from continuity.templating import shown_path, template_line

    page = StatusPage(loaded)
    situations, events = sample_situations(loaded, now)
    errors = []
    count = 0
    for locale in loaded.config.organisation.locales:
        rel = page.catalog.find(STATUS_TEMPLATE, locale)
        if rel is None:
            errors.append(InputError(f"template {STATUS_TEMPLATE}.j2 not found for locale {locale!r}",
                                     Location(f"{locale}/{STATUS_TEMPLATE}.j2")))
            continue
        for shown in (situations, []):
            data = build_status(loaded, shown, lambda sid: [e for e in events if e.situation_id == sid],
                                {}, now, locale)
            if shown:  # and the 90 days and past incidents of public/uptime.html.j2
                from continuity.public.uptime import with_sample_history

                data = with_sample_history(loaded, data, now)
            try:
                page.render(data)
                count += 1
            except jinja2.TemplateSyntaxError as exc:
                errors.append(InputError(f"template syntax error: {exc.message}",
                                         Location(shown_path(exc.filename, rel), exc.lineno)))
                break
            except (jinja2.TemplateError, TypeError, ValueError, LookupError) as exc:
                tmpl = page.env.get_template(rel)
                line = template_line(sys.exc_info()[2], tmpl)
                errors.append(InputError(f"template error: {exc}", Location(shown_path(tmpl.filename, rel), line)))
                break
    if errors:
        from continuity.errors import InputErrors

        raise InputErrors(errors)
    return count
