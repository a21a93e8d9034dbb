"""What a campaign says: the `campaign` variable of templates, the FAQ and the template answers rendered per
locale, the accent-insensitive FAQ search, and the summary of what changed between two versions.

FAQ entries and answers are small jinja2 texts rendered in the same sandbox as the template packs, with
StrictUndefined: an answer may use `campaign`, `org` and the variables it declares under `vars` (filled in by
the agent with `continuity reply --var`), nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jinja2

from continuity.campaigns.gaps import channels_of
from continuity.campaigns.model import Campaign, Code, shift_years, text_for
from continuity.variables import Obj, channel_name, date_locale, human_datetime, human_duration

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from continuity.config.loader import LoadedConfig
    from continuity.config.models import Playbook
    from continuity.store.records import SituationRecord

# Names every FAQ entry and answer can use besides its own `vars`.
BUILTIN_VARS = ("campaign", "org", "locale")


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    from continuity.templating import make_environment

    return make_environment([])


class TextError(Exception):
    """A FAQ entry or answer that does not compile or render; `line` is the line inside the text."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def render_text(text: str, context: dict[str, Any]) -> str:
    """Render one FAQ/answer text; raise TextError with the reason and the line inside the text."""
    try:
        template = _env().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise TextError(f"template syntax error: {exc.message}", exc.lineno) from None
    try:
        return template.render(context).strip()
    except jinja2.UndefinedError as exc:
        message = re.sub(r"'[\w.]*Obj object' has no attribute '(\w+)'", r"no field '\1' here", exc.message or "")
        raise TextError(f"template error: {message}", None) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TextError(f"template tried an unsafe operation: {exc}", None) from None
    except (TypeError, ValueError, ArithmeticError, jinja2.TemplateError) as exc:
        raise TextError(f"template error: {exc}", None) from None


def placeholder(var: str) -> str:
    """How an agent-filled variable shows in the briefing and in validation renders."""
    return f"[{var}]"


@dataclass(frozen=True)
class Schedule:
    """A run's moments (UTC) for templates: when it is, and how many years after the registered dates."""

    starts_at: datetime
    ends_at: datetime
    shift: int = 0


def _code_obj(code: Code, loc: str, tz: str, shift: int) -> Obj:
    def when(d: datetime | None) -> str | None:
        return human_datetime(shift_years(d, shift, tz), loc, tz) if d else None

    return Obj({"code": code.code, "discount": code.discount, "min_order": code.min_order,
                "channels": list(code.channels), "valid_from": when(code.valid_from),
                "valid_until": when(code.valid_until), "once_per_customer": code.once_per_customer,
                "combinable": code.combinable, "note": code.note})


def campaign_obj(loaded: LoadedConfig, campaign: Campaign, schedule: Schedule, locale: str, now: datetime, *,
                 playbook: Playbook | None = None, extra: dict[str, Any] | None = None,
                 render_texts: bool = True) -> Obj:
    """The `campaign` template variable in one locale. FAQ and answers are rendered unless render_texts is
    False (then they are left out: that is the context they are themselves rendered in)."""
    org = loaded.config.organisation
    tz = org.timezone
    chain = [org.default_locale, "en"]
    dates = date_locale(loaded, locale)  # English dates as organisation.english says
    waits = {k: human_duration(v, locale) for k, v in campaign.wait.items()}
    base: dict[str, Any] = {
        "name": campaign.name,
        "title": text_for(campaign.title, locale, chain),
        "start": human_datetime(schedule.starts_at, dates, tz),
        "end": human_datetime(schedule.ends_at, dates, tz),
        "length": human_duration(schedule.ends_at - schedule.starts_at, locale),
        "live": schedule.starts_at <= now < schedule.ends_at,
        "started": now >= schedule.starts_at,
        "terms": text_for(campaign.terms, locale, chain),
        "faq_url": text_for(campaign.faq_url, locale, chain) or org.website,
        "owner": campaign.owner,
        "load": campaign.load,
        "factor": campaign.factor,
        "codes": [_code_obj(c, dates, tz, schedule.shift) for c in campaign.codes],
        "channels": [Obj({"key": ch, "name": channel_name(loaded, ch, locale), "wait": waits.get(ch),
                          "contact": loaded.config.channels[ch].contact if ch in loaded.config.channels else None})
                     for ch in channels_of(loaded, campaign)],
        "all_channels": not campaign.channels,  # none named: every customer channel
        "people": list(campaign.brief.people),
        "recurring": campaign.recurrence is not None,
        "plan_a": (playbook.description.strip() or None) if playbook is not None else None,
        "faq": [],
        "answers": [],
        "changes": [],
        "version": None,
        "timeline": [],
        "switched_off": [],
        "outcome": None,
    }
    base.update(extra or {})
    if render_texts:
        inner = {"campaign": Obj(base), "org": Obj({"name": org.name, "website": org.website,
                                                      "status_url": org.status_url}), "locale": locale}
        base["faq"] = [Obj({"q": render_text(item.q, inner), "a": render_text(item.a, inner)})
                       for item in faq_for(campaign, locale, chain)]
        base["answers"] = [
            Obj({"name": name, "vars": list(ans.vars), "locales": sorted(ans.text),
                 "text": render_text(text_for(ans.text, locale, chain) or "",
                                     {**inner, **{v: placeholder(v) for v in ans.vars}})})
            for name, ans in campaign.answers.items()
        ]
    return Obj(base)


