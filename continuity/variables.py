"""The variables templates see, localised to the organisation's locale and timezone.

One function builds them for real runs, drills and `validate`'s sample rendering, so a template that
renders in `validate` renders during an outage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.config.models import Playbook
    from continuity.store.records import SituationRecord

CHANNEL_NAMES: dict[str, dict[str, str]] = {
    "phone": {"en": "phone line", "hu": "telefonos ügyfélszolgálat", "sk": "telefonická linka",
              "pl": "linia telefoniczna"},
    "email": {"en": "email", "hu": "e-mail", "sk": "e-mail", "pl": "e-mail"},
    "chat": {"en": "live chat", "hu": "chat", "sk": "chat", "pl": "czat"},
    "internet": {"en": "office internet connection", "hu": "irodai internetkapcsolat",
                 "sk": "internetové pripojenie kancelárie", "pl": "internet w biurze"},
    "social": {"en": "social media", "hu": "közösségi média", "sk": "sociálne siete", "pl": "media społecznościowe"},
    "web": {"en": "website", "hu": "weboldal", "sk": "webová stránka", "pl": "strona internetowa"},
}


@dataclass(frozen=True)
class Obj:
    """A read-only attribute bag for templates (the sandbox forbids touching anything else)."""

    data: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None


def _babel_locale(locale: str) -> str:
    return locale.replace("-", "_")


def human_duration(delta: timedelta, locale: str) -> str:
    """`1 óra 5 perc`, `2 godziny`, `45 minutes`: hours and minutes, localised, plural rules included."""
    from babel.dates import format_timedelta

    secs = max(0, int(delta.total_seconds()))
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    loc = _babel_locale(locale)
    parts = []
    if days:
        parts.append(format_timedelta(timedelta(days=days), granularity="day", threshold=1000, locale=loc))
    if hours:
        parts.append(format_timedelta(timedelta(hours=hours), granularity="hour", threshold=1000, locale=loc))
    if minutes:
        parts.append(format_timedelta(timedelta(minutes=minutes), granularity="minute", threshold=1000, locale=loc))
    if not parts:
        return format_timedelta(timedelta(minutes=1), granularity="minute", threshold=1000, locale=loc)
    return " ".join(parts[:2])


def human_datetime(when: datetime, locale: str, tz: str) -> str:
    from babel.dates import format_datetime

    return format_datetime(when.astimezone(ZoneInfo(tz)), "short", locale=_babel_locale(locale))


def human_time(when: datetime, locale: str, tz: str) -> str:
    from babel.dates import format_time

    return format_time(when.astimezone(ZoneInfo(tz)), "short", locale=_babel_locale(locale))


def channel_name(loaded: LoadedConfig, key: str, locale: str) -> str:
    ch = loaded.config.channels.get(key)
    if ch is not None:
        for loc in (locale, loaded.config.organisation.default_locale, "en"):
            if loc in ch.display:
                return ch.display[loc]
    names = CHANNEL_NAMES.get(key, {})
    return names.get(locale) or names.get("en") or key


def template_context(
    loaded: LoadedConfig,
    situation: SituationRecord,
    playbook: Playbook | None,
    locale: str,
    now: datetime,
    *,
    step_id: str = "",
    occurrence: int = 1,
) -> dict[str, Any]:
    """Everything a template may use. Every name is always present (None when it does not apply)."""
    org = loaded.config.organisation
    tz = org.timezone
    ch_cfg = loaded.config.channels.get(situation.channel)
    fallbacks = []
    if ch_cfg is not None:
        for fb in ch_cfg.fallbacks:
            fb_cfg = loaded.config.channels.get(fb.channel)
            fallbacks.append(Obj({
                "key": fb.channel,
                "name": channel_name(loaded, fb.channel, locale),
                "contact": fb_cfg.contact if fb_cfg else None,
                "extra_wait": human_duration(fb.extra_wait, locale) if fb.extra_wait else None,
            }))
    eta = None
    if situation.eta is not None:
        eta = Obj({
            "at": human_datetime(situation.eta, locale, tz),
            "time": human_time(situation.eta, locale, tz),
            "remaining": human_duration(situation.eta - now, locale) if situation.eta > now else None,
        })
    closed = situation.closed_at
    window = situation.data.get("maintenance") if situation.data else None
    maintenance = None
    if window:
        start, end = datetime.fromisoformat(window["starts_at"]), datetime.fromisoformat(window["ends_at"])
        maintenance = Obj({
            "start": human_datetime(start, locale, tz), "end": human_datetime(end, locale, tz),
            "start_time": human_time(start, locale, tz), "end_time": human_time(end, locale, tz),
            "started": now >= start, "length": human_duration(end - start, locale),
        })
    return {
        "locale": locale,
        "org": Obj({"name": org.name, "website": org.website, "status_url": org.status_url}),
        "situation": Obj({
            "id": situation.id,
            "kind": situation.kind,
            "source": situation.source,
            "opened_by": situation.opened_by,
        }),
        "channel": Obj({
            "key": situation.channel,
            "name": channel_name(loaded, situation.channel, locale),
            "contact": ch_cfg.contact if ch_cfg else None,
        }),
        "fallbacks": fallbacks,
        "reason": situation.reason,
        "eta": eta,
        "opened_at": human_datetime(situation.opened_at, locale, tz),
        "opened_time": human_time(situation.opened_at, locale, tz),
        "elapsed": human_duration((closed or now) - situation.opened_at, locale),
        "closed_at": human_datetime(closed, locale, tz) if closed else None,
        "duration": human_duration(closed - situation.opened_at, locale) if closed else None,
        "note": situation.note,
        "occurrence": occurrence,
        "step_id": step_id,
        "plan_b": playbook.plan_b if playbook else None,
        "maintenance": maintenance,
        # steps whose outcome nobody knows (a mail server that took a message but never confirmed it)
        "unsure": [Obj(u) for u in (situation.data or {}).get("unsure", [])],
        **_parts(loaded, situation, playbook, locale, now),
    }


# Parts of the template context that a feature package contributes (the campaigns package registers
# `campaign`): render stays below the features that use it, and a name nobody registered is None.
ContextPart = Callable[..., Any]  # (loaded, situation, playbook, locale, now) -> the variable's value
CONTEXT_PARTS: dict[str, ContextPart] = {}


def register_context_part(name: str, part: ContextPart) -> None:
    """Make `name` a template variable computed by `part(loaded, situation, playbook, locale, now)`."""
    CONTEXT_PARTS[name] = part


def _parts(loaded: LoadedConfig, situation: SituationRecord, playbook: Playbook | None, locale: str,
           now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"campaign": None}
    for name, part in CONTEXT_PARTS.items():
        out[name] = part(loaded, situation, playbook, locale, now)
    return out
