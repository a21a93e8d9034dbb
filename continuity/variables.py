"""The variables templates see, localised to the organisation's locale and timezone.

One function builds them for real runs, drills and `validate`'s sample rendering, so a template that
renders in `validate` renders during an outage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
    # Whole minutes are all it shows: cached per (minutes, locale), babel is slow and steps ask again and again.
    return _human_duration(max(0, int(delta.total_seconds())) // 60 * 60, locale)


@functools.lru_cache(maxsize=4096)
def _human_duration(secs: int, locale: str) -> str:
    from babel.dates import format_timedelta

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


# The region each bare language is written for: English for a shop in Central Europe is British English
# (day before month, 24-hour clock); `en-US` in `organisation.locales` asks for American English instead.
_REGIONS = {"en": "en_GB", "hu": "hu_HU", "sk": "sk_SK", "pl": "pl_PL"}
# How a date and a time are joined, per language: "5 December 2026, 18:36", "2026. december 5. 18:36",
# "5. decembra 2026 o 18:36", "5 grudnia 2026, godz. 18:36". The time always comes last, so a Hungarian
# suffix written after the variable ("-ig") attaches to the time, where it belongs.
_JOIN = {"en": "{date}, {time}", "hu": "{date} {time}", "sk": "{date} o {time}", "pl": "{date}, godz. {time}"}
# Relative forms, for sentences where a reader wants "today" rather than a date.
_TODAY = {"en": "{time} today", "hu": "ma {time}", "sk": "dnes o {time}", "pl": "dziś o {time}"}
_TOMORROW = {"en": "{time} tomorrow", "hu": "holnap {time}", "sk": "zajtra o {time}", "pl": "jutro o {time}"}
_OTHER_DAY = {"en": "{date}, {time}", "hu": "{date} {time}", "sk": "{date} o {time}", "pl": "{date} o {time}"}


def _region(locale: str) -> str:
    """A babel locale with its region: `en` → `en_GB`, `en-US` stays American."""
    loc = _babel_locale(locale)
    return loc if "_" in loc else _REGIONS.get(loc, loc)


def _lang(locale: str) -> str:
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in _JOIN else "en"


def _us(locale: str) -> bool:
    return _region(locale).lower() in ("en_us", "en_ph")


def _date_words(local: datetime, locale: str, *, year: bool) -> str:
    """The date with the month as a word: `5 December 2026`, `2026. december 5.`, `5 grudnia`."""
    return _day_words(local.date(), locale, year)


@functools.lru_cache(maxsize=2048)
def _day_words(day: date, locale: str, year: bool) -> str:
    # Only the day counts, so a step's many dates cost one babel call each per (day, locale): babel is slow.
    from babel.dates import format_date, format_skeleton

    loc = _region(locale)
    if year:
        return format_date(day, "long", locale=loc)
    return format_skeleton("MMMMd", day, locale=loc)


def human_datetime(when: datetime, locale: str, tz: str) -> str:
    """A date and time nobody misreads: month as a word, 24-hour clock (12-hour only for en-US)."""
    local = when.astimezone(ZoneInfo(tz))
    lang = _lang(locale)
    text = _JOIN[lang].format(date=_date_words(local, locale, year=True), time=human_time(when, locale, tz))
    if _us(locale):
        text = f"{_date_words(local, locale, year=True)}, {human_time(when, locale, tz)}"
    return text


def human_when(when: datetime, locale: str, tz: str, now: datetime) -> str:
    """Relative where it helps: `18:36 today`, `holnap 10:00`, `dziś o 18:36`; else the date in words (no
    year when it is this year's). Also the voice's form: month names, never a numeric date read aloud."""
    zone = ZoneInfo(tz)
    local, today = when.astimezone(zone), now.astimezone(zone).date()
    lang, time = _lang(locale), human_time(when, locale, tz)
    if local.date() == today:
        return _TODAY[lang].format(time=time)
    if local.date() == today + timedelta(days=1):
        return _TOMORROW[lang].format(time=time)
    return _OTHER_DAY[lang].format(date=_date_words(local, locale, year=local.year != today.year), time=time)


_DAY = {"en": ("today", "tomorrow", "on {date}"), "hu": ("ma", "holnap", "{date}"),
        "sk": ("dnes", "zajtra", "{date}"), "pl": ("dziś", "jutro", "{date}")}


def human_day(when: datetime, locale: str, tz: str, now: datetime) -> str:
    """The day alone, for "tomorrow from 13:00 to 15:00": `today`, `holnap`, `25. decembra`."""
    zone = ZoneInfo(tz)
    local, today = when.astimezone(zone), now.astimezone(zone).date()
    words = _DAY[_lang(locale)]
    if local.date() == today:
        return words[0]
    if local.date() == today + timedelta(days=1):
        return words[1]
    return words[2].format(date=_date_words(local, locale, year=local.year != today.year))


def human_time(when: datetime, locale: str, tz: str) -> str:
    """`18:36` (`6:36 PM` for en-US only)."""
    local = when.astimezone(ZoneInfo(tz))
    if _us(locale):
        from babel.dates import format_time

        return format_time(local, "short", locale="en_US").replace("\u202f", " ")  # plain space: any mail client
    return local.strftime("%H:%M")


# Prepared causes: what customers read about why a channel is down, in their language. A person picks one
# with `--cause KEY`; their own `--reason` is for staff. The config adds keys or rewords these
# (`organisation.causes`).
CAUSES: dict[str, dict[str, str]] = {
    "provider": {
        "en": "Our service provider has a fault, and they are working on it.",
        "hu": "Szolgáltatónknál hiba történt, amelyet már javítanak.",
        "sk": "Porucha je u nášho poskytovateľa služieb, ktorý ju už odstraňuje.",
        "pl": "Awaria wystąpiła u naszego dostawcy usług, który już ją usuwa.",
    },
    "power": {
        "en": "There is a power cut at our office.",
        "hu": "Irodánkban áramszünet van.",
        "sk": "V našej kancelárii je výpadok elektriny.",
        "pl": "W naszym biurze nie ma prądu.",
    },
    "network": {
        "en": "Our network connection has failed.",
        "hu": "Megszakadt a hálózati kapcsolatunk.",
        "sk": "Zlyhalo naše sieťové pripojenie.",
        "pl": "Nasze połączenie sieciowe przestało działać.",
    },
    "hardware": {
        "en": "A piece of our equipment has failed.",
        "hu": "Meghibásodott az egyik berendezésünk.",
        "sk": "Pokazilo sa jedno z našich zariadení.",
        "pl": "Uległo awarii jedno z naszych urządzeń.",
    },
    "software": {
        "en": "A software fault is affecting our systems.",
        "hu": "Szoftverhiba zavarja a rendszereink működését.",
        "sk": "Naše systémy ovplyvňuje chyba softvéru.",
        "pl": "Nasze systemy dotknął błąd oprogramowania.",
    },
    "maintenance": {
        "en": "We are carrying out maintenance work.",
        "hu": "Karbantartást végzünk.",
        "sk": "Vykonávame údržbu.",
        "pl": "Prowadzimy prace konserwacyjne.",
    },
    "unknown": {
        "en": "We are still looking into the cause.",
        "hu": "A hiba okát még vizsgáljuk.",
        "sk": "Príčinu ešte zisťujeme.",
        "pl": "Wciąż ustalamy przyczynę.",
    },
}
DEFAULT_CAUSE = "unknown"


def cause_catalog(loaded: LoadedConfig) -> dict[str, dict[str, str]]:
    """The shipped causes with the config's additions and rewordings laid over them."""
    out = {key: dict(texts) for key, texts in CAUSES.items()}
    for key, texts in (getattr(loaded.config.organisation, "causes", None) or {}).items():
        out.setdefault(key, {}).update(texts)
    return out


def cause_text(loaded: LoadedConfig, key: str | None, locale: str) -> str:
    """The prepared sentence for a cause in a customer's language (English, then any, as a last resort)."""
    catalog = cause_catalog(loaded)
    texts = catalog.get(key or DEFAULT_CAUSE) or catalog[DEFAULT_CAUSE]
    lang = locale.split("-")[0]
    for loc in (locale, lang, "en"):
        if texts.get(loc):
            return texts[loc]
    return next(iter(texts.values()), CAUSES[DEFAULT_CAUSE]["en"])


def check_causes(loaded: LoadedConfig) -> list[str]:
    """Causes without a text in a served locale, as `cause "power" has no text in "sk"` lines (validate)."""
    missing = []
    for key, texts in cause_catalog(loaded).items():
        for loc in loaded.config.organisation.locales:
            if not (texts.get(loc) or texts.get(loc.split("-")[0])):
                missing.append(f"cause {key!r} has no text in {loc!r}")
    return missing


def cause_key(situation: SituationRecord) -> str:
    """The situation's prepared cause: the one a person chose, else `maintenance` for a planned window and
    `unknown` for the rest (the daemon's probe readings are never a customer's cause)."""
    chosen = (situation.data or {}).get("cause")
    if isinstance(chosen, str) and chosen:
        return chosen
    return "maintenance" if situation.kind == "maintenance" else DEFAULT_CAUSE


def customer_reason(situation: SituationRecord, locale: str, default_locale: str) -> str | None:
    """The staff's own words, for customers only when the on-call person said so (`--public-reason`), and
    only in the language they wrote them in (`--reason-locale`): never a Hungarian sentence to Poles."""
    data = situation.data or {}
    if not data.get("public_reason"):
        return None
    written_in = str(data.get("reason_locale") or default_locale)
    if written_in.split("-")[0] != locale.split("-")[0]:
        return None
    return situation.reason


# "Later by one hour" puts a feminine unit in the accusative: sk "o 1 hodinu", pl "o 1 godzinę" (2 and more
# keep the basic form: "o 2 hodiny", "o 15 minut").
_ACCUSATIVE = {"sk": {"hodina": "hodinu", "minúta": "minútu", "sekunda": "sekundu"},
               "pl": {"godzina": "godzinę", "minuta": "minutę", "sekunda": "sekundę"}}


def by_how_much(amount: str, locale: str) -> str:
    """An amount as "longer by" needs it: Hungarian takes the instrumental suffix on the last word, with
    vowel harmony and the doubled consonant ("2 órával", "15 perccel", "1 nappal"); Slovak and Polish put
    a feminine unit in the accusative after "o" ("o 1 hodinu 30 minút", "o 1 godzinę"); English keeps the
    basic form."""
    lang = _lang(locale)
    if lang in _ACCUSATIVE and amount:
        return " ".join(_ACCUSATIVE[lang].get(word, word) for word in amount.split(" "))
    if lang != "hu" or not amount:
        return amount
    head, _, word = amount.rpartition(" ")
    back = any(ch in "aáoóuú" for ch in word)
    if word[-1] in "ae":
        word = word[:-1] + {"a": "á", "e": "é"}[word[-1]] + ("val" if back else "vel")
    elif word[-1] in "áéiíoóöőuúüű":
        word += "val" if back else "vel"
    else:
        word += word[-1] + ("al" if back else "el")
    return f"{head} {word}" if head else word


def channel_name(loaded: LoadedConfig, key: str, locale: str) -> str:
    ch = loaded.config.channels.get(key)
    if ch is not None:
        for loc in (locale, loaded.config.organisation.default_locale, "en"):
            if loc in ch.display:
                return ch.display[loc]
    names = CHANNEL_NAMES.get(key, {})
    return names.get(locale) or names.get("en") or key


def date_locale(loaded: LoadedConfig, locale: str) -> str:
    """The locale dates are written in: a bare `en` follows `organisation.english` (en-GB unless en-US);
    every other locale, and an explicit `en-US`, as given."""
    if locale == "en":
        return str(getattr(loaded.config.organisation, "english", "en-GB"))
    return locale


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
    dates = date_locale(loaded, locale)  # how this locale writes dates ("en": en-GB, or organisation.english)
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
                # "by how much" ("2 órával", "15 perccel" in Hungarian): the form "longer by" needs
                "extra_wait_by": by_how_much(human_duration(fb.extra_wait, locale), locale) if fb.extra_wait else None,
            }))
    eta = None
    if situation.eta is not None:
        eta = Obj({
            "at": human_datetime(situation.eta, dates, tz),
            "when": human_when(situation.eta, dates, tz, now),
            "time": human_time(situation.eta, dates, tz),
            "remaining": human_duration(situation.eta - now, locale) if situation.eta > now else None,
        })
    closed = situation.closed_at
    window = situation.data.get("maintenance") if situation.data else None
    maintenance = None
    if window:
        start, end = datetime.fromisoformat(window["starts_at"]), datetime.fromisoformat(window["ends_at"])
        maintenance = Obj({
            "start": human_datetime(start, dates, tz), "end": human_datetime(end, dates, tz),
            "start_time": human_time(start, dates, tz), "end_time": human_time(end, dates, tz),
            "start_when": human_when(start, dates, tz, now), "end_when": human_when(end, dates, tz, now),
            # one day for a window within a day: "tomorrow from 13:00 to 15:00" (said once, not twice)
            "day": human_day(start, dates, tz, now),
            "same_day": start.astimezone(ZoneInfo(tz)).date() == end.astimezone(ZoneInfo(tz)).date(),
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
        # `reason` is the staff's own words: staff templates only. Customers read `cause` (prepared, in
        # their language) and `public_reason` (None unless the on-call person published their words).
        "reason": situation.reason,
        "cause": cause_text(loaded, cause_key(situation), locale),
        "public_reason": customer_reason(situation, locale, org.default_locale),
        "eta": eta,
        "opened_at": human_datetime(situation.opened_at, dates, tz),
        "opened_time": human_time(situation.opened_at, dates, tz),
        "elapsed": human_duration((closed or now) - situation.opened_at, locale),
        "closed_at": human_datetime(closed, dates, tz) if closed else None,
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
