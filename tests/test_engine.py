"""The engine on a manual clock: a phone outage from opening to closing, retries against a real HTTP
server, the ledger's state table, and drills that must not touch the real store or sinks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.drill import DrillLine, run_drill
from continuity.engine import Engine
from continuity.runner import StepResult
from continuity.store.records import FINAL, STATES, TRANSITIONS, StepRecord, can_move
from continuity.views import status_view
from tests.conftest import NOW, STORE_NAME, Configure, HttpServer, MakeEngine, tick, tree

ETA = NOW + timedelta(hours=2)
LOCALES = ["hu", "en", "sk", "pl"]  # the shipped example's organisation.locales


def rows(eng: Engine, situation_id: int = 1) -> list[StepRecord]:
    return eng.store.steps_for(situation_id)


def by_step(eng: Engine, step_id: str, phase: str | None = None, situation_id: int = 1) -> list[StepRecord]:
    return [r for r in rows(eng, situation_id) if r.step_id == step_id and (phase is None or r.phase == phase)]


def ran(results: list[StepResult]) -> set[tuple[str, str, str]]:
    """(step, phase, state) of what a run_due call ran."""
    return {(r.row.step_id, r.row.phase, r.state) for r in results}


def advance_and_run(eng: Engine, delta: timedelta) -> list[StepResult]:
    assert isinstance(eng.clock, ManualClock)
    eng.clock.advance(delta)
    return tick(eng)


def banner_doc(workdir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((workdir / "site/banner/continuity-banner.json").read_text(encoding="utf-8"))
    return doc


def _reachable(src: str, dst: str) -> bool:
    """Can the ledger get from src to dst through allowed moves (a run may pass through several)?"""
    seen, todo = {src}, [src]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt == dst:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


class LedgerWatch:
    """Remembers every row's state between calls and fails on a change the state table forbids."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.states: dict[int, str] = {}

    def check(self) -> None:
        for row in rows(self.eng):
            before = self.states.get(row.id)
            if before is not None and before != row.state:
                assert _reachable(before, row.state), f"row {row.id} {row.step_id}: {before} -> {row.state}"
            self.states[row.id] = row.state


# A phone outage, minute by minute ---------------------------------------------------------------------------


def test_opening_runs_the_immediate_steps_and_plans_the_rest(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    opened = eng.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="tester")
    assert opened.created and opened.situation.eta == ETA

    results = tick(eng)

    assert ran(results) == {("staff-runbook", "open", "done"), ("customer-notice", "open", "done"),
                            ("email-autoreply", "open", "done")}
    later = {r.step_id: r.due_at for r in rows(eng) if r.state == "planned"}
    assert later == {
        "website-banner": NOW + timedelta(minutes=30),
        "social-post": NOW + timedelta(minutes=30),
        "staff-reminder": NOW + timedelta(minutes=60),
    }
    # Customers hear nothing on the website before the 30-minute mark.
    assert not (workdir / "site/banner").exists()
    assert len(tree(workdir / "outbox")) == 3


def test_banner_and_post_at_30m_then_hourly_reminders(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="tester")
    tick(eng)

    assert advance_and_run(eng, timedelta(minutes=29)) == []
    assert ran(advance_and_run(eng, timedelta(minutes=1))) == {
        ("website-banner", "open", "done"), ("social-post", "open", "done")}

    doc = banner_doc(workdir)
    assert doc["active"] is True
    entry = doc["banners"]["1"]
    assert list(entry["locales"]) == LOCALES
    for locale in LOCALES:
        assert entry["locales"][locale]["title"].strip() and entry["locales"][locale]["body"].strip()
    assert "help@shop.example.test" in entry["locales"]["en"]["body"]
    assert (workdir / "site/banner/continuity-banner.html").is_file()

    first = advance_and_run(eng, timedelta(minutes=30))
    assert [(r.row.step_id, r.row.occurrence, r.state) for r in first] == [("staff-reminder", 1, "done")]
    second = advance_and_run(eng, timedelta(minutes=60))
    assert [(r.row.step_id, r.row.occurrence, r.state) for r in second] == [("staff-reminder", 2, "done")]
    assert [r.due_at for r in by_step(eng, "staff-reminder") if r.state == "planned"] == [NOW + timedelta(hours=3)]


def test_a_long_gap_without_ticks_sends_one_reminder_not_a_burst(engine: MakeEngine) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="tester")
    tick(eng)
    advance_and_run(eng, timedelta(minutes=60))  # banner, post and the first reminder
    assert [r.state for r in by_step(eng, "staff-reminder")] == ["done", "planned"]

    # Nobody ticked for five hours (the cron host was down).
    results = advance_and_run(eng, timedelta(hours=5))

    reminders = [r for r in results if r.row.step_id == "staff-reminder"]
    assert len(reminders) == 1 and reminders[0].state == "done"
    assert reminders[0].row.late, "a reminder sent hours after its time is flagged late"
    planned = [r for r in by_step(eng, "staff-reminder") if r.state == "planned"]
    assert len(planned) == 1
    assert eng.clock.now() < planned[0].due_at <= eng.clock.now() + timedelta(hours=1)
    assert advance_and_run(eng, timedelta(minutes=1)) == []


