"""What agents use while a campaign runs: search its FAQ, and render a template answer to paste.

Both read the snapshot of the campaign's current version (what staff were briefed on), never the file on disk.
Only active and upcoming campaigns count (registered, briefed, live).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from continuity.campaigns.content import Schedule, TextError, matches, render_text, text_context
from continuity.campaigns.model import Campaign, text_for
from continuity.campaigns.phases import campaign_of, current_shift, find_run
from continuity.campaigns.store import CampaignRun, runs
from continuity.errors import InputError

if TYPE_CHECKING:
    from continuity.engine import Engine


def _locale(engine: Engine, locale: str | None) -> str | None:
    served = engine.loaded.config.organisation.locales
    if locale is not None and locale not in served:
        raise InputError(f"--locale {locale!r} is not served; the organisation serves {', '.join(served)}")
    return locale


def active(engine: Engine, name: str | None = None) -> list[tuple[CampaignRun, Campaign]]:
    if name is not None:
        run = find_run(engine, name)
        if not run.active:
            raise InputError(f"campaign {name!r} is {run.state}; its FAQ and answers are no longer in use")
        return [(run, campaign_of(engine, run))]
    return [(run, campaign_of(engine, run)) for run in runs(engine.store)]


def _schedule(engine: Engine, run: CampaignRun, c: Campaign) -> Schedule:
    return Schedule(run.starts_at, run.ends_at, current_shift(engine, run, c))


@dataclass
class FaqHit:
    campaign: str
    title: str
    state: str
    locale: str
    q: str
    a: str


def search_faq(engine: Engine, query: str = "", *, campaign: str | None = None,
               locale: str | None = None) -> list[FaqHit]:
    """FAQ entries of active and upcoming campaigns whose question or answer contains every word of the
    query, accents and case ignored (`kupon` finds `Kupón`); all entries without a query."""
    locale = _locale(engine, locale)
    served = engine.loaded.config.organisation.locales
    now = engine.clock.now()
    hits = []
    for run, c in active(engine, campaign):
        schedule = _schedule(engine, run, c)
        for loc in [locale] if locale else served:
            ctx = text_context(engine.loaded, c, schedule, loc, now, {})
            title = text_for(c.title, loc, ["en"]) or c.name
            for item in c.faq.get(loc, []):
                q, a = render_text(item.q, ctx), render_text(item.a, ctx)
                if matches(query, q, a):
                    hits.append(FaqHit(c.name, title, run.state, loc, q, a))
    return hits


@dataclass
class Reply:
    campaign: str
    answer: str
    locale: str
    text: str
    vars: list[str]


def available_answers(engine: Engine, campaign: str | None = None) -> dict[str, list[str]]:
    return {c.name: sorted(c.answers) for _run, c in active(engine, campaign)}


def reply(engine: Engine, answer: str, *, campaign: str | None = None, locale: str | None = None,
          values: dict[str, str] | None = None) -> Reply:
    """Render a template answer in a customer's language, with the variables the agent gives."""
    values = dict(values or {})
    locale = _locale(engine, locale) or engine.loaded.config.organisation.default_locale
    candidates = [(run, c) for run, c in active(engine, campaign) if answer in c.answers]
    if not candidates:
        offered = available_answers(engine, campaign)
        listing = "; ".join(f"{name}: {', '.join(names) or 'none'}" for name, names in offered.items())
        where = f"campaign {campaign!r}" if campaign else "any active campaign"
        raise InputError(f"no answer {answer!r} in {where}"
                         + (f"; answers: {listing}" if listing else "; no campaign is active or upcoming"))
    if len(candidates) > 1:
        names = ", ".join(c.name for _run, c in candidates)
        raise InputError(f"answer {answer!r} exists in several campaigns ({names}); pick one with --campaign")
    run, c = candidates[0]
    ans = c.answers[answer]
    missing = [v for v in ans.vars if v not in values]
    unknown = sorted(set(values) - set(ans.vars))
    needs = ", ".join(ans.vars) or "no variables"
    if unknown:
        raise InputError(f"answer {answer!r} does not use {', '.join(unknown)}; it needs: {needs}")
    if missing:
        example = " ".join(f"--var {v}=…" for v in missing)
        raise InputError(f"answer {answer!r} needs {', '.join(missing)} (all variables: {needs}); add {example}")
    text = text_for(ans.text, locale, [engine.loaded.config.organisation.default_locale, "en"]) or ""
    ctx = text_context(engine.loaded, c, _schedule(engine, run, c), locale, engine.clock.now(), values)
    try:
        rendered = render_text(text, ctx)
    except TextError as exc:  # only if the snapshot predates a check; registered answers render
        raise InputError(f"answer {answer!r} ({locale}): {exc.message}") from None
    return Reply(c.name, answer, locale, rendered, list(ans.vars))
