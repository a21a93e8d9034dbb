"""A campaign on the engine's clock: registered, briefed, reminded, launched and ended, each message exactly
once; cancelled before launch; surviving a restart; recurring; updated with staff told what changed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.campaigns import phases
from continuity.campaigns.store import get_run, latest_run, runs, versions
from continuity.engine import Engine
from continuity.errors import InputError
from tests.campaigns.kit import WINTER, banner, outbox_text, sent, write
from tests.conftest import NOW, Configure, MakeEngine, tick

START = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Budapest
END = datetime(2026, 12, 3, 19, 0, tzinfo=UTC)
# 48h ahead is Sunday 08:00 in Budapest, before campaigns.brief_at (09:00): briefed the day before at 09:00
BRIEF = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
REMINDER = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Budapest the day before (launch before 11:00)


def at(eng: Engine, when: datetime, *, times: int = 2) -> None:
    """Move the clock and run what is due, more than once: running again must send nothing new."""
    eng.clock.set(when)  # type: ignore[attr-defined]
    for _ in range(times):
        tick(eng)


def test_register_brief_remind_launch_end_each_message_once(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    result = phases.register(eng, write(workdir), by="marketing")
    assert result.run.state == "registered" and result.warnings == []
    assert (result.run.opens_at, result.run.starts_at, result.run.ends_at) == (BRIEF, START, END)

    at(eng, BRIEF - timedelta(minutes=1))
    assert sent(workdir) == {} and eng.store.open_situations() == []

    at(eng, BRIEF)
    run = latest_run(eng.store, "winter-sale")
    assert run is not None and run.state == "briefed"
    [sit] = eng.store.open_situations()
    assert (sit.kind, sit.channel, sit.playbook, sit.eta) == ("surge", "campaign:winter-sale", "surge-campaign", END)
    assert sent(workdir) == {("brief", "apply"): 1}
    brief = outbox_text(workdir, "brief")
    for expected in ("Winter Sale", "WINTER15", "15% off every coat.", "Which coats are included?",
                     "Thank you, [customer_name]! Your code is WINTER15.", "PLAN A", "PLAN B",
                     "email (expected wait 12 hours)"):
        assert expected in brief, expected

    at(eng, REMINDER - timedelta(minutes=1))
    assert sent(workdir) == {("brief", "apply"): 1}
    at(eng, REMINDER)
    assert sent(workdir) == {("brief", "apply"): 1, ("reminder", "apply"): 1}
    assert banner(workdir) is None  # nothing customer-facing before launch

    at(eng, START)
    assert latest_run(eng.store, "winter-sale").state == "live"  # type: ignore[union-attr]
    launched = {("brief", "apply"): 1, ("reminder", "apply"): 1, ("launch-staff", "apply"): 1,
                ("launch-notice", "apply"): 1, ("launch-autoreply", "apply"): 1, ("launch-status", "apply"): 1}
    assert sent(workdir) == launched
    shown = banner(workdir)
    assert shown is not None and "Winter Sale" in str(shown) and "winter/faq" in str(shown)
    notice = outbox_text(workdir, "launch-notice")
    assert "12 óra" in notice and "12 hours" in notice and "12 hodín" in notice and "12 godzin" in notice

    at(eng, END - timedelta(minutes=1))
    assert sent(workdir) == launched and banner(workdir) is not None

    at(eng, END)
    assert eng.store.open_situations() == []
    assert latest_run(eng.store, "winter-sale").state == "ended"  # type: ignore[union-attr]
    assert banner(workdir) is None
    assert sent(workdir) == {**launched, ("launch-notice", "undo"): 1, ("launch-autoreply", "undo"): 1,
                             ("summary", "apply"): 1}
    summary = outbox_text(workdir, "summary")
    assert "has ended" in summary and "launch-autoreply, launch-banner, launch-notice" in summary
    assert "brief → outbox" in summary and "launch-banner → website" in summary

    at(eng, END + timedelta(days=400))  # nothing recurs: nothing more ever goes out
    assert sent(workdir)[("summary", "apply")] == 1 and len(runs(eng.store, include_finished=True)) == 1


def test_cancel_before_launch_removes_the_launch(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)
    run = phases.cancel(eng, "winter-sale", by="marketing")
    tick(eng)
    assert run.state == "cancelled" and eng.store.open_situations() == []
    assert run.situation_id is not None
    states = {(r.step_id, r.phase): r.state for r in eng.store.steps_for(run.situation_id)}
    assert states[("launch-banner", "open")] == states[("launch-notice", "open")] == "cancelled"
    assert states[("reminder", "open")] == "cancelled"
    assert "CANCELLED" in outbox_text(workdir, "summary")
    at(eng, END + timedelta(hours=1))
    assert sent(workdir) == {("brief", "apply"): 1, ("summary", "apply"): 1}
    assert banner(workdir) is None
    with pytest.raises(InputError, match="already cancelled"):
        phases.cancel(eng, "winter-sale", by="marketing")


def test_cancel_before_the_briefing_sends_nothing(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    phases.cancel(eng, "winter-sale", by="marketing")
    at(eng, END + timedelta(hours=1))
    assert sent(workdir) == {} and eng.store.open_situations() == []


def test_a_restart_between_phases_keeps_the_schedule(engine: MakeEngine, workdir: Path, config_path: Path) -> None:
    first = engine()
    phases.register(first, write(workdir), by="marketing")
    at(first, BRIEF)
    first.store.close()

    second = engine(config_path, start=REMINDER - timedelta(hours=1))  # a new process, same SQLite file
    tick(second)
    assert sent(workdir) == {("brief", "apply"): 1}
    at(second, REMINDER)
    at(second, START)
    late = [r for r in second.store.steps_for(latest_run(second.store, "winter-sale").situation_id)  # type: ignore
            if r.late]
    assert late == []  # the launch ran on time, not as a catch-up
    assert sent(workdir)[("launch-status", "apply")] == 1 and sent(workdir)[("brief", "apply")] == 1
    second.store.close()

    third = engine(config_path, start=END)
    tick(third)
    tick(third)
    assert sent(workdir)[("summary", "apply")] == 1 and banner(workdir) is None


def test_a_recurring_campaign_plans_next_years_run(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    text = WINTER.replace("name: winter-sale", "name: christmas").replace("load: 2x", "load: 2x\nrecurrence: yearly")
    phases.register(eng, write(workdir, text), by="marketing")
    at(eng, BRIEF)
    at(eng, END)
    [first, second] = runs(eng.store, include_finished=True)
    assert (first.run, first.state) == (1, "ended")
    assert (second.run, second.state, second.version) == (2, "registered", first.version)
    assert second.starts_at == datetime(2027, 12, 1, 7, 0, tzinfo=UTC)  # same local time a year later
    assert second.opens_at == datetime(2027, 11, 28, 8, 0, tzinfo=UTC)  # 48h ahead is 08:00: at 09:00 the day before
    assert "next year" in outbox_text(workdir, "summary")

    at(eng, second.opens_at)
    run = get_run(eng.store, second.id)
    assert run is not None and run.state == "briefed" and run.situation_id is not None
    assert "1 December 2027" in outbox_text(workdir, "brief")  # the next run, with the month as a word
    at(eng, second.ends_at)
    assert [r.run for r in runs(eng.store)] == [3]


def test_recurrence_stops_after_until(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    text = WINTER.replace("load: 2x", "load: 2x\nrecurrence: {every: year, until: 2026}")
    phases.register(eng, write(workdir, text), by="marketing")
    at(eng, END)
    assert runs(eng.store) == []


def test_update_after_the_briefing_tells_staff_what_changed(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    path = write(workdir)
    phases.register(eng, path, by="marketing")
    at(eng, BRIEF)
    new_start = "start: 2026-12-01T10:00:00+01:00"
    changed = write(workdir, name="winter-v2.yaml", **{"start: 2026-12-01T08:00:00+01:00": new_start,
                                                      "discount: 15%": "discount: 20%",
                                                      "terms: 15% off every coat.": "terms: 20% off every coat."})
    result = phases.update(eng, "winter-sale", changed, by="marketing")
    assert result.staff_told and result.run.version == 2
    assert any(c.startswith("start: 2026-12-01T08:00:00+01:00 → 2026-12-01T10:00:00+01:00") for c in result.changes)
    assert "codes: WINTER15 changed (discount: 15% → 20%)" in result.changes
    tick(eng)
    note = outbox_text(workdir, "campaign-changed")
    assert "version 2" in note and "discount: 15% → 20%" in note and "terms:" in note
    # the snapshot of version 1 is kept as it was registered
    v1, v2 = versions(eng.store, "winter-sale")
    assert v1.snapshot["codes"][0]["discount"] == "15%" and v2.snapshot["codes"][0]["discount"] == "20%"
    assert v2.changes == result.changes
    # the launch moved with the start
    new_start_at = START + timedelta(hours=2)
    at(eng, new_start_at - timedelta(minutes=1))
    assert ("launch-status", "apply") not in sent(workdir)
    at(eng, new_start_at)
    assert sent(workdir)[("launch-status", "apply")] == 1
    assert "20%" not in outbox_text(workdir, "brief")  # the briefing that went out is not rewritten
    # updating with the same content changes nothing
    assert phases.update(eng, "winter-sale", changed, by="marketing").changes == []


def test_a_start_moved_closer_skips_the_reminder_whose_morning_is_gone(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)  # Saturday 09:00 in Budapest: briefed, the reminder planned for Monday morning
    # Marketing pulls the launch to 10:00 today: this morning's reminder moment was before the briefing.
    sooner = write(workdir, name="sooner.yaml", **{"start: 2026-12-01T08:00:00+01:00":
                                                   "start: 2026-11-29T10:00:00+01:00"})
    phases.update(eng, "winter-sale", sooner, by="marketing", force=True)
    run = latest_run(eng.store, "winter-sale")
    assert run is not None and run.situation_id is not None
    rows = {r.step_id: r for r in eng.store.steps_for(run.situation_id) if r.phase == "open"}
    assert rows["reminder"].state == "skipped"
    assert "no longer ahead" in (rows["reminder"].detail or "")
    launch = [r for r in rows.values() if r.step_id.startswith("launch")]
    assert launch and all(r.due_at == datetime(2026, 11, 29, 9, 0, tzinfo=UTC) for r in launch)
    at(eng, datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
    assert sent(workdir)[("reminder", "apply")] == 0
    assert sent(workdir)[("launch-status", "apply")] == 1


def test_update_before_the_briefing_tells_nobody(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    changed = write(workdir, name="v2.yaml", **{"discount: 15%": "discount: 25%"})
    result = phases.update(eng, "winter-sale", changed, by="marketing")
    assert result.changes and not result.staff_told
    at(eng, BRIEF)
    assert "25%" in outbox_text(workdir, "brief") and ("campaign-changed", "apply") not in sent(workdir)


def test_brief_now_is_the_scheduled_briefing(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    result = phases.brief_now(eng, "winter-sale", by="lead")
    tick(eng)
    assert result.sent_now and sent(workdir) == {("brief", "apply"): 1}
    again = phases.brief_now(eng, "winter-sale", by="lead")
    assert not again.sent_now and again.sent_at == NOW
    at(eng, BRIEF)
    assert sent(workdir) == {("brief", "apply"): 1}  # the schedule does not send it a second time
    phases.brief_now(eng, "winter-sale", by="lead", again=True)
    tick(eng)
    assert sent(workdir)[("brief-again", "apply")] == 1


def test_a_forced_late_campaign_is_briefed_at_once_without_reminder(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    path = write(workdir, **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-11-24T08:00:00+01:00"})
    with pytest.raises(InputError, match="under the minimum lead"):
        phases.register(eng, path, by="marketing")
    result = phases.register(eng, path, by="marketing", force=True)
    assert result.run.opens_at < NOW
    tick(eng)
    assert sent(workdir) == {("brief", "apply"): 1}
    sid = latest_run(eng.store, "winter-sale").situation_id  # type: ignore[union-attr]
    assert sid is not None and "reminder" not in {r.step_id for r in eng.store.steps_for(sid)}


@pytest.mark.parametrize(("start_local", "reminder_local"), [
    ("2026-12-01T14:00:00+01:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),   # 09:00 the same morning
    ("2026-12-01T11:00:00+01:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),   # exactly two hours before
    ("2026-12-01T10:30:00+01:00", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),  # too close: the day before
    ("2026-12-01T00:00:00+01:00", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),  # a midnight launch
])
def test_the_reminder_is_on_the_morning_before_launch(engine: MakeEngine, start_local: str,
                                                      reminder_local: datetime) -> None:
    eng = engine()
    start = datetime.fromisoformat(start_local)
    assert phases.reminder_time(eng, start, start - timedelta(days=2)) == reminder_local


def test_a_campaign_that_passed_unseen_is_not_run_late(engine: MakeEngine, workdir: Path) -> None:
    """No tick and no daemon for the whole campaign: nothing goes out afterwards, next year is still planned."""
    eng = engine()
    text = WINTER.replace("load: 2x", "load: 2x\nrecurrence: yearly")
    phases.register(eng, write(workdir, text), by="marketing")
    at(eng, END + timedelta(hours=1))
    assert sent(workdir) == {} and eng.store.open_situations() == []
    assert [(r.run, r.state) for r in runs(eng.store, include_finished=True)] == [(1, "ended"), (2, "registered")]


def test_update_while_live_reissues_the_notices(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)
    at(eng, START)
    moved = write(workdir, name="moved.yaml",
                  **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-12-01T09:00:00+01:00"})
    with pytest.raises(InputError, match="start cannot change: the campaign is live"):
        phases.update(eng, "winter-sale", moved, by="marketing")
    longer = write(workdir, name="longer.yaml", **{"end: 2026-12-03T20:00:00+01:00": "end: 2026-12-04T20:00:00+01:00",
                                                    "email: 12h": "email: 1d"})
    result = phases.update(eng, "winter-sale", longer, by="marketing")
    tick(eng)
    assert result.staff_told and any(c.startswith("end:") for c in result.changes)
    assert sent(workdir)[("launch-notice", "apply")] == 2  # re-issued with the new wait
    assert "about 1 day" in outbox_text(workdir, "launch-notice")  # only the re-issued notice says so
    at(eng, END)
    assert latest_run(eng.store, "winter-sale").state == "live"  # type: ignore[union-attr]
    at(eng, END + timedelta(days=1))
    assert latest_run(eng.store, "winter-sale").state == "ended"  # type: ignore[union-attr]
    assert banner(workdir) is None


def test_the_people_briefed_hear_every_later_staff_message(configure: Configure, engine: MakeEngine,
                                                           workdir: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["leads_box"] = {"type": "outbox", "directory": "leads"}
        cfg["routes"]["leads"] = ["leads_box"]

    configure(edit)
    eng = engine()
    phases.register(eng, write(workdir, **{"load: 2x": "load: 2x\nbrief:\n  to: [staff, leads]"}), by="marketing")
    at(eng, BRIEF)
    at(eng, REMINDER)
    changed = write(workdir, name="v2.yaml", **{"load: 2x": "load: 2x\nbrief:\n  to: [staff, leads]",
                                               "discount: 15%": "discount: 20%"})
    phases.update(eng, "winter-sale", changed, by="marketing")
    at(eng, START)
    at(eng, END)

    def steps_in(folder: str) -> Counter[str]:
        names = [p.name for p in (workdir / folder).iterdir() if "-apply-" in p.name]
        return Counter(n.split("-s1-", 1)[1].rsplit("-apply-", 1)[0] for n in names)

    staff, leads = steps_in("outbox"), steps_in("leads")
    expected = {"brief", "reminder", "campaign-changed", "launch-staff", "summary"}
    assert expected <= set(leads), leads
    assert all(leads[s] == staff[s] == 1 for s in expected), (staff, leads)
    assert not {"launch-notice", "launch-autoreply", "launch-status"} & set(leads), "customer texts stay out"
