"""The daemon's reactions to a channel's health, in process on a manual clock, against a real local
Statuspage-format server: degraded opens the channel's degraded playbook and its recovery closes it; going down
hands over to the outage."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.errors import InputError
from continuity.store import open_store
from tests.conftest import NOW, Configure
from tests.probes.conftest import DATA, HttpPeer


def summary(status: str) -> str:
    doc = json.loads((DATA / "summary.json").read_text(encoding="utf-8"))
    for comp in doc["components"]:
        if comp["name"] == "Voice Calls":
            comp["status"] = status
    return json.dumps(doc)


@pytest.fixture
def daemon(configure: Configure, http_peer: HttpPeer, workdir: Path) -> Iterator[Daemon]:
    url = http_peer.reply("/api/v2/summary.json", body=summary("operational"), content_type="application/json")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["phone"]["health"] = {
            "every": "1s", "fail_after": 2, "recover_after": 2, "degraded_playbook": "degraded-generic",
            "probes": [{"type": "statuspage", "url": url, "component": "Voice Calls", "timeout": "2s"}],
        }

    loaded = load_config(configure(edit))
    store = open_store(loaded.store_url, loaded.base_dir)
    d = Daemon(loaded, store, ManualClock(NOW), logging.getLogger("test-daemon"))
    yield d
    store.close()


def set_status(peer: HttpPeer, status: str) -> None:
    peer.reply("/api/v2/summary.json", body=summary(status), content_type="application/json")


def cycles(d: Daemon, n: int) -> None:
    async def go() -> None:
        for _ in range(n):
            await d.cycle("phone")
            assert isinstance(d.clock, ManualClock)
            d.clock.advance(timedelta(seconds=1))
        await d.probes.aclose()

    asyncio.run(go())


def kinds_open(d: Daemon) -> list[str]:
    return sorted(s.kind for s in d.store.open_situations() if s.channel == "phone")


def test_degraded_opens_and_closes_its_own_situation(daemon: Daemon, http_peer: HttpPeer, workdir: Path) -> None:
    cycles(daemon, 2)
    assert kinds_open(daemon) == []
    set_status(http_peer, "degraded_performance")
    cycles(daemon, 1)
    [sit] = daemon.store.open_situations()
    assert (sit.kind, sit.playbook, sit.source) == ("degraded", "degraded-generic", "daemon")
    assert "degraded" in sit.reason
    staff = [p.name for p in (workdir / "outbox").iterdir() if "staff-degraded" in p.name]
    assert staff, "staff are warned at once"
    set_status(http_peer, "operational")
    cycles(daemon, 1)
    assert kinds_open(daemon) == []
    assert any("staff-degraded-over" in p.name for p in (workdir / "outbox").iterdir())


def test_going_down_hands_over_from_degraded_to_the_outage(daemon: Daemon, http_peer: HttpPeer) -> None:
    set_status(http_peer, "degraded_performance")
    cycles(daemon, 1)
    assert kinds_open(daemon) == ["degraded"]
    set_status(http_peer, "major_outage")
    cycles(daemon, 2)
    assert kinds_open(daemon) == ["outage"]


def test_a_degraded_playbook_of_another_kind_is_refused(configure: Configure) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["phone"]["health"] = {"degraded_playbook": "outage-email",
                                              "probes": [{"type": "tcp", "host": "127.0.0.1", "port": 9}]}

    path = configure(edit)
    with pytest.raises(InputError, match=r"continuity.yaml:\d+ channels.phone.health.degraded_playbook: .*kind"):
        load_config(path)


def outbox_names(workdir: Path, step: str) -> list[str]:
    folder = workdir / "outbox"
    return sorted(p.name for p in folder.iterdir() if f"-{step}-" in p.name) if folder.exists() else []


def run_steps(d: Daemon) -> None:
    asyncio.run(d.run_steps())


def test_failures_inside_an_announced_window_open_no_outage_and_one_opens_if_still_down_at_its_end(
        daemon: Daemon, http_peer: HttpPeer) -> None:
    from continuity.maintenance import add_window

    add_window(daemon.engine, "phone", start=NOW + timedelta(seconds=10), end=NOW + timedelta(seconds=30),
               reason="PBX firmware upgrade", notice=timedelta(seconds=5), by="anna")
    assert isinstance(daemon.clock, ManualClock)
    daemon.clock.set(NOW + timedelta(seconds=5))
    run_steps(daemon)
    assert kinds_open(daemon) == ["maintenance"]  # announced
    # The window starts; the failures come before any job marks it active.
    daemon.clock.set(NOW + timedelta(seconds=10))
    set_status(http_peer, "major_outage")
    cycles(daemon, 3)
    assert kinds_open(daemon) == ["maintenance"], "no outage inside the window"
    assert daemon.health["phone"].is_down
    # Still down when it ends: now it is a real outage.
    daemon.clock.set(NOW + timedelta(seconds=30))
    run_steps(daemon)
    [sit] = daemon.store.open_situations()
    assert (sit.kind, sit.source) == ("outage", "daemon")
    assert sit.reason.startswith("still down after maintenance #1")


def test_an_outage_opened_by_hand_stays_open_and_staff_hear_the_channel_looks_healthy(
        daemon: Daemon, http_peer: HttpPeer, workdir: Path) -> None:
    daemon.engine.open("phone", reason="provider called: trunk maintenance", by="anna")
    run_steps(daemon)
    set_status(http_peer, "major_outage")
    cycles(daemon, 2)
    set_status(http_peer, "operational")
    cycles(daemon, 2)
    [sit] = daemon.store.open_situations()
    assert (sit.kind, sit.opened_by) == ("outage", "anna"), "a person's outage is theirs to close"
    [note] = outbox_names(workdir, "channel-healthy")
    assert "apply" in note


def test_close_manual_lets_the_daemon_close_a_hand_opened_outage(configure: Configure, http_peer: HttpPeer) -> None:
    url = http_peer.reply("/api/v2/summary.json", body=summary("major_outage"), content_type="application/json")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["phone"]["health"] = {
            "every": "1s", "fail_after": 1, "recover_after": 1, "close_manual": True,
            "probes": [{"type": "statuspage", "url": url, "component": "Voice Calls", "timeout": "2s"}]}

    loaded = load_config(configure(edit))
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        d = Daemon(loaded, store, ManualClock(NOW), logging.getLogger("test-daemon"))
        d.engine.open("phone", reason="provider called", by="anna")
        cycles(d, 1)
        set_status(http_peer, "operational")
        cycles(d, 1)
        assert store.open_situations() == []
        closed = store.get_situation(1)
        assert closed is not None
        assert closed.closed_by == "daemon"
    finally:
        store.close()


def test_a_flapping_channel_is_held_down_and_staff_are_told(configure: Configure, http_peer: HttpPeer,
                                                            workdir: Path) -> None:
    url = http_peer.reply("/api/v2/summary.json", body=summary("operational"), content_type="application/json")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["phone"]["health"] = {
            "every": "1s", "fail_after": 1, "recover_after": 1, "flapping": {"changes": 4, "window": "1m"},
            "probes": [{"type": "statuspage", "url": url, "component": "Voice Calls", "timeout": "2s"}]}

    loaded = load_config(configure(edit))
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        d = Daemon(loaded, store, ManualClock(NOW), logging.getLogger("test-daemon"))
        for status in ("major_outage", "operational", "major_outage", "operational"):
            set_status(http_peer, status)
            cycles(d, 1)
        assert d.health["phone"].state == "flapping"
        [sit] = store.open_situations()
        assert sit.kind == "outage", "held down: the outage stays open while the channel flaps"
        assert outbox_names(workdir, "channel-flapping")
    finally:
        store.close()


def test_steps_missed_while_the_daemon_was_down_run_at_start_marked_late(daemon: Daemon) -> None:
    daemon.engine.open("phone", reason="SIP trunk down", by="anna")
    run_steps(daemon)
    assert isinstance(daemon.clock, ManualClock)
    # The banner and the post fell due at 30m; the daemon comes back 20 seconds later.
    daemon.clock.set(NOW + timedelta(minutes=30, seconds=20))

    async def start_and_stop() -> None:
        await daemon.start()
        await daemon.stop()

    asyncio.run(start_and_stop())
    ran = {r.step_id: r for r in daemon.store.steps_for(1) if r.step_id in ("website-banner", "social-post")}
    assert {r.state for r in ran.values()} == {"done"}
    assert all(r.late for r in ran.values()), "missed while down: late, though only 20 seconds overdue"
    on_time = [r for r in daemon.store.steps_for(1) if r.step_id == "staff-runbook"]
    assert on_time and not any(r.late for r in on_time)
