"""Render a playbook without running it: for `--dry-run` and for `validate`'s sample rendering."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from continuity.config.loader import LoadedConfig, every_playbook
from continuity.config.models import Playbook, StepSpec
from continuity.config.yamlsrc import pretty_path
from continuity.durations import format_duration
from continuity.errors import InputError, InputErrors, Location
from continuity.sinks.base import Rendered
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
            by_variant: dict[int, list[Rendered]] = {}
            for locale in catalog.locales_for(step.audience):
                for vi, variant in enumerate(_variants(channel, now, group, playbook)):
                    ctx = template_context(loaded, variant, playbook, locale, now + step.after, step_id=step.id)
                    try:
                        by_variant.setdefault(vi, []).append(catalog.render(step.template, locale, ctx))
                        count += 1
                    except InputError as exc:
                        if str(exc) not in seen_errors:
                            seen_errors.add(str(exc))
                            errors.append(exc)
            # What the step's sinks would make of the sample renderings (a post too long for X).
            for messages in by_variant.values():
                if len(messages) == len(catalog.locales_for(step.audience)):
                    for problem in sink_problems(loaded, catalog, playbook, step, messages):
                        if str(problem) not in seen_errors:
                            seen_errors.add(str(problem))
                            errors.append(problem)
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
    from continuity.public.status import check_templates

    try:
        count += check_templates(loaded, now)  # the public status page, in every served locale
    except InputErrors as exc:
        errors.extend(exc.errors)
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


def sink_problems(loaded: LoadedConfig, catalog: TemplateCatalog, playbook: Playbook, step: StepSpec,
                  messages: list[Rendered]) -> list[InputError]:
    """Ask each sink of the step whether it could send these renderings; locate each problem in the template
    (its body block) or in the sink's settings."""
    out: list[InputError] = []
    for sink_name in loaded.targets(step):
        inst = loaded.sinks.get(sink_name)
        if inst is None:
            continue
        for problem in inst.cls.check_rendered(inst.settings, messages):
            text = f"{problem.message} (sink {sink_name!r}, step {step.id!r} of playbook {playbook.name!r}, " \
                   "sample data)"
            if problem.locale is None:
                where = ("sinks", sink_name, *([problem.field] if problem.field else []))
                out.append(loaded.documents[""].error(where, text))
            else:
                out.append(InputError(text, _template_location(catalog, step.template, problem.locale)))
    return out


def _template_location(catalog: TemplateCatalog, name: str, locale: str) -> Location:
    rel = catalog.find(name, locale) or f"{locale}/{name}.j2"
    for d in catalog.dirs:
        path = d / rel
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            line = next((i for i, t in enumerate(lines, 1) if "block body" in t), None)
            return Location(pretty_path(path), line, "block body")
    return Location(rel)


def _variants(channel: str, now: datetime, group: str, playbook: Playbook) -> list[SituationRecord]:
    closed = group == "close"
    out = []
    for data in _sample_data(playbook.kind, now):
        for eta in (now + timedelta(hours=2), None):
            sit = sample_situation(channel, now, eta=eta, closed=closed, playbook=playbook.name)
            out.append(replace(sit, kind=playbook.kind, data=data))
    return out