def test_opening_again_with_the_same_eta_tells_nobody_again(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    advance_and_run(eng, timedelta(minutes=40))
    before = [(r.id, r.state) for r in rows(eng)]
    outbox_before = tree(workdir / "outbox")

    again = eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="someone else")

    assert not again.created and not again.eta_changed and not again.reason_changed
    assert again.situation.id == 1
    assert tick(eng) == []
    assert [(r.id, r.state) for r in rows(eng)] == before
    assert tree(workdir / "outbox") == outbox_before
    assert len(eng.store.open_situations()) == 1


def test_the_same_relative_eta_typed_again_minutes_later_is_not_news(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="anna")
    tick(eng)
    outbox_before = tree(workdir / "outbox")

    eng.clock.advance(timedelta(minutes=3))  # a colleague declares the same outage with the same "--eta 2h"
    again = eng.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="bela")

    assert not again.eta_changed
    assert again.situation.eta == eng.clock.now() - timedelta(minutes=3) + timedelta(hours=2)
    assert tick(eng) == []
    assert tree(workdir / "outbox") == outbox_before


def test_a_changed_eta_runs_on_update_and_refreshes_banner_and_notice(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    advance_and_run(eng, timedelta(minutes=30))
    old_banner = banner_doc(workdir)["banners"]["1"]

    eng.clock.advance(timedelta(minutes=5))
    updated = eng.open("phone", reason="SIP trunk down at the provider", eta=ETA + timedelta(hours=1), by="tester")
    assert updated.eta_changed and updated.situation.revision == 1
    results = tick(eng)

    assert ran(results) == {
        ("staff-eta-update", "update", "done"),
        ("social-update", "update", "done"),  # social-post went out at 30m
        ("customer-notice", "update", "done"),
        ("email-autoreply", "update", "done"),
        ("website-banner", "update", "done"),
    }
    new_banner = banner_doc(workdir)["banners"]["1"]
    assert new_banner["key"] != old_banner["key"]
    assert new_banner["locales"]["en"]["body"] != old_banner["locales"]["en"]["body"]
    assert "14:00" in new_banner["locales"]["en"]["body"]  # 14:00 Budapest time = ETA 13:00 UTC (24-hour, en-GB)


def test_eta_change_before_the_post_stays_quiet_on_social_media(engine: MakeEngine) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    eng.clock.advance(timedelta(minutes=10))
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA + timedelta(hours=1), by="tester")

    results = tick(eng)

    assert ran(results) == {("staff-eta-update", "update", "done"), ("customer-notice", "update", "done"),
                            ("email-autoreply", "update", "done")}
    assert by_step(eng, "social-update") == []


def test_closing_switches_everything_off_and_announces_it(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    watch = LedgerWatch(eng)
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    watch.check()
    for delta in (timedelta(0), timedelta(minutes=30), timedelta(minutes=30)):
        advance_and_run(eng, delta)
        watch.check()
    eng.clock.advance(timedelta(minutes=5))
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA + timedelta(hours=1), by="tester")
    tick(eng)
    watch.check()
    assert (workdir / "site/banner/continuity-banner.json").is_file()

    eng.clock.advance(timedelta(minutes=10))
    closed = eng.close("phone", by="tester", note="provider fixed the trunk")
    watch.check()
    results = tick(eng)
    watch.check()

    assert closed.closed and closed.situation is not None and closed.situation.state == "closed"
    assert ran(results) == {
        ("customer-notice", "undo", "done"),
        ("email-autoreply", "undo", "done"),
        ("website-banner", "undo", "done"),
        ("staff-resolved", "close", "done"),
        ("social-resolved", "close", "done"),
        ("customer-restored", "close", "done"),
    }
    assert not (workdir / "site/banner/continuity-banner.json").exists()
    assert not (workdir / "site/banner/continuity-banner.html").exists()
    # The next reminder never goes out; the banner and notice (first and refreshed) are all switched off.
    assert [r.state for r in by_step(eng, "staff-reminder")] == ["done", "cancelled"]
    assert {r.state for r in rows(eng) if r.reversible} == {"undone"}
    assert not any(r.state in ("planned", "running", "failed") for r in rows(eng))
    assert status_view(eng.store, eng.clock.now())["open"] == []
    assert advance_and_run(eng, timedelta(hours=3)) == []
    # Closing again is a no-op.
    assert not eng.close("phone", by="tester").closed


