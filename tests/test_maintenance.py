"""Maintenance windows on a manual clock: announced ahead, "in progress" at the start, switched off at the end;
and through the CLI, bad windows are refused without touching the store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from continuity.errors import InputError
from continuity.maintenance import active_window, add_window, cancel_window
from tests.conftest import NOW, MakeEngine, RunCli, tick

BANNER = Path("site/banner/continuity-banner.json")


def banner_text(workdir: Path) -> str:
    doc = json.loads((workdir / BANNER).read_text(encoding="utf-8"))
    return json.dumps(doc["banners"], ensure_ascii=False)


def test_a_window_is_announced_started_and_ended_on_time(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    start, end = NOW + timedelta(days=1), NOW + timedelta(days=1, hours=2)
    window = add_window(eng, "phone", start=start, end=end, reason="PBX firmware upgrade",
                        notice=timedelta(hours=12), by="tester")
    assert window.state == "scheduled"

    tick(eng)
    assert eng.store.open_situations() == [] and not (workdir / BANNER).exists()

    eng.clock.advance(timedelta(hours=12))  # notice time
    tick(eng)
    [sit] = eng.store.open_situations()
    assert (sit.kind, sit.channel, sit.source, sit.eta) == ("maintenance", "phone", "maintenance", end)
    announced = banner_text(workdir)
    assert eng.store.get_maintenance(window.id).state == "announced"  # type: ignore[union-attr]
    assert active_window(eng, "phone") is None  # not yet inside the window: failures still count

    eng.clock.advance(timedelta(hours=12))  # the window starts
    results = tick(eng)
    assert {(r.row.step_id, r.row.phase) for r in results} >= {("customer-notice", "update"),
                                                               ("website-banner", "update")}
    assert banner_text(workdir) != announced  # upcoming → in progress
    assert active_window(eng, "phone") is not None

    eng.clock.advance(timedelta(hours=2))
    tick(eng)
    assert eng.store.open_situations() == []
    assert not (workdir / BANNER).exists()
    assert eng.store.get_maintenance(window.id).state == "done"  # type: ignore[union-attr]
    assert any("staff-done" in p.name for p in (workdir / "outbox").iterdir())
    # the outage of the same channel is a different thing and was never opened
    assert eng.store.find_open("outage", "phone") is None


def test_cancelling_an_announced_window_switches_its_notices_off(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    window = add_window(eng, "email", start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2),
                        reason="mail server move", notice=timedelta(hours=1), by="tester")
    tick(eng)
    assert (workdir / BANNER).exists()
    cancel_window(eng, window.id, "tester")
    tick(eng)
    assert not (workdir / BANNER).exists()
    assert eng.store.get_maintenance(window.id).state == "cancelled"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="already cancelled"):
        cancel_window(eng, window.id, "tester")


@pytest.mark.parametrize(("start", "end", "message"), [
    (timedelta(hours=2), timedelta(hours=1), "after --start"),
    (timedelta(hours=-3), timedelta(hours=-1), "already over"),
])
def test_bad_windows_are_refused(engine: MakeEngine, start: timedelta, end: timedelta, message: str) -> None:
    eng = engine()
    with pytest.raises(InputError, match=message):
        add_window(eng, "phone", start=NOW + start, end=NOW + end, reason="x", notice=timedelta(0), by="t")
    assert eng.store.maintenance(include_ended=True) == []


def test_overlapping_windows_of_a_channel_are_refused(engine: MakeEngine) -> None:
    eng = engine()
    add_window(eng, "phone", start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=3), reason="a",
               notice=timedelta(0), by="t")
    with pytest.raises(InputError, match="overlaps maintenance #1"):
        add_window(eng, "phone", start=NOW + timedelta(hours=2), end=NOW + timedelta(hours=4), reason="b",
                   notice=timedelta(0), by="t")
    add_window(eng, "email", start=NOW + timedelta(hours=2), end=NOW + timedelta(hours=4), reason="c",
               notice=timedelta(0), by="t")


def test_maintenance_cli(cli: RunCli, workdir: Path) -> None:
    now = NOW.isoformat()
    added = cli("maintenance", "add", "phone", "--start", "2h", "--end", "4h", "--reason", "PBX upgrade",
                "--notice", "1h", "--json", now=now)
    assert added.returncode == 0, added.stderr
    window = json.loads(added.stdout)["window"]
    assert window["state"] == "scheduled" and window["notice_seconds"] == 3600
    listed = json.loads(cli("maintenance", "list", "--json", now=now).stdout)
    assert [w["id"] for w in listed] == [window["id"]]
    # an hour later `tick` announces it
    cli("tick", now=(NOW + timedelta(hours=1)).isoformat())
    status = json.loads(cli("status", "--json", now=(NOW + timedelta(hours=1)).isoformat()).stdout)
    assert [(s["kind"], s["channel"]) for s in status["open"]] == [("maintenance", "phone")]
    bad = cli("maintenance", "add", "phone", "--start", "banana", "--end", "2h", "--reason", "x", now=now)
    assert bad.returncode == 2 and "banana" in bad.stderr
    assert cli("maintenance", "cancel", "99", now=now).returncode == 2
    assert cli("maintenance", "cancel", str(window["id"]), now=now).returncode == 0


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_a_bad_time_names_the_option_that_was_typed(cli: RunCli, option: str) -> None:
    times = {"--start": "tomorrow 9", "--end": "2h"} if option == "--start" else {"--start": "1h", "--end": "soon"}
    out = cli("maintenance", "add", "phone", "--start", times["--start"], "--end", times["--end"],
              "--reason", "PBX firmware", now=NOW)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{option} {times[option]!r}: expected" in out.stderr
    assert "--eta" not in out.stderr
