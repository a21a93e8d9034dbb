"""What a campaign registered early still lacks, and the defaults that stand in meanwhile.

Marketing registers a promotion as soon as its dates are known (name, start and end are enough); terms,
codes, FAQ entries and template answers come later. Until they do, the gaps are listed on the console's
campaign page and in its preview of the staff briefing, in `campaign list --json`, and `validate` warns of
those that matter to the briefing once it is due within `campaigns.min_lead`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from continuity.campaigns.model import Campaign
    from continuity.config.loader import LoadedConfig
    from continuity.store.protocol import Store

# The gaps that leave staff without something to answer with: `validate` warns of these before the briefing.
FOR_THE_BRIEF = ("terms", "codes", "faq", "faq_locales", "answers")
# How each gap reads in a warning line.
WORDS = {"terms": "terms", "codes": "discount codes", "faq": "FAQ entries", "faq_locales": "FAQ entries in {}",
         "answers": "template answers", "owner": "an owner", "faq_url": "the FAQ page"}


def customer_channels(loaded: LoadedConfig) -> list[str]:
    """The channels customers are given a contact for (phone, email, chat, …, not the office uplink); every
    channel when none has a contact."""
    channels = loaded.config.channels
    return [ch for ch, spec in channels.items() if spec.contact] or list(channels)


def channels_of(loaded: LoadedConfig, c: Campaign) -> list[str]:
    """The channels a campaign surges on: those it names, else every customer channel."""
    return list(c.channels) or customer_channels(loaded)


def missing(loaded: LoadedConfig, c: Campaign) -> list[dict[str, Any]]:
    """What a complete campaign would have and this one does not yet: keys the pages word in their language
    (terms, owner, codes, faq, faq_locales, answers, faq_url), with the locales concerned."""
    served = list(loaded.config.organisation.locales)
    out: list[dict[str, Any]] = []
    if c.terms is None:
        out.append({"key": "terms", "locales": ""})
    if not c.owner:
        out.append({"key": "owner", "locales": ""})
    if not c.codes:
        out.append({"key": "codes", "locales": ""})
    lacking = [loc for loc in served if not c.faq.get(loc)]
    if not c.faq:
        out.append({"key": "faq", "locales": ", ".join(served)})
    elif lacking:
        out.append({"key": "faq_locales", "locales": ", ".join(lacking)})
    if not c.answers:
        out.append({"key": "answers", "locales": ", ".join(served)})
    if c.faq_url is None:
        out.append({"key": "faq_url", "locales": ""})
    return out


def missing_fields(loaded: LoadedConfig, c: Campaign) -> list[str]:
    """The gaps as field names for --json: `terms`, `faq`, or `faq.sk` for one locale's FAQ."""
    return as_fields(missing(loaded, c))


def as_fields(gaps: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for m in gaps:
        if m["key"] == "faq_locales":
            out.extend(f"faq.{loc}" for loc in m["locales"].split(", "))
        else:
            out.append(m["key"])
    return out


def worded(gaps: list[dict[str, Any]]) -> str:
    return ", ".join(WORDS[m["key"]].format(m["locales"]) for m in gaps)


@dataclass
class DueGap:
    """A registered campaign whose briefing is due soon (or went out already) and still lacks something."""

    name: str
    file: str  # where its current version came from: the campaign file, "form" or "command line"
    brief_at: datetime
    briefed: bool
    gaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        return as_fields(self.gaps)

    @property
    def words(self) -> str:
        return worded(self.gaps)


def due_gaps(loaded: LoadedConfig, store: Store, now: datetime) -> list[DueGap]:
    """Every active campaign briefed within `campaigns.min_lead` from now (or already) that still lacks terms,
    codes, FAQ entries or template answers. Only reads the store."""
    from continuity.campaigns.model import Campaign
    from continuity.campaigns.store import get_version, runs

    horizon = now + loaded.config.campaigns.min_lead
    out: list[DueGap] = []
    for run in runs(store):
        if run.opens_at > horizon:
            continue
        version = get_version(store, run.name, run.version)
        c = Campaign.model_validate(version.snapshot)
        gaps = [m for m in missing(loaded, c) if m["key"] in FOR_THE_BRIEF]
        if gaps:
            out.append(DueGap(run.name, version.source, run.opens_at, run.situation_id is not None, gaps))
    return out


__all__ = ["FOR_THE_BRIEF", "DueGap", "as_fields", "channels_of", "customer_channels", "due_gaps", "missing",
           "missing_fields", "worded"]