def test_closing_before_30m_skips_the_social_resolved_post(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    eng.clock.advance(timedelta(minutes=20))

    eng.close("phone", by="tester")
    results = tick(eng)

    assert ran(results) == {("customer-notice", "undo", "done"), ("email-autoreply", "undo", "done"),
                            ("staff-resolved", "close", "done"), ("customer-restored", "close", "done")}
    assert by_step(eng, "social-resolved") == []
    assert [r.state for r in by_step(eng, "website-banner")] == ["cancelled"]
    assert [r.state for r in by_step(eng, "social-post")] == ["cancelled"]
    assert any(e.kind == "skipped" and "social-resolved" in e.message for e in eng.store.events_for(1))
    assert not (workdir / "site/banner").exists()


def test_unknown_channel_and_empty_reason_are_input_errors(engine: MakeEngine, workdir: Path) -> None:
    from continuity.errors import InputError

    eng = engine()
    with pytest.raises(InputError, match="fax"):
        eng.open("fax", reason="x", by="tester")
    with pytest.raises(InputError, match="reason"):
        eng.open("phone", reason="   ", by="tester")
    assert eng.store.open_situations() == []


# The ledger's state table ----------------------------------------------------------------------------------


def test_state_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for src, targets in TRANSITIONS.items():
        assert targets <= set(STATES), src
        assert src not in targets, f"{src} -> {src} is not a move"
    assert set(STATES) >= FINAL


@pytest.mark.parametrize(("src", "dst"), [
    ("planned", "running"), ("planned", "cancelled"),
    ("running", "done"), ("running", "failed"), ("running", "uncertain"), ("running", "planned"),
    ("failed", "running"), ("failed", "cancelled"),
    ("done", "undone"),
    ("uncertain", "done"), ("uncertain", "failed"), ("uncertain", "undone"),
])
def test_allowed_moves(src: str, dst: str) -> None:
    assert can_move(src, dst)


@pytest.mark.parametrize(("src", "dst"), [
    ("planned", "done"),      # nothing is done without being claimed first
    ("planned", "failed"),
    ("done", "running"),      # a sent message is never sent again
    ("done", "planned"),
    ("failed", "done"),
    ("cancelled", "running"),
    ("cancelled", "planned"),
    ("undone", "done"),
    ("skipped", "running"),
    ("running", "cancelled"),  # a step in flight is not cancelled under the sender's feet
    ("nonsense", "done"),
    ("planned", "nonsense"),
])
def test_forbidden_moves(src: str, dst: str) -> None:
    assert not can_move(src, dst)


@pytest.mark.parametrize("state", ["cancelled", "undone", "skipped"])
def test_terminal_states_have_no_way_out(state: str) -> None:
    assert state in FINAL
    assert not any(can_move(state, other) for other in STATES)


# Retries against a real HTTP server ---------------------------------------------------------------------


@pytest.fixture
def hooked(configure: Configure, http_server: HttpServer) -> HttpServer:
    """Staff messages go to a webhook (the loopback server) and the outbox; retries never sleep inline."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": http_server.url, "timeout": 5}
        cfg["routes"]["staff"] = ["hook", "outbox"]
        cfg["retry"] = {"attempts": 4, "first_delay": "1s", "max_delay": "1m", "inline_budget": "0s"}

    configure(edit)
    return http_server


def hook_row(eng: Engine, step_id: str = "staff-runbook") -> StepRecord:
    (row,) = [r for r in by_step(eng, step_id) if r.sink == "hook"]
    return row


def test_5xx_is_retried_with_backoff_until_it_succeeds(engine: MakeEngine, hooked: HttpServer) -> None:
    hooked.script(500, 503, then=200)
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")

    tick(eng)
    row = hook_row(eng)
    assert row.state == "failed" and row.attempts == 1
    assert row.next_retry_at == NOW + timedelta(seconds=1)
    assert row.last_error is not None and "500" in row.last_error
    assert len(hooked.requests) == 1
    assert tick(eng) == []  # not due yet

    advance_and_run(eng, timedelta(seconds=1))
    row = hook_row(eng)
    assert (row.state, row.attempts) == ("failed", 2)
    assert row.next_retry_at == NOW + timedelta(seconds=3)  # doubled: 1s, then 2s
    assert advance_and_run(eng, timedelta(seconds=1)) == []
    assert len(hooked.requests) == 2

    results = advance_and_run(eng, timedelta(seconds=1))
    assert [(r.row.step_id, r.row.sink, r.state) for r in results] == [("staff-runbook", "hook", "done")]
    row = hook_row(eng)
    assert (row.state, row.attempts, row.next_retry_at) == ("done", 3, None)
    # Every attempt carried the same idempotency key, so the receiver can drop duplicates.
    assert len({r.headers["Idempotency-Key"] for r in hooked.requests}) == 1
    assert status_view(eng.store, eng.clock.now())["open"][0]["attention"] == []


def test_retries_stop_after_the_configured_attempts(engine: MakeEngine, hooked: HttpServer) -> None:
    hooked.script(then=502)
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    for _ in range(5):
        advance_and_run(eng, timedelta(seconds=30))

    row = hook_row(eng)
    assert (row.state, row.attempts, row.next_retry_at) == ("failed", 4, None)
    assert row.finished_at is not None
    assert len(hooked.requests) == 4
    attention = status_view(eng.store, eng.clock.now())["open"][0]["attention"]
    assert [(a["step"], a["sink"], a["state"]) for a in attention] == [("staff-runbook", "hook", "failed")]
    assert any(e.kind == "failed" and "staff-runbook" in e.message for e in eng.store.events_for(1))


def test_4xx_fails_at_once_without_retries(engine: MakeEngine, hooked: HttpServer) -> None:
    hooked.script(then=400)
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)

    row = hook_row(eng)
    assert (row.state, row.attempts, row.next_retry_at) == ("failed", 1, None)
    assert row.last_error is not None and "400" in row.last_error
    advance_and_run(eng, timedelta(minutes=10))
    assert len(hooked.requests) == 1


def test_a_failing_sink_does_not_hold_up_the_others(engine: MakeEngine, hooked: HttpServer, workdir: Path) -> None:
    hooked.script(then=500)
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")

    results = tick(eng)

    states = {(r.row.step_id, r.row.sink): r.state for r in results}
    assert states == {
        ("staff-runbook", "hook"): "failed",
        ("staff-runbook", "outbox"): "done",
        ("customer-notice", "outbox"): "done",
        ("email-autoreply", "outbox"): "done",
    }
    assert len(tree(workdir / "outbox")) == 3
    # Later steps still run on time while the webhook keeps failing.
    later = advance_and_run(eng, timedelta(minutes=30))
    assert ("website-banner", "open", "done") in ran(later)
    assert (workdir / "site/banner/continuity-banner.json").is_file()


def test_closing_cancels_a_retry_that_is_still_waiting(engine: MakeEngine, hooked: HttpServer) -> None:
    hooked.script(then=500)
    eng = engine()
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    tick(eng)
    assert hook_row(eng).awaiting_retry

    eng.close("phone", by="tester")
    hooked.script(then=200)
    tick(eng)
    advance_and_run(eng, timedelta(minutes=5))

    assert hook_row(eng).state == "cancelled"
    runbook_posts = [r for r in hooked.requests if json.loads(r.body)["step_id"] == "staff-runbook"]
    assert len(runbook_posts) == 1


# Drills -------------------------------------------------------------------------------------------------------


def test_a_drill_writes_only_into_its_own_folder(configure: Configure, http_server: HttpServer,
                                                 workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": http_server.url}
        cfg["routes"]["staff"] = ["hook", "outbox"]

    loaded = load_config(configure(edit))
    private = tmp_path_factory.mktemp("drill")
    before = tree(workdir)
    lines: list[DrillLine] = []

    result = run_drill(loaded, "phone", private, start=NOW, speed=0, duration=None,
                       reason="Drill: phone outage", eta=timedelta(hours=2), playbook=None, emit=lines.append)

    assert tree(workdir) == before, "a drill must not create the store, the outbox or the banner"
    assert not (workdir / STORE_NAME).exists()
    assert http_server.requests == [], "a drill must not reach a real sink"
    assert result.lines == lines and all(line.state == "done" for line in lines)
    steps = [(line.step, line.action) for line in lines]
    for expected in [("staff-runbook", "notify"), ("customer-notice", "notice"), ("website-banner", "banner"),
                     ("social-post", "post"), ("staff-reminder", "notify"), ("website-banner", "switch off"),
                     ("staff-resolved", "notify"), ("social-resolved", "post")]:
        assert expected in steps
    assert [line.offset for line in lines if line.step == "website-banner"][0] == timedelta(minutes=30)
    files = tree(private)
    assert "drill.db" in files
    assert any(f.startswith("outbox/hook/") for f in files)
    assert any(f.startswith("outbox/website/") for f in files)
    assert {Path(f).parts[0] for f in files} <= {"drill.db", "drill.db-wal", "drill.db-shm", "outbox"}


def test_templates_cannot_mutate_what_they_are_given(tmp_path: Path) -> None:
    """Marketing's FAQ texts and users' templates render in the immutable sandbox: no list.append, no dict
    update, no attribute tricks."""
    from jinja2.exceptions import SecurityError

    from continuity.templating import make_environment

    env = make_environment([tmp_path])
    items = [1]
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(2) }}").render(items=items)
    with pytest.raises(SecurityError):
        env.from_string("{{ ''.__class__.__mro__ }}").render()
    assert items == [1]