def faq_for(campaign: Campaign, locale: str, chain: list[str]) -> list[Any]:
    for loc in (locale, *chain):
        if loc in campaign.faq:
            return list(campaign.faq[loc])
    return []


def text_context(loaded: LoadedConfig, campaign: Campaign, schedule: Schedule, locale: str, now: datetime,
                 values: dict[str, str]) -> dict[str, Any]:
    """What a FAQ entry or an answer is rendered with."""
    org = loaded.config.organisation
    return {"campaign": campaign_obj(loaded, campaign, schedule, locale, now, render_texts=False),
            "org": Obj({"name": org.name, "website": org.website, "status_url": org.status_url}),
            "locale": locale, **values}


# The `campaign` variable of a running situation ---------------------------------------------------------------


def situation_campaign(loaded: LoadedConfig, situation: SituationRecord, playbook: Playbook | None, locale: str,
                       now: datetime) -> Obj | None:
    """The campaign a surge situation runs for (from the snapshot it carries), a sample one for previews
    (`validate`, `--dry-run`: situation id 0), else None."""
    data = (situation.data or {}).get("campaign")
    if data is None:
        if situation.id != 0 or playbook is None or playbook.kind != "surge":
            return None
        campaign = sample_campaign(loaded, now)
        schedule = Schedule(campaign.start, campaign.end)
        return campaign_obj(loaded, campaign, schedule, locale, now, playbook=playbook, extra={
            "version": 1, "changes": ["end: 30/11/2026 → 1/12/2026"],
            "timeline": [Obj({"step": "brief", "sink": "outbox", "at": human_datetime(now, locale,
                                                                                     loaded.config.organisation
                                                                                     .timezone), "late": False})],
            "switched_off": ["launch-banner"], "outcome": "ended"})
    campaign = Campaign.model_validate(data["snapshot"])
    tz = loaded.config.organisation.timezone
    schedule = Schedule(datetime.fromisoformat(data["starts_at"]), datetime.fromisoformat(data["ends_at"]),
                        int(data.get("shift", 0)))
    timeline = [Obj({"step": t["step"], "sink": t["sink"], "late": t.get("late", False),
                     "at": human_datetime(datetime.fromisoformat(t["at"]), date_locale(loaded, locale), tz)})
                for t in data.get("timeline", [])]
    return campaign_obj(loaded, campaign, schedule, locale, now, playbook=playbook, extra={
        "version": data.get("version"), "changes": list(data.get("changes", [])), "timeline": timeline,
        "switched_off": list(data.get("switched_off", [])), "outcome": data.get("outcome")})


