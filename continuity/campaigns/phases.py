"""A campaign's life on the clock, as planned steps of its `surge` situation.

    registered ──(start − lead)──► briefed ──(start)──► live ──(end)──► ended ──(recurring)──► next year's run
         └───────────── cancel ──────┴────────────────────┴──► cancelled

At the briefing (start − lead, moved back to `campaigns.brief_at`, 09:00) the situation opens (engine.open,
kind `surge`, scope `campaign:<name>`) and the playbook's steps are planned in the ledger at once: the
briefing at the opening, the reminder at the `reminder` moment, the launch steps (banner, customer notice,
status post) at the `launch` moment. At the end the situation is closed, which switches off what launch
switched on and sends the staff summary. `advance` moves every run along the clock; `continuity tick`, the
engine's run_due and the daemon call it, like maintenance windows.

The reminder goes out at `campaigns.morning_hour` (09:00) organisation time on the launch day, unless that is
less than two hours before the launch (a midnight or early-morning start): then at the same hour the day
before. It is skipped when that moment is not after the briefing (a campaign registered late with --force).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from continuity.campaigns.content import diff
from continuity.campaigns.load import Checked, load_checked
from continuity.campaigns.model import Campaign, shift_years, text_for
from continuity.campaigns.store import (
    CampaignRun,
    get_run,
    get_version,
    insert_run,
    insert_version,
    latest_run,
    runs,
    set_run,
)
from continuity.engine import CAMPAIGN_SCOPE
from continuity.errors import InputError

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig
    from continuity.config.yamlsrc import Document
    from continuity.engine import Engine

REMINDER_GAP = timedelta(hours=2)
CHANGED_TEMPLATE = "surge/campaign-changed"
BY = "campaign"


def scope(name: str) -> str:
    return f"{CAMPAIGN_SCOPE}{name}"


def lead_of(engine: Engine, campaign: Campaign) -> timedelta:
    return campaign.lead if campaign.lead is not None else engine.loaded.config.campaigns.min_lead


def briefing_time(loaded: LoadedConfig, starts_at: datetime, lead: timedelta) -> datetime:
    """When staff are briefed: `start − lead`, moved back to the last `campaigns.brief_at` (09:00 organisation
    time) at or before it, so a briefing falls in working hours and never gives less lead than asked."""
    zone, brief_at = ZoneInfo(loaded.config.organisation.timezone), loaded.config.campaigns.brief_at
    latest = (starts_at - lead).astimezone(zone)
    when = datetime.combine(latest.date(), brief_at, tzinfo=zone)
    if when > latest:
        when = datetime.combine(latest.date() - timedelta(days=1), brief_at, tzinfo=zone)
    return when.astimezone(UTC)


def reminder_time(engine: Engine, starts_at: datetime, opens_at: datetime) -> datetime | None:
    """The morning-of-launch reminder (see the module docstring), or None when it would not come after the
    briefing."""
    zone = ZoneInfo(engine.loaded.config.organisation.timezone)
    hour = time(engine.loaded.config.campaigns.morning_hour)
    day = starts_at.astimezone(zone).date()
    when = datetime.combine(day, hour, tzinfo=zone)
    if when > starts_at - REMINDER_GAP:
        when = datetime.combine(day - timedelta(days=1), hour, tzinfo=zone)
    return when.astimezone(UTC) if when > opens_at else None


def campaign_of(engine: Engine, run: CampaignRun) -> Campaign:
    return Campaign.model_validate(get_version(engine.store, run.name, run.version).snapshot)


def find_run(engine: Engine, name: str) -> CampaignRun:
    """The campaign's current run (the latest one), or a clear error."""
    run = latest_run(engine.store, name)
    if run is None:
        known = ", ".join(sorted({r.name for r in runs(engine.store, include_finished=True)})) or "none yet"
        raise InputError(f"no campaign {name!r}; registered campaigns: {known}")
    return run


