"""Render a playbook without running it: for `--dry-run` and for `validate`'s sample rendering.

A dry run answers "what would `continuity outage CHANNEL` do right now?". With no outage of the channel open,
that is the whole playbook. With one open, the real command only updates it, so the dry run replays the
engine's own decision on a private, temporary copy of the store's files: the store itself is only read as
bytes (never created, opened, migrated or locked) and no sink is called.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from continuity.actions import ACTIONS
from continuity.config.loader import LoadedConfig, every_playbook
from continuity.config.models import Playbook, StepSpec
from continuity.config.yamlsrc import pretty_path
from continuity.durations import format_duration
from continuity.errors import InputError, InputErrors, Location
from continuity.notes import DAEMON_TEMPLATES
from continuity.samples import sample_situation
from continuity.sinks.base import Rendered
from continuity.store import store_path
from continuity.store.records import SituationRecord, StepRecord
from continuity.store.sqlite import SqliteStore
from continuity.templating import TemplateCatalog
from continuity.variables import template_context


@dataclass
class OpenPreview:
    """What `continuity outage CHANNEL` would do now: open a new outage (`situation_id` None) and run its
    playbook, or update the one already open, running only what that update plans and what is already due."""

    channel: str
    situation_id: int | None = None
    eta_changed: bool = False
    reason_changed: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)
    # What customers read as the cause, per locale: the prepared sentence (plus the staff's words where they
    # are published in that language), so the person sees it before anything goes out.
    cause: dict[str, str] = field(default_factory=dict)

    @property
    def created(self) -> bool:
        return self.situation_id is None

    @property
    def headline(self) -> str:
        if self.situation_id is None:
            return f"outage of {self.channel}"
        head = f"outage #{self.situation_id} of {self.channel} is already open"
        changes = [*(["the reason would be updated"] if self.reason_changed else []),
                   *(["the ETA would change (customers re-told)"] if self.eta_changed else [])]
        if changes:
            return f"{head}; " + " and ".join(changes)
        if self.actions:
            return f"{head}; reason and ETA unchanged, but steps already due would run"
        return f"{head}; nothing would change"

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "created": self.created, "situation_id": self.situation_id,
                "eta_changed": self.eta_changed, "reason_changed": self.reason_changed,
                "message": self.headline, "cause": self.cause, "actions": self.actions}


PREVIEW_CHARS = 400


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    """At most about `limit` characters, cut after a whole word (never mid-word), with … when cut."""
    if len(text) <= limit:
        return text
    head = text[:limit + 1]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return (head[:cut] if cut > 0 else text[:limit]).rstrip() + " …"


def customer_cause(loaded: LoadedConfig, situation: SituationRecord) -> dict[str, str]:
    """The cause sentence each customer locale reads for this situation."""
    from continuity.variables import cause_key, cause_text, customer_reason

    org = loaded.config.organisation
    out = {}
    for locale in org.locales:
        words = cause_text(loaded, cause_key(situation), locale)
        published = customer_reason(situation, locale, org.default_locale)
        out[locale] = f"{words} {published}" if published else words
    return out


def preview_open(loaded: LoadedConfig, channel: str, *, reason: str, eta: datetime | None, by: str,
                 now: datetime, data: dict[str, Any] | None = None) -> OpenPreview:
    """What declaring an outage of `channel` would do given the store, rendered; touches nothing. `data` is
    what customers are told about why (`--cause`, `--public-reason`), as the real command stores it."""
    with scratch_copy(loaded) as store:
        existing = store.find_open("outage", channel) if store is not None else None
        if store is not None and existing is not None:
            return _preview_update(loaded, store, existing, reason=reason, eta=eta, by=by, now=now, data=data)
    sit = replace(sample_situation(channel, now, reason=reason, eta=eta, by=by), data=dict(data or {}))
    return OpenPreview(channel, actions=playbook_actions(loaded, channel, reason=reason, eta=eta, by=by, now=now,
                                                         data=data),
                       cause=customer_cause(loaded, sit))


def playbook_actions(loaded: LoadedConfig, channel: str, *, reason: str, eta: datetime | None, by: str,
                     now: datetime, data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every action the playbook would take, rendered, in time order (first runs of repeats only)."""
    playbook = loaded.playbook_for(channel)
    catalog = TemplateCatalog(loaded)
    out = []
    for group, step in playbook.all_steps():
        at = now + step.after if group == "open" else now
        sit = sample_situation(channel, now, reason=reason, eta=eta, by=by, closed=group == "close",
                               playbook=playbook.name)
        sit = replace(sit, data=dict(data or {}))
        when = {"open": f"+{format_duration(step.after)}", "update": "on ETA change", "close": "on restore"}[group]
        if step.every:
            when += f", then every {format_duration(step.every)}"
        ctx = template_context(loaded, sit, playbook, catalog.locales_for(step.audience)[0], at, step_id=step.id)
        rendered = catalog.render(step.template, catalog.locales_for(step.audience)[0], ctx)
        text = (rendered.title + "\n" if rendered.title else "") + rendered.body
        for sink in loaded.targets(step):
            out.append({"when": when, "group": group, "step": step.id, "action": step.action, "to": step.to,
                        "sink": sink, "locales": catalog.locales_for(step.audience), "preview": shorten(text)})
    return out


