"""Render a playbook without running it: for `--dry-run` and for `validate`'s sample rendering."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from continuity.config.loader import LoadedConfig, every_playbook
from continuity.config.models import Playbook
from continuity.durations import format_duration
from continuity.errors import InputError, InputErrors
from continuity.store.records import SituationRecord
from continuity.templating import TemplateCatalog
from continuity.variables import template_context


def sample_situation(channel: str, now: datetime, *, reason: str = "SIP trunk down at the provider",
                     eta: datetime | None = None, by: str = "on-call", closed: bool = False,
                     playbook: str = "") -> SituationRecord:
    return SituationRecord(
        id=0, kind="outage", channel=channel, playbook=playbook, state="closed" if closed else "open",
        source="cli", opened_by=by, reason=reason, eta=eta, note="Provider fixed the trunk" if closed else None,
        revision=0, opened_at=now, closed_at=now + timedelta(hours=1, minutes=25) if closed else None,
        closed_by=by if closed else None,
    )


def preview_open(loaded: LoadedConfig, channel: str, *, reason: str, eta: datetime | None, by: str,
                 now: datetime) -> list[dict[str, Any]]:
    """Every action the playbook would take, rendered, in time order (first runs of repeats only)."""
    playbook = loaded.playbook_for(channel)
    catalog = TemplateCatalog(loaded)
    out = []
    for group, step in playbook.all_steps():
        at = now + step.after if group == "open" else now
        sit = sample_situation(channel, now, reason=reason, eta=eta, by=by, closed=group == "close",
                               playbook=playbook.name)
        when = {"open": f"+{format_duration(step.after)}", "update": "on ETA change", "close": "on restore"}[group]
        if step.every:
            when += f", then every {format_duration(step.every)}"
        ctx = template_context(loaded, sit, playbook, catalog.locales_for(step.audience)[0], at, step_id=step.id)
        rendered = catalog.render(step.template, catalog.locales_for(step.audience)[0], ctx)
        text = (rendered.title + "\n" if rendered.title else "") + rendered.body
        for sink in loaded.targets(step):
            out.append({"when": when, "group": group, "step": step.id, "action": step.action, "to": step.to,
                        "sink": sink, "locales": catalog.locales_for(step.audience), "preview": text[:400]})
    return out


def render_everything(loaded: LoadedConfig, now: datetime) -> int:
    """Render every template of every playbook, in every locale, with and without ETA/fallbacks.

    Returns how many renderings passed; raises InputErrors listing every failure with file and line.
    """
    catalog = TemplateCatalog(loaded)
    errors: list[InputError] = []
    seen_errors: set[str] = set()
    count = 0
    for channel, playbook in every_playbook(loaded):
        for group, step in playbook.all_steps():
            for locale in catalog.locales_for(step.audience):
                for variant in _variants(channel, now, group, playbook):
                    ctx = template_context(loaded, variant, playbook, locale, now + step.after, step_id=step.id)
                    try:
                        catalog.render(step.template, locale, ctx)
                        count += 1
                    except InputError as exc:
                        if str(exc) not in seen_errors:
                            seen_errors.add(str(exc))
                            errors.append(exc)
    from continuity.daemon import DAEMON_TEMPLATES

    for template in DAEMON_TEMPLATES:
        channel = next(iter(loaded.config.channels))
        locale = catalog.staff_locale
        for variant in _variants(channel, now, "open", Playbook(name="daemon", kind="outage", title="daemon")):
            try:
                catalog.render(template, locale, template_context(loaded, variant, None, locale, now))
                count += 1
            except InputError as exc:
                errors.append(exc)
    if errors:
        raise InputErrors(errors)
    return count


def _sample_data(kind: str, now: datetime) -> list[dict[str, Any]]:
    """The situation data a kind's templates rely on, in each shape they must handle."""
    if kind == "maintenance":
        return [{"maintenance": {"id": 0, "starts_at": (now + start).isoformat(),
                                 "ends_at": (now + start + timedelta(hours=2)).isoformat()}}
                for start in (timedelta(hours=1), timedelta(hours=-1))]  # announced ahead, and in progress
    return [{}]


def _variants(channel: str, now: datetime, group: str, playbook: Playbook) -> list[SituationRecord]:
    closed = group == "close"
    out = []
    for data in _sample_data(playbook.kind, now):
        for eta in (now + timedelta(hours=2), None):
            sit = sample_situation(channel, now, eta=eta, closed=closed, playbook=playbook.name)
            out.append(replace(sit, kind=playbook.kind, data=data))
    return out