def current_shift(engine: Engine, run: CampaignRun, campaign: Campaign) -> int:
    """How many years this run lies after the dates of its version (recurring campaigns)."""
    tz = ZoneInfo(engine.loaded.config.organisation.timezone)
    return run.starts_at.astimezone(tz).year - campaign.start.astimezone(tz).year


def _situation_data(engine: Engine, run: CampaignRun, campaign: Campaign, **extra: Any) -> dict[str, Any]:
    # also_staff: the engine sends every staff message of the surge (briefing, reminder, launch note, what
    # changed, summary) to the campaign's brief.to routes as well.
    return {"campaign": {"name": run.name, "run": run.run, "version": run.version,
                         "starts_at": run.starts_at.isoformat(), "ends_at": run.ends_at.isoformat(),
                         "shift": current_shift(engine, run, campaign), "snapshot": campaign.model_dump(mode="json"),
                         **extra},
            "also_staff": list(campaign.brief.to)}


# register / update / cancel / brief ---------------------------------------------------------------------------


@dataclass
class Registered:
    run: CampaignRun
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    staff_told: bool = False


def register(engine: Engine, source: Path | tuple[Campaign, Document], *, by: str, force: bool = False) -> Registered:
    """Check a campaign file (or a campaign built from flags, with its Document) and store it as version 1 of a
    new run (nothing is stored if anything is wrong)."""
    checked = load_checked(engine, source, force=force)
    c = checked.campaign
    existing = latest_run(engine.store, c.name)
    if existing is not None and existing.active:
        raise checked.doc.error(("name",), f"campaign {c.name!r} is already registered ({existing.state}); "
                                           f"change it with `continuity campaign update {c.name} FILE`")
    now = engine.clock.now()
    with engine.store.transaction():
        version = insert_version(engine.store, name=c.name, created_by=by, created_at=now, source=checked.source,
                                 snapshot=c.model_dump(mode="json"), changes=[])
        run_id = insert_run(engine.store, name=c.name, run=(existing.run + 1) if existing else 1, version=version,
                            starts_at=c.start, ends_at=c.end,
                            opens_at=briefing_time(engine.loaded, c.start, lead_of(engine, c)), created_by=by,
                            created_at=now)
    run = get_run(engine.store, run_id)
    assert run is not None
    return Registered(run, checked.warnings)


def update(engine: Engine, name: str, source: Path | tuple[Campaign, Document], *, by: str,
           force: bool = False) -> Registered:
    """Store a new version; move the planned phases if the dates moved; tell staff what changed if they have
    been briefed already (before the briefing there is nobody to tell: the briefing carries the new version)."""
    run = find_run(engine, name)
    if not run.active:
        raise InputError(f"campaign {name!r} is {run.state}; register it again instead")
    checked: Checked = load_checked(engine, source, force=force, replacing=run)
    c = checked.campaign
    old = get_version(engine.store, name, run.version).snapshot
    new = c.model_dump(mode="json")
    changes = diff(old, new)
    if not changes:
        return Registered(run, checked.warnings, [])
    now = engine.clock.now()
    with engine.store.transaction():
        version = insert_version(engine.store, name=name, created_by=by, created_at=now, source=checked.source,
                                 snapshot=new, changes=changes)
        set_run(engine.store, run.id, at=now, version=version, starts_at=c.start, ends_at=c.end,
                opens_at=briefing_time(engine.loaded, c.start, lead_of(engine, c)))
        fresh = get_run(engine.store, run.id)
        assert fresh is not None
        told = False
        if fresh.situation_id is not None:
            sit = engine.store.get_situation(fresh.situation_id)
            assert sit is not None
            engine.reanchor(fresh.situation_id, {
                "launch": fresh.starts_at, "reminder": reminder_time(engine, fresh.starts_at, sit.opened_at)})
            engine.store.update_situation(fresh.situation_id, eta=fresh.ends_at,
                                          data=_situation_data(engine, fresh, c, changes=changes))
            engine.store.add_event(fresh.situation_id, now, "campaign", f"version {version} by {by}: "
                                   + "; ".join(ch.splitlines()[0] for ch in changes))
            if fresh.state == "live":  # customers see the new texts now, not at the next phase
                engine.refresh(fresh.situation_id, f"campaign version {version}")
            engine.note(fresh.situation_id, "campaign-changed", CHANGED_TEMPLATE)
            told = True
    return Registered(fresh, checked.warnings, changes, told)


