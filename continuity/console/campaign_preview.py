"""What a campaign will make people read, before anyone reads it: the staff briefing and every later step of
its surge playbook, the FAQ entries and template answers, each rendered in every locale its audience is
served in; and what the campaign still lacks (registering early is fine: the gaps are listed until they are
filled: campaigns/gaps.py). Read-only: nothing here touches the store."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.errors import ContinuityError

if TYPE_CHECKING:
    from continuity.campaigns.model import Campaign
    from continuity.config.loader import LoadedConfig


def preview(loaded: LoadedConfig, c: Campaign, now: datetime) -> dict[str, Any]:
    """The rendered texts of the campaign's steps, FAQ and answers, per locale; a text that cannot render
    shows its error in its place (the form's checks name it too)."""
    from continuity.campaigns.content import Schedule, placeholder, render_text, text_context
    from continuity.campaigns.gaps import missing
    from continuity.campaigns.load import playbook_named
    from continuity.campaigns.model import text_for
    from continuity.store.records import SituationRecord
    from continuity.templating import TemplateCatalog
    from continuity.variables import template_context

    served = list(loaded.config.organisation.locales)
    steps: list[dict[str, Any]] = []
    try:
        playbook = playbook_named(loaded, c.playbook)
    except ContinuityError as exc:
        return {"steps": [], "faq": [], "answers": [], "missing": missing(loaded, c), "error": str(exc)}
    data = {"campaign": {"name": c.name, "run": 1, "version": 1, "starts_at": c.start.isoformat(),
                         "ends_at": c.end.isoformat(), "snapshot": c.model_dump(mode="json")}}
    sit = SituationRecord(id=-1, kind="surge", channel=f"campaign:{c.name}", playbook=playbook.name, state="open",
                          source="campaign", opened_by="console", reason=str(text_for(c.title, "en", [])),
                          eta=c.end, note=None, revision=0, opened_at=now, closed_at=None, closed_by=None,
                          data=data)
    catalog = TemplateCatalog(loaded)
    for group, step in playbook.all_steps():
        texts = []
        for loc in catalog.locales_for(step.audience):
            try:
                rendered = catalog.render(step.template, loc, template_context(loaded, sit, playbook, loc, now,
                                                                               step_id=step.id))
                text = (rendered.title + "\n" if rendered.title else "") + rendered.body
            except ContinuityError as exc:
                text = f"(cannot be rendered: {exc})"
            texts.append({"locale": loc, "text": text})
        when = step.at or ("close" if group == "close" else "open")  # worded by the page
        steps.append({"step": step.id, "to": step.to, "audience": step.audience, "when": when, "texts": texts,
                      "brief": step.id == "brief"})
    schedule = Schedule(c.start, c.end)
    faq, answers = [], []
    for loc in served:
        base = text_context(loaded, c, schedule, loc, now, {})
        for item in c.faq.get(loc, []):
            faq.append({"locale": loc, "q": _safe(render_text, item.q, base), "a": _safe(render_text, item.a, base)})
        for name, ans in c.answers.items():
            if loc in ans.text:
                answers.append({"name": name, "locale": loc, "text": _safe(
                    render_text, ans.text[loc], {**base, **{v: placeholder(v) for v in ans.vars}})})
    return {"steps": steps, "faq": faq, "answers": answers, "missing": missing(loaded, c), "error": None}


def _safe(render: Any, text: str, context: dict[str, Any]) -> str:
    from continuity.campaigns.content import TextError

    try:
        return str(render(text, context))
    except TextError as exc:
        return f"(cannot be rendered: {exc.message})"