def _preview_update(loaded: LoadedConfig, store: SqliteStore, existing: SituationRecord, *, reason: str,
                    eta: datetime | None, by: str, now: datetime, data: dict[str, Any] | None) -> OpenPreview:
    """Run the engine's real update on the private copy, then list what `run_due` would claim right after:
    the rows the update planned and any already due (an overdue banner, a retry), as the runner renders them."""
    from continuity.clock import ManualClock
    from continuity.engine import Engine

    before = {r.id: r for r in store.steps_for(existing.id)}
    eng = Engine(loaded, store, ManualClock(now))
    result = eng.open(existing.channel, reason=reason, eta=eta, by=by, data=data)
    sit = result.situation
    playbook = loaded.playbooks.get(sit.playbook)
    specs = {s.id: s for _, s in playbook.all_steps()} if playbook else {}
    on_update = {s.id for s in playbook.on_update} if playbook else set()
    actions = []
    for row in store.due_steps(now, [sit.id]):
        kind = ACTIONS.get(row.action)
        locales = eng.catalog.locales_for(kind.audience if kind else "staff")
        ctx = template_context(loaded, sit, playbook, locales[0], now, step_id=row.step_id, occurrence=row.occurrence)
        rendered = eng.catalog.render(row.template, locales[0], ctx)
        text = (rendered.title + "\n" if rendered.title else "") + rendered.body
        spec = specs.get(row.step_id)
        actions.append({"when": _when(row, before.get(row.id), sit, on_update), "group": row.phase,
                        "step": row.step_id, "action": row.action, "to": spec.to if spec else row.sink,
                        "sink": row.sink, "locales": locales, "preview": shorten(text)})
    return OpenPreview(existing.channel, sit.id, eta_changed=result.eta_changed, reason_changed=result.reason_changed,
                       actions=actions, cause=customer_cause(loaded, sit))


def _when(row: StepRecord, before: StepRecord | None, sit: SituationRecord, on_update: set[str]) -> str:
    if before is None:  # planned by this update
        return "now, on ETA change" if row.step_id in on_update else "now, refreshed to show the new ETA"
    if before.state == "failed":
        return f"now, retry after {before.attempts} failed attempt(s)"
    if before.state == "running":
        return "now, again (an earlier run was interrupted)"
    return f"now, overdue (was due at +{format_duration(row.due_at - sit.opened_at)})"