def cancel(engine: Engine, name: str, *, by: str) -> CampaignRun:
    """Cancel the current run: planned steps are cancelled, anything switched on is switched off."""
    run = find_run(engine, name)
    if not run.active:
        raise InputError(f"campaign {name!r} is already {run.state}")
    now = engine.clock.now()
    with engine.store.transaction():
        set_run(engine.store, run.id, at=now, state="cancelled")
        if run.situation_id is not None:
            _end(engine, run, by=by, outcome="cancelled")
    updated = get_run(engine.store, run.id)
    assert updated is not None
    return updated


@dataclass
class Briefing:
    run: CampaignRun
    sent_now: bool
    sent_at: datetime | None


def brief_now(engine: Engine, name: str, *, by: str, again: bool = False) -> Briefing:
    """Send the briefing now by opening the campaign's situation early; the scheduled briefing is the same
    ledger step, so it never goes out twice. If it already went out, nothing happens unless `again`: then a
    fresh copy is sent (staff changed shift, a new colleague joined)."""
    run = find_run(engine, name)
    if not run.active:
        raise InputError(f"campaign {name!r} is {run.state}; there is nobody to brief")
    if run.state == "registered":
        _open(engine, run, by=by)
        fresh = get_run(engine.store, run.id)
        assert fresh is not None
        return Briefing(fresh, True, engine.clock.now())
    assert run.situation_id is not None
    sent = [r for r in engine.store.steps_for(run.situation_id)
            if r.step_id == "brief" and r.phase == "open" and r.state in ("done", "uncertain")]
    if again:
        pb = engine.playbook_named(campaign_of(engine, run).playbook)
        spec = next((s for s in pb.steps if s.id == "brief"), None)
        template = spec.template if spec else "surge/campaign-brief"
        engine.note(run.situation_id, "brief-again", template)
        return Briefing(run, True, engine.clock.now())
    return Briefing(run, False, sent[0].finished_at if sent else None)


# the clock --------------------------------------------------------------------------------------------------


def surge_reason(loaded: LoadedConfig, c: Campaign, starts_at: datetime, ends_at: datetime) -> str:
    """The staff-facing reason a campaign's surge situation carries (its dry run shows the same)."""
    title = text_for(c.title, loaded.config.organisation.staff_lang, ["en"])
    local = ZoneInfo(loaded.config.organisation.timezone)
    return (f"campaign {title}: {starts_at.astimezone(local):%Y-%m-%d %H:%M} – "
            f"{ends_at.astimezone(local):%Y-%m-%d %H:%M}, expected load {c.load}")


def _open(engine: Engine, run: CampaignRun, *, by: str | None = None) -> None:
    """Open the run's surge situation: the briefing is due now, reminder and launch at their moments."""
    c = campaign_of(engine, run)
    now = engine.clock.now()
    anchors: dict[str, datetime | None] = {"launch": run.starts_at,
                                           "reminder": reminder_time(engine, run.starts_at, now)}
    reason = surge_reason(engine.loaded, c, run.starts_at, run.ends_at)
    with engine.store.transaction():
        if not set_run(engine.store, run.id, at=now, expect=("registered",), state="briefed"):
            return  # another process opened it a moment ago
        opened = engine.open(scope(run.name), kind="surge", playbook=c.playbook, reason=reason, eta=run.ends_at,
                             by=by or run.created_by, source="campaign", data=_situation_data(engine, run, c),
                             anchors=anchors)
        sid = opened.situation.id
        set_run(engine.store, run.id, at=now, situation_id=sid)


