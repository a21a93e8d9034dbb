"""Read a campaign file and check it against the configuration, the clock and the other campaigns.

Every problem names file, line and field and all of them are reported together; nothing here writes to the
store, so a refused campaign leaves no trace. Overlaps on the same channels are warnings (two promotions may
well share a weekend); a code used by an overlapping campaign is an error (customers and agents could not
tell which conditions apply).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from continuity.campaigns.content import (
    BUILTIN_VARS,
    Schedule,
    TextError,
    campaign_obj,
    placeholder,
    render_text,
    text_context,
)
from continuity.campaigns.gaps import channels_of, customer_channels
from continuity.campaigns.model import Campaign, text_for
from continuity.campaigns.store import CampaignRun, get_version, runs
from continuity.config.loader import load_playbook, validation_errors
from continuity.config.yamlsrc import Document, Path_, load_yaml_file
from continuity.durations import format_duration
from continuity.errors import InputError, InputErrors

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.config.models import Playbook
    from continuity.engine import Engine


@dataclass
class Checked:
    """A campaign file that passed every check, with the warnings to show."""

    campaign: Campaign
    doc: Document
    warnings: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.doc.file


class SchemaErrors(InputErrors):
    """A campaign file's schema mistakes, with the campaign as it reads once the optional fields that were
    wrong are left out (None when a required one was wrong): the later checks run on that, so one run
    reports every mistake, not one layer at a time."""

    def __init__(self, errors: list[InputError], partial: tuple[Campaign, Document] | None) -> None:
        super().__init__(errors)
        self.partial = partial


def parse(path: Path) -> tuple[Campaign, Document]:
    """YAML syntax and the schema: unknown keys, missing fields, naive times, bad durations."""
    doc = load_yaml_file(path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "a campaign file must be a YAML mapping (name, title, start, end, faq, …)")
    try:
        return Campaign.model_validate(doc.data), doc
    except ValidationError as exc:
        errors = validation_errors(doc, exc)
        data: dict[str, Any] = dict(doc.data)
        for _ in range(3):  # leave out what was wrong; a cross-field check may then speak up in turn
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            if not bad or any(key in Campaign.model_fields and Campaign.model_fields[key].is_required()
                              for key in bad):
                break
            data = {k: v for k, v in data.items() if k not in bad}
            try:
                partial = Campaign.model_validate(data)
            except ValidationError as again:
                exc = again
                errors += [e for e in validation_errors(doc, again) if str(e) not in {str(x) for x in errors}]
                continue
            raise SchemaErrors(errors, (partial, doc)) from None
        raise SchemaErrors(errors, None) from None


def _and_later(errors: list[InputError], exc: SchemaErrors, later: Callable[[Campaign, Document],
                                                                            list[InputError]]) -> None:
    """Add what the later checks find in the partial campaign of a file with schema mistakes."""
    if exc.partial is None:
        return
    seen = {str(e) for e in errors}
    errors.extend(e for e in later(*exc.partial) if str(e) not in seen)


def load_checked(engine: Engine, source: Path | tuple[Campaign, Document], *, force: bool = False,
                 replacing: CampaignRun | None = None) -> Checked:
    """A campaign file (or a campaign already built, from flags) with every check of register/update."""
    try:
        campaign, doc = parse(source) if isinstance(source, Path) else source
    except SchemaErrors as exc:
        errors = list(exc.errors)

        def content(campaign: Campaign, doc: Document) -> list[InputError]:
            found: list[InputError] = []
            check_content(engine.loaded, campaign, doc, engine.clock.now(), found, [])
            return found

        _and_later(errors, exc, content)
        raise InputErrors(errors) from None
    warnings = check(engine, campaign, doc, force=force, replacing=replacing)
    return Checked(campaign, doc, warnings)


def precheck(loaded: LoadedConfig, source: Path | tuple[Campaign, Document],
             now: datetime) -> tuple[Campaign, Document]:
    """The checks that need no store (syntax, schema, references, texts, templates), so a CLI can refuse a bad
    file before it opens, and perhaps creates, the ledger. Register and update still run every check."""
    def content(campaign: Campaign, doc: Document) -> list[InputError]:
        found: list[InputError] = []
        check_content(loaded, campaign, doc, now, found, [])
        return found

    try:
        campaign, doc = parse(source) if isinstance(source, Path) else source
    except SchemaErrors as exc:
        errors = list(exc.errors)
        _and_later(errors, exc, content)
        raise InputErrors(errors) from None
    errors = content(campaign, doc)
    if errors:
        raise InputErrors(errors)
    return campaign, doc


@dataclass
class FileReport:
    """A campaign file in the playbook search path that `validate` found sound."""

    file: str
    name: str
    warnings: list[str] = field(default_factory=list)


def campaign_files(loaded: LoadedConfig) -> list[tuple[Path, bool]]:
    """The `campaign-*.yaml` files of the playbook search path, each with whether it is a shipped one. A file
    in an earlier folder hides one of the same name in a later folder, as for playbooks."""
    from continuity.config.loader import CAMPAIGN_FILE_PREFIX
    from continuity.shipped import shipped_dir

    shipped = shipped_dir("playbooks").resolve()
    found: dict[str, tuple[Path, bool]] = {}
    for directory in loaded.playbook_dirs:
        for path in sorted(directory.glob(f"{CAMPAIGN_FILE_PREFIX}*.yaml")):
            found.setdefault(path.name, (path, directory.resolve() == shipped))
    return list(found.values())


def check_files(loaded: LoadedConfig, now: datetime) -> list[FileReport]:
    """`continuity validate` for campaign files: the checks of `campaign register` that do not depend on the
    clock or on the campaigns already registered (start in the future, lead time, overlaps), so a broken
    campaign file is caught before anyone tries to register it. Raises InputErrors for every file's problems."""
    errors: list[InputError] = []
    reports: list[FileReport] = []
    sound: list[tuple[Campaign, Document]] = []
    for path, shipped in campaign_files(loaded):
        try:
            campaign, doc = parse(path)
        except SchemaErrors as exc:
            errors.extend(exc.errors)

            def content(campaign: Campaign, doc: Document, shipped: bool = shipped) -> list[InputError]:
                found: list[InputError] = []
                check_content(loaded, campaign, doc, now, found, [], shipped=shipped)
                return found

            _and_later(errors, exc, content)
            continue
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        mine: list[InputError] = []
        warnings: list[str] = []
        check_content(loaded, campaign, doc, now, mine, warnings, shipped=shipped)
        mine.extend(_against_earlier_files(campaign, doc, sound, loaded.config.organisation.timezone))
        errors.extend(mine)
        if not mine:
            reports.append(FileReport(doc.file, campaign.name, warnings))
            sound.append((campaign, doc))
    if errors:
        raise InputErrors(errors)
    return reports


