"""continuity.triggers.health_changed: what a channel's health change does to its situations, through the
engine alone (the daemon only logs what it says and runs the steps)."""

from __future__ import annotations

from datetime import timedelta

from continuity import triggers
from continuity.config.models import Health
from continuity.engine import Engine
from continuity.maintenance import add_window
from tests.conftest import NOW, MakeEngine


def _spec(eng: Engine) -> Health:
    """The phone channel's health settings (the shipped example gives it none: the defaults, as a config
    that adds probes to it would have)."""
    return eng.loaded.config.channels["phone"].health or Health.model_construct(probes=[])


def _kinds(said: list[triggers.Said]) -> list[str]:
    return [s.kind for s in said]


def test_down_opens_one_outage_and_recovery_closes_the_daemons_own(engine: MakeEngine) -> None:
    eng = engine()
    spec = _spec(eng)
    said = triggers.health_changed(eng, "phone", "went_down", "SIP OPTIONS timed out", spec)
    assert _kinds(said)[:2] == ["channel.down", "outage.opened"]
    [sit] = eng.store.open_situations()
    assert (sit.channel, sit.source, sit.opened_by) == ("phone", "daemon", "daemon")
    assert "SIP OPTIONS timed out" in sit.reason
    again = triggers.health_changed(eng, "phone", "went_down", "still", spec)
    assert "outage.opened" not in _kinds(again) and len(eng.store.open_situations()) == 1

    back = triggers.health_changed(eng, "phone", "recovered", "", spec)
    assert _kinds(back) == ["channel.up", "outage.closed"]
    assert eng.store.open_situations() == []


def test_recovery_keeps_an_outage_a_person_declared_and_tells_staff(engine: MakeEngine) -> None:
    eng = engine()
    spec = _spec(eng)
    opened = eng.open("phone", reason="trunk down at the provider", by="anna")
    said = triggers.health_changed(eng, "phone", "recovered", "", spec)
    assert _kinds(said) == ["channel.up", "outage.kept"] and triggers.ACTED & set(_kinds(said))
    assert [s.id for s in eng.store.open_situations()] == [opened.situation.id]
    notes = [r for r in eng.store.steps_for(opened.situation.id) if r.step_id == "channel-healthy"]
    assert notes and all(r.state == "planned" for r in notes)


def test_down_inside_a_maintenance_window_opens_nothing(engine: MakeEngine) -> None:
    eng = engine()
    spec = _spec(eng)
    add_window(eng, "phone", start=NOW - timedelta(minutes=5), end=NOW + timedelta(hours=1),
               reason="PBX firmware", notice=timedelta(0), by="tester")
    said = triggers.health_changed(eng, "phone", "went_down", "no answer", spec)
    assert _kinds(said) == ["channel.down", "maintenance.quiet"]
    assert [s.kind for s in eng.store.open_situations()] == []


def test_flapping_tells_staff_of_an_open_outage_only(engine: MakeEngine) -> None:
    eng = engine()
    spec = _spec(eng)
    assert _kinds(triggers.health_changed(eng, "phone", "flapping", "", spec)) == ["channel.flapping"]
    eng.open("phone", reason="trunk down", by="anna")
    assert "staff.told" in _kinds(triggers.health_changed(eng, "phone", "flapping", "", spec))