def _timeline(engine: Engine, situation_id: int) -> tuple[list[dict[str, Any]], list[str]]:
    rows = engine.store.steps_for(situation_id)
    fired = [{"step": r.step_id, "sink": r.sink, "at": (r.finished_at or r.due_at).isoformat(), "late": r.late}
             for r in sorted(rows, key=lambda r: (r.finished_at or r.due_at, r.id))
             if r.phase in ("open", "update", "note") and r.state in ("done", "uncertain", "undone")]
    from continuity.views import switched_on

    return fired, sorted({r.step_id for r in switched_on(rows)})


def _end(engine: Engine, run: CampaignRun, *, by: str, outcome: str) -> None:
    """Close the situation with the summary data in it: the summary step reports what fired and when, and
    whether the campaign ended or was cancelled."""
    assert run.situation_id is not None
    fired, on = _timeline(engine, run.situation_id)
    sit = engine.store.get_situation(run.situation_id)
    assert sit is not None
    data = dict(sit.data)
    data["campaign"] = {**data.get("campaign", {}), "timeline": fired, "switched_off": on, "outcome": outcome}
    with engine.store.transaction():
        engine.store.update_situation(run.situation_id, data=data)
        engine.close(scope(run.name), by=by, note=f"campaign {outcome}", kind="surge")


def _plan_next(engine: Engine, run: CampaignRun) -> CampaignRun | None:
    """After a recurring campaign's run ends, plan the same dates next year (if the recurrence allows)."""
    c = campaign_of(engine, run)
    if c.recurrence is None:
        return None
    tz = engine.loaded.config.organisation.timezone
    start, end = shift_years(run.starts_at, 1, tz), shift_years(run.ends_at, 1, tz)
    if c.recurrence.until is not None and start.astimezone(ZoneInfo(tz)).year > c.recurrence.until:
        return None
    now = engine.clock.now()
    run_id = insert_run(engine.store, name=run.name, run=run.run + 1, version=run.version, starts_at=start,
                        ends_at=end, opens_at=briefing_time(engine.loaded, start, lead_of(engine, c)),
                        created_by=run.created_by, created_at=now)
    return get_run(engine.store, run_id)


def advance(engine: Engine, name: str | None = None) -> list[tuple[str, CampaignRun]]:
    """Move every active run along the clock; returns what happened ("briefed", "live", "ended", "missed",
    "planned" for next year's run) for logs."""
    now = engine.clock.now()
    happened: list[tuple[str, CampaignRun]] = []
    for run in runs(engine.store, name=name):
        if run.state == "registered" and run.ends_at <= now:
            # The whole campaign passed while nothing ran (no daemon, no tick): nothing is opened late.
            with engine.store.transaction():
                if set_run(engine.store, run.id, at=now, expect=("registered",), state="ended"):
                    happened.append(("missed", run))
                    nxt = _plan_next(engine, run)
                    if nxt is not None:
                        happened.append(("planned", nxt))
            continue
        if run.state == "registered" and run.opens_at <= now:
            _open(engine, run)
            run = get_run(engine.store, run.id) or run
            happened.append(("briefed", run))
        if run.state == "briefed" and run.starts_at <= now:
            with engine.store.transaction():
                if set_run(engine.store, run.id, at=now, expect=("briefed",), state="live"):
                    if run.situation_id is not None:
                        engine.store.add_event(run.situation_id, now, "campaign", "launch: the campaign is live")
                    run.state = "live"
                    happened.append(("live", run))
        if run.state in ("briefed", "live") and run.ends_at <= now:
            with engine.store.transaction():
                if not set_run(engine.store, run.id, at=now, expect=("briefed", "live"), state="ended"):
                    continue
                _end(engine, run, by=BY, outcome="ended")
                run.state = "ended"
                happened.append(("ended", run))
                nxt = _plan_next(engine, run)
                if nxt is not None:
                    happened.append(("planned", nxt))
    return happened


def next_times(engine: Engine) -> list[datetime]:
    """When runs next need attention (opening, launch or end), for the daemon's date jobs."""
    out = []
    for run in runs(engine.store):
        out.append({"registered": run.opens_at, "briefed": run.starts_at}.get(run.state, run.ends_at))
    return out