def sample_campaign(loaded: LoadedConfig, now: datetime) -> Campaign:
    """A small campaign that uses every field, for rendering campaign templates in `validate`."""
    from datetime import timedelta

    locales = loaded.config.organisation.locales
    channels = list(loaded.config.channels)[:2]
    return Campaign.model_validate({
        "name": "sample", "title": "Sample Sale", "start": now + timedelta(days=3),
        "end": now + timedelta(days=6), "owner": "Marketing", "terms": "20% off everything.",
        "faq_url": "https://shop.example.test/sale/faq",
        "codes": [{"code": "SAMPLE20", "discount": "20%", "min_order": "50 EUR", "channels": ["web"],
                   "valid_until": now + timedelta(days=6)}],
        "channels": channels, "load": "3x", "wait": {channels[0]: "1h"},
        "faq": {loc: [{"q": "Question?", "a": "Answer."}] for loc in locales},
        "answers": {"sample": {"vars": ["customer_name"], "text": {loc: "Hi {{ customer_name }}" for loc in locales}}},
        "brief": {"people": ["Team lead"]},
    })


# FAQ search ----------------------------------------------------------------------------------------------------

_EXTRA_FOLD = str.maketrans({"ł": "l", "Ł": "l", "ø": "o", "đ": "d", "ß": "ss"})


def fold(text: str) -> str:
    """Lower-case, without accents: `Kupón` matches `kupon`, `zľava` matches `zlava`, `Łódź` matches `lodz`."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def matches(query: str, *texts: str) -> bool:
    """Every word of the query appears in one of the texts (accents and case ignored)."""
    hay = " ".join(fold(t) for t in texts)
    return all(word in hay for word in fold(query).split())


# What changed between two versions -------------------------------------------------------------------------------

_FIELDS = ("title", "start", "end", "owner", "terms", "faq_url", "channels", "load", "wait", "recurrence",
           "playbook", "lead", "brief")


def _short(value: Any, key: str = "") -> str:
    if value is None or value == [] or value == {}:  # registered early: not given yet
        return "every customer channel" if key == "channels" else "not given"
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67] + "…"


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per changed field, code, FAQ locale and answer, as staff read it."""
    out: list[str] = []
    for key in _FIELDS:
        if old.get(key) != new.get(key):
            out.append(f"{key}: {_short(old.get(key), key)} → {_short(new.get(key), key)}")
    old_codes = {c["code"]: c for c in old.get("codes", [])}
    new_codes = {c["code"]: c for c in new.get("codes", [])}
    for code in new_codes.keys() - old_codes.keys():
        out.append(f"codes: {code} added ({new_codes[code]['discount']})")
    for code in old_codes.keys() - new_codes.keys():
        out.append(f"codes: {code} removed — it no longer applies")
    for code in sorted(old_codes.keys() & new_codes.keys()):
        changed = [k for k in new_codes[code] if new_codes[code].get(k) != old_codes[code].get(k)]
        if changed:
            parts = [f"{k}: {_short(old_codes[code].get(k))} → {_short(new_codes[code].get(k))}" for k in changed]
            out.append(f"codes: {code} changed ({', '.join(parts)})")
    for loc in sorted(set(old.get("faq", {})) | set(new.get("faq", {}))):
        before = {i["q"]: i["a"] for i in old.get("faq", {}).get(loc, [])}
        after = {i["q"]: i["a"] for i in new.get("faq", {}).get(loc, [])}
        added, removed = after.keys() - before.keys(), before.keys() - after.keys()
        changed_q = [q for q in after.keys() & before.keys() if after[q] != before[q]]
        parts = [f"{len(added)} added" if added else "", f"{len(removed)} removed" if removed else "",
                 f"{len(changed_q)} answer(s) changed" if changed_q else ""]
        if any(parts):
            out.append(f"faq.{loc}: " + ", ".join(p for p in parts if p)
                       + "".join(f"\n  + {_short(q)}" for q in sorted(added)))
    old_ans, new_ans = old.get("answers", {}), new.get("answers", {})
    for name in sorted(new_ans.keys() - old_ans.keys()):
        out.append(f"answers: {name} added")
    for name in sorted(old_ans.keys() - new_ans.keys()):
        out.append(f"answers: {name} removed")
    for name in sorted(old_ans.keys() & new_ans.keys()):
        if old_ans[name] != new_ans[name]:
            locs = sorted(loc for loc in set(old_ans[name]["text"]) | set(new_ans[name]["text"])
                          if old_ans[name]["text"].get(loc) != new_ans[name]["text"].get(loc))
            what = f"text changed in {', '.join(locs)}" if locs else "variables changed"
            out.append(f"answers: {name} {what}")
    return out