@contextmanager
def scratch_copy(loaded: LoadedConfig) -> Iterator[SqliteStore | None]:
    """A private, throw-away copy of the store to replay the engine on; None when there is no store yet.

    The store's files are only read, as bytes: opening the store itself, even read-only, would touch it
    (SQLite's `mode=ro` creates a missing -wal and -shm, and any reader of a store in use writes its read marks
    into the -shm). The main file is read before the WAL, and both again if either changed meanwhile, so a
    writer's checkpoint cannot mix versions; the copy's own recovery keeps only committed transactions.
    """
    from continuity.store.pg_url import is_postgres_url

    if is_postgres_url(loaded.store_url):  # the database's own scratch space: a transaction never committed
        from continuity.store import open_store

        pg = open_store(loaded.store_url, loaded.base_dir,
                        busy_timeout=loaded.config.store.busy_timeout.total_seconds())
        try:
            with pg.rolled_back():  # type: ignore[attr-defined]
                yield pg  # type: ignore[misc]
        finally:
            pg.close()
        return
    path = store_path(loaded.store_url, loaded.base_dir)
    if not path.is_file():
        yield None
        return
    wal = path.with_name(path.name + "-wal")
    with tempfile.TemporaryDirectory(prefix="continuity-dry-run-") as tmp:
        copy = Path(tmp) / path.name
        copy_wal = copy.with_name(copy.name + "-wal")
        for _ in range(5):  # a store in constant use gets the last copy: WAL recovery still keeps it sound
            stamp = _stamp(path, wal)
            copy.write_bytes(path.read_bytes())
            try:
                copy_wal.write_bytes(wal.read_bytes())
            except FileNotFoundError:  # no writer has it open (the last one deletes the WAL on closing)
                copy_wal.unlink(missing_ok=True)
            if _stamp(path, wal) == stamp:
                break
        store = SqliteStore(copy)
        try:
            yield store
        finally:
            store.close()


def _stamp(*paths: Path) -> tuple[tuple[int, int, int] | None, ...]:
    out: list[tuple[int, int, int] | None] = []
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def render_everything(loaded: LoadedConfig, now: datetime) -> int:
    """Render every template of every playbook and every staff note, in every locale, with and without
    ETA/fallbacks. (The public pages' templates are checked by continuity.public.status.check_templates.)

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


def campaign_texts(loaded: LoadedConfig, campaign: Any, now: datetime) -> list[dict[str, Any]]:
    """What a campaign will send, before it is registered (`campaign register --dry-run`): every step of its
    surge playbook (the briefing, the reminder, the launch banner, notice, auto-reply and status post, the
    summary), rendered in every locale of its audience, as the registered campaign will render them."""
    import continuity.campaigns  # noqa: F401  (registers the `campaign` template variable)
    from continuity.campaigns.load import playbook_named
    from continuity.campaigns.phases import surge_reason

    playbook = playbook_named(loaded, campaign.playbook)
    data = {"campaign": {"name": campaign.name, "run": 1, "version": 1, "starts_at": campaign.start.isoformat(),
                         "ends_at": campaign.end.isoformat(), "snapshot": campaign.model_dump(mode="json")}}
    sit = SituationRecord(id=-1, kind="surge", channel=f"campaign:{campaign.name}", playbook=playbook.name,
                          state="open", source="campaign", opened_by="campaign",
                          reason=surge_reason(loaded, campaign, campaign.start, campaign.end),
                          eta=campaign.end, note=None, revision=0,
                          opened_at=now, closed_at=None, closed_by=None, data=data)
    catalog = TemplateCatalog(loaded)
    out = []
    for group, step in playbook.all_steps():
        # the moment the step renders at, for "today"/"tomorrow" words (the reminder: the day before launch)
        moment = {"launch": campaign.start, "reminder": campaign.start - timedelta(days=1)}.get(
            step.at or "", campaign.end if group == "close" else now)
        texts = []
        for locale in catalog.locales_for(step.audience):
            ctx = template_context(loaded, sit, playbook, locale, moment, step_id=step.id)
            rendered = catalog.render(step.template, locale, ctx)
            texts.append({"locale": locale, "text": (rendered.title + "\n" if rendered.title else "") + rendered.body})
        out.append({"step": step.id, "action": step.action, "to": step.to, "group": group,
                    "when": {"reminder": "the morning before launch", "launch": "at the start"}.get(
                        step.at or "", {"open": "at the briefing", "close": "at the end"}.get(group, group)),
                    "audience": step.audience, "texts": texts})
    return out
