"""The campaign file, validated strictly: unknown keys are errors, and a time without a timezone is refused.

A naive time is an error rather than being read in the organisation's timezone: a campaign file travels
between marketing, agencies and support, and "00:00" without a zone has already started a promotion an hour
early somewhere. Write `2026-11-27T00:00:00+01:00` or `2026-11-27 00:00 Europe/Budapest`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from continuity.config.models import Duration, Locale, Name, Strict
from continuity.limits import SHORT, TEXT, TITLE

_ZONED = re.compile(r"^(?P<when>\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2})?)\s+(?P<zone>[A-Za-z_]+(/[A-Za-z_+-]+)*)$")
_EXAMPLE = "write it like 2026-11-27T00:00:00+01:00 or 2026-11-27 00:00 Europe/Budapest"


def _aware(value: Any) -> datetime:
    """A timezone-aware moment: a YAML timestamp with offset, ISO text with offset, or `<local time> <Zone>`."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        raise ValueError(f"a date alone is not a moment: give the time and timezone too ({_EXAMPLE})")
    elif isinstance(value, str):
        text = value.strip()
        zoned = _ZONED.match(text)
        if zoned:
            try:
                zone = ZoneInfo(zoned["zone"])
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {zoned['zone']!r}; use an IANA name like Europe/Budapest") \
                    from None
            return datetime.fromisoformat(zoned["when"].replace(" ", "T")).replace(tzinfo=zone)
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date and time: {value!r} ({_EXAMPLE})") from None
    else:
        raise ValueError(f"expected a date and time ({_EXAMPLE})")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"no timezone: {when.isoformat(sep=' ')} could be any of 24 moments ({_EXAMPLE})")
    return when


Moment = Annotated[datetime, BeforeValidator(_aware),
                   PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]
# Text shown to people: one string for everyone, or one per locale (then every served locale is required).
# The limits of continuity.limits as string types (they show as maxLength in a schema).
TitleText = Annotated[str, Field(min_length=1, max_length=TITLE)]
LongText = Annotated[str, Field(min_length=1, max_length=TEXT)]
ShortText = Annotated[str, Field(max_length=SHORT)]
LocalText = TitleText | dict[Locale, TitleText]
LongLocalText = LongText | dict[Locale, LongText]
VarName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


class Code(Strict):
    """A discount code and its conditions, as support must explain them."""

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$")
    discount: str = Field(min_length=1, max_length=SHORT, description="20%, 5000 Ft, free shipping, …")
    min_order: ShortText | None = Field(default=None, description="minimum basket value, as customers read it")
    channels: list[str] = Field(default_factory=list, description="where it can be used (web, app, …); "
                                "empty: everywhere")
    valid_from: Moment | None = None
    valid_until: Moment | None = None
    once_per_customer: bool = False
    combinable: bool = False
    note: ShortText | None = None


class FaqItem(Strict):
    q: TitleText
    a: LongText


class Answer(Strict):
    """A template answer agents paste: `text` per locale (jinja2), `vars` the agent fills in."""

    vars: list[VarName] = Field(default_factory=list)
    text: dict[Locale, LongText] = Field(min_length=1)


class Recurrence(Strict):
    """A seasonal peak: after a run ends, the same dates next year are planned (local wall-clock times kept)."""

    every: Literal["year"] = "year"
    until: int | None = Field(default=None, ge=2000, le=2200, description="the last year a run may start in")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "yearly":
            return {"every": "year"}
        if isinstance(value, str):
            raise ValueError("write `recurrence: yearly` or `recurrence: {every: year, until: 2030}`")
        return value


class Brief(Strict):
    """Who gets the briefing, the reminder, the launch note and the summary."""

    to: list[Name] = Field(default_factory=lambda: ["staff"], min_length=1,
                           description="routes or sink names of the config")
    people: list[str] = Field(default_factory=list, description="named in the briefing (team leads, shifts)")


# Registering early is meant to be easy: name, start and end are enough. The title is then the name; no terms,
# codes, FAQ or answers yet are allowed and listed as still missing (campaigns/gaps.py) on the console's page,
# in `campaign list --json`, and by `validate` once the briefing is due within campaigns.min_lead. No channels
# means every channel customers are given a contact for: a promotion brings questions everywhere, and a support
# lead narrows it by naming channels (as a code's `channels` does). The briefing says which of these it lacks.
class Campaign(Strict):
    """One registered marketing event (see playbooks/campaign-example.yaml); name, start and end are enough."""

    name: Name
    title: LocalText | None = Field(default=None, description="what staff and customers read (default: the name)")
    start: Moment
    end: Moment
    owner: ShortText | None = Field(default=None, description="who in marketing answers staff's questions")
    terms: LongLocalText | None = Field(default=None, description="the offer as staff must explain it (missing: "
                                        "the briefing says it is still to come)")
    faq_url: LocalText | None = None
    codes: list[Code] = Field(default_factory=list)
    channels: list[Name] = Field(default_factory=list, description="support channels expected to surge; empty: "
                                 "every channel of the config that has a contact")
    load: str = Field(default="2x", description="expected load compared with a normal week, e.g. 3x")
    wait: dict[Name, Duration] = Field(default_factory=dict, description="expected wait per surging channel")
    faq: dict[Locale, list[FaqItem]] = Field(default_factory=dict)
    answers: dict[Name, Answer] = Field(default_factory=dict)
    recurrence: Recurrence | None = None
    playbook: Name = "surge-campaign"
    lead: Duration | None = Field(default=None, description="brief staff this long before start "
                                  "(default: campaigns.min_lead of the config)")
    brief: Brief = Brief()

    @model_validator(mode="before")
    @classmethod
    def _title_is_the_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("title") is None and isinstance(value.get("name"), str):
            return {**value, "title": value["name"]}
        return value

    @field_validator("load")
    @classmethod
    def _load(cls, value: str) -> str:
        if not re.fullmatch(r"\d+(\.\d+)?x", value):
            raise ValueError(f"expected load like 3x or 1.5x (times a normal week's volume), not {value!r}")
        return value

    @property
    def factor(self) -> float:
        return float(self.load[:-1])


def text_for(value: LocalText | None, locale: str, fallbacks: list[str]) -> str | None:
    """The text of a LocalText in locale, else the first fallback locale that has it."""
    if value is None or isinstance(value, str):
        return value
    for loc in (locale, *fallbacks):
        if loc in value:
            return value[loc]
    return next(iter(value.values()), None)


def shift_years(when: datetime, years: int, tz: str) -> datetime:
    """The same local wall-clock time `years` later (29 February becomes 28 February)."""
    if years == 0:
        return when
    zone = ZoneInfo(tz)
    local = when.astimezone(zone)
    try:
        moved = local.replace(year=local.year + years, tzinfo=None)
    except ValueError:
        moved = local.replace(year=local.year + years, day=28, tzinfo=None)
    return moved.replace(tzinfo=zone).astimezone(when.tzinfo)


__all__ = ["Answer", "Brief", "Campaign", "Code", "FaqItem", "LocalText", "Recurrence", "shift_years", "text_for"]