def _against_earlier_files(c: Campaign, doc: Document, earlier: list[tuple[Campaign, Document]],
                           tz: str) -> list[InputError]:
    """What `campaign register` would refuse once the earlier files are registered: a code shared with another
    campaign whose dates overlap (customers and agents could not tell which one it is). Two files of the same
    campaign are versions of it (`campaign update`), not rivals."""
    errors: list[InputError] = []
    for other, other_doc in earlier:
        if other.name == c.name or not (other.start < c.end and c.start < other.end):
            continue
        theirs = {code.code.upper() for code in other.codes}
        for i, code in enumerate(c.codes):
            if code.code.upper() in theirs:
                errors.append(doc.error(("codes", i, "code"), f"code {code.code} is also a code of campaign "
                                        f"{other.name!r} ({other_doc.file}, {_when(other.start, tz)} – "
                                        f"{_when(other.end, tz)}), which overlaps this one; use a different code"))
    return errors


def _when(dt: datetime, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def check(engine: Engine, c: Campaign, doc: Document, *, force: bool, replacing: CampaignRun | None) -> list[str]:
    """Raise InputErrors for everything wrong with the campaign; return the warnings."""
    loaded = engine.loaded
    cfg = loaded.config
    tz = cfg.organisation.timezone
    now = engine.clock.now()
    errors: list[InputError] = []
    warnings: list[str] = []

    def err(path: Path_, message: str) -> None:
        errors.append(doc.error(path, message))

    def warn(path: Path_, message: str) -> None:
        warnings.append(f"{doc.loc(path)}: {message}")

    if replacing is not None and c.name != replacing.name:
        err(("name",), f"the file is campaign {c.name!r}, not {replacing.name!r}")

    # time: what depends on now --------------------------------------------------------------------------------
    live = replacing is not None and replacing.state == "live"
    if live:
        assert replacing is not None
        if c.start != replacing.starts_at:
            err(("start",), f"start cannot change: the campaign is live since {_when(replacing.starts_at, tz)}")
    elif c.start <= now:
        err(("start",), f"start ({_when(c.start, tz)}) is in the past; it is now {_when(now, tz)}")
    if c.end <= now and c.end > c.start:
        err(("end",), f"end ({_when(c.end, tz)}) is in the past")
    min_lead = cfg.campaigns.min_lead
    lead = c.lead if c.lead is not None else min_lead
    start_moved = replacing is None or c.start != replacing.starts_at
    if c.lead is not None and c.lead < min_lead and not force:
        err(("lead",), f"lead {format_duration(c.lead)} is under the minimum of {format_duration(min_lead)} "
                       "(campaigns.min_lead): staff need time to prepare; use --force if it really cannot wait")
    elif not live and start_moved and c.start > now:
        notice = c.start - now
        if notice < min_lead and not force:
            err(("start",), f"starts in {format_duration(notice)}, under the minimum lead of "
                            f"{format_duration(min_lead)} (campaigns.min_lead): staff need time to prepare; "
                            "use --force if it really cannot wait")
        elif notice < lead:
            warn(("start",), f"starts in {format_duration(notice)}: staff are briefed right away instead of "
                             f"{format_duration(lead)} ahead")

    # other campaigns at the same time ----------------------------------------------------------------------
    for other in runs(engine.store):
        if other.name == c.name or not (other.starts_at < c.end and c.start < other.ends_at):
            continue
        snap = get_version(engine.store, other.name, other.version).snapshot
        theirs = {code["code"].upper() for code in snap.get("codes", [])}
        for i, code in enumerate(c.codes):
            if code.code.upper() in theirs:
                err(("codes", i, "code"), f"code {code.code} is also a code of campaign {other.name!r} "
                                          f"({_when(other.starts_at, tz)} – {_when(other.ends_at, tz)}), which "
                                          "overlaps this one; use a different code")
        theirs_on = snap.get("channels") or customer_channels(loaded)
        shared = [ch for ch in channels_of(loaded, c) if ch in theirs_on]
        if shared:
            warn(("channels",), f"overlaps campaign {other.name!r} ({_when(other.starts_at, tz)} – "
                                f"{_when(other.ends_at, tz)}) on {', '.join(shared)}: expect both surges at once")

    check_content(loaded, c, doc, now, errors, warnings)
    if errors:
        raise InputErrors(errors)
    return warnings


def playbook_named(loaded: LoadedConfig, name: str) -> Playbook:
    """A playbook by name from the search path, cached in `loaded` (as Engine.playbook_named does)."""
    if name not in loaded.playbooks:
        loaded.playbooks[name], loaded.documents[name] = load_playbook(name, loaded.playbook_dirs)
    return loaded.playbooks[name]


def check_content(loaded: LoadedConfig, c: Campaign, doc: Document, now: datetime, errors: list[InputError],
                  warnings: list[str], *, shipped: bool = False) -> None:
    """Everything that depends neither on the clock nor on the other campaigns: dates in order, references to
    the config, codes, texts in every served locale, and the FAQ, answers and playbook templates rendering.
    Shared by `campaign register`/`update` and `validate`. With `shipped` (the example that comes with
    continuity, which the operator cannot edit in place) references to this config's channels and routes
    are warnings: a config without a phone line must still validate."""
    cfg = loaded.config
    org = cfg.organisation
    tz = org.timezone

    def err(path: Path_, message: str) -> None:
        errors.append(doc.error(path, message))

    def warn(path: Path_, message: str) -> None:
        warnings.append(f"{doc.loc(path)}: {message}")

    def ref(path: Path_, message: str) -> None:
        if shipped:
            warn(path, message + " (a shipped example: copy it beside your playbooks to adapt it)")
        else:
            err(path, message)

    if c.end <= c.start:
        err(("end",), f"end ({_when(c.end, tz)}) must be after start ({_when(c.start, tz)})")
    if c.recurrence is not None and c.recurrence.until is not None and c.recurrence.until < c.start.year:
        err(("recurrence", "until"), f"until {c.recurrence.until} is before the first run ({c.start.year})")

    # references to the config -------------------------------------------------------------------------------
    for i, ch in enumerate(c.channels):
        if ch not in cfg.channels:
            ref(("channels", i), f"unknown channel {ch!r}; configured channels: {', '.join(cfg.channels)}")
    surging = channels_of(loaded, c)
    for ch in c.wait:
        if ch not in surging:
            err(("wait", ch), f"{ch!r} is not one of this campaign's channels ({', '.join(surging)})")
    for i, to in enumerate(c.brief.to):
        if to not in loaded.routes and to not in loaded.sinks:
            known = sorted(set(loaded.routes) | set(loaded.sinks))
            ref(("brief", "to", i), f"unknown route or sink {to!r}; known: {', '.join(known)}")
    playbook = None
    try:
        playbook = playbook_named(loaded, c.playbook)
    except InputErrors as exc:
        errors.extend(exc.errors)
    except InputError as exc:
        err(("playbook",), exc.message)
    if playbook is not None and playbook.kind != "surge":
        err(("playbook",), f"playbook {c.playbook!r} is of kind {playbook.kind!r}; a campaign needs a surge playbook")

    # codes --------------------------------------------------------------------------------------------------
    seen: dict[str, int] = {}
    for i, code in enumerate(c.codes):
        key = code.code.upper()
        if key in seen:
            err(("codes", i, "code"), f"code {code.code} is listed twice (also codes[{seen[key]}])")
        seen.setdefault(key, i)
        if code.valid_from and code.valid_until and code.valid_until <= code.valid_from:
            err(("codes", i, "valid_until"), "valid_until must be after valid_from")
        for name, moment in (("valid_from", code.valid_from), ("valid_until", code.valid_until)):
            if moment is not None and not c.start <= moment <= c.end:
                warn(("codes", i, name), f"{_when(moment, tz)} is outside the campaign ({_when(c.start, tz)} – "
                                         f"{_when(c.end, tz)})")

    # texts in every locale ----------------------------------------------------------------------------------
    served = list(org.locales)
    gaps: set[str] = set()  # served locales some text is missing for

    def gap(loc: str, path: Path_, message: str) -> None:
        # The shipped example cannot know every locale an organisation adds (de, cs, …): a warning there.
        gaps.add(loc)
        ref(path, message)

    for key in ("title", "terms", "faq_url"):
        value = getattr(c, key)
        if isinstance(value, dict):
            for loc in served:
                if loc not in value:
                    gap(loc, (key,), f"no {key} for locale {loc!r}: give one for each of {', '.join(served)} "
                                "(or a single text for all)")
    if not c.faq and c.faq_url is not None:
        # No FAQ entries (`faq: {}`, or registered with flags): the FAQ page stands in. With neither (a campaign
        # registered early) the gap is listed as still missing (gaps.py), and `validate` warns before the brief.
        warn(("faq",), "no FAQ entries: the briefing and `continuity faq` have none for this campaign and "
                       "point to the FAQ page; add entries with `continuity campaign update NAME FILE`")
    for loc in served if c.faq else ():
        if not c.faq.get(loc):
            gap(loc, ("faq",), f"no FAQ for locale {loc!r}: the organisation serves {', '.join(served)} and agents "
                          "answer in each")
    for loc in c.faq:
        if loc not in served:
            warn(("faq", loc), f"locale {loc!r} is not served by the organisation ({', '.join(served)}); unused")
    for name, ans in c.answers.items():
        for loc in served:
            if loc not in ans.text:
                gap(loc, ("answers", name, "text"), f"no text for locale {loc!r} (needed: {', '.join(served)})")
        for var in ans.vars:
            if var in BUILTIN_VARS:
                err(("answers", name, "vars"), f"{var!r} is given by continuity itself; pick another name")
    # The texts render even when something else is wrong (dates out of order, an unknown route): one run
    # names every mistake. Locales with a missing text are left out, so no error is reported twice.
    _render_texts(loaded, c, doc, [loc for loc in served if loc not in gaps], now, errors)
    if not errors and playbook is not None:
        _render_playbook(loaded, c, now, errors)


def _render_texts(loaded: LoadedConfig, c: Campaign, doc: Document, served: list[str], now: datetime,
                  errors: list[InputError]) -> None:
    """Every FAQ entry and answer compiles and renders in every served locale, with StrictUndefined."""
    schedule = Schedule(c.start, c.end)

    def located(path: Path_, exc: TextError, extra: str = "") -> None:
        where = f" (line {exc.line} of the text)" if exc.line and exc.line > 1 else ""
        errors.append(doc.error(path, exc.message + where + extra))

    for loc in served:
        base = text_context(loaded, c, schedule, loc, now, {})
        for i, item in enumerate(c.faq.get(loc, [])):
            for part in ("q", "a"):
                try:
                    render_text(getattr(item, part), base)
                except TextError as exc:
                    located(("faq", loc, i, part), exc, "; a FAQ entry can use campaign, org and locale")
        for name, ans in c.answers.items():
            text = ans.text.get(loc)
            if text is None:
                continue
            try:
                render_text(text, {**base, **{v: placeholder(v) for v in ans.vars}})
            except TextError as exc:
                declared = ", ".join(ans.vars) or "none"
                located(("answers", name, "text", loc), exc,
                        f"; an answer can use campaign, org, locale and its vars (declared: {declared})")


def _render_playbook(loaded: LoadedConfig, c: Campaign, now: datetime, errors: list[InputError]) -> None:
    """The playbook's templates render with this campaign in every locale they speak to."""
    from continuity.store.records import SituationRecord
    from continuity.templating import TemplateCatalog
    from continuity.variables import template_context

    playbook = playbook_named(loaded, c.playbook)
    data: dict[str, Any] = {"campaign": {"name": c.name, "run": 1, "version": 1, "starts_at": c.start.isoformat(),
                                         "ends_at": c.end.isoformat(), "snapshot": c.model_dump(mode="json")}}
    sit = SituationRecord(id=-1, kind="surge", channel=f"campaign:{c.name}", playbook=playbook.name, state="open",
                          source="campaign", opened_by="check", reason=str(text_for(c.title, "en", [])), eta=c.end,
                          note=None, revision=0, opened_at=now, closed_at=None, closed_by=None, data=data)
    catalog = TemplateCatalog(loaded)
    seen: set[str] = set()
    for _group, step in playbook.all_steps():
        for loc in catalog.locales_for(step.audience):
            try:
                catalog.render(step.template, loc, template_context(loaded, sit, playbook, loc, now,
                                                                    step_id=step.id))
            except InputError as exc:
                if str(exc) not in seen:
                    seen.add(str(exc))
                    errors.append(exc)


__all__ = ["Checked", "FileReport", "campaign_files", "campaign_obj", "check", "check_content", "check_files",
           "load_checked", "parse"]
