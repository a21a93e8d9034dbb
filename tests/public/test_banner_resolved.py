"""The banner's last state after restore: an outage whose website banner was shown says "working again" (with
how long it lasted) in /banner.json's `resolved` list and in the file_banner sink's files for
`daemon.public.banner_resolved_for` (30 minutes as shipped), then nothing; no banner shown, no resolved state.

The situations are made by real CLI processes with the pinned clock (CONTINUITY_NOW), minutes before the real
time the daemon's /banner.json judges "for how long" by (tests/public/conftest.py serves its real HTTP app).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from continuity.clock import ManualClock
from continuity.public.banner import BannerSource
from tests.conftest import run_cli
from tests.public.conftest import MakeSite, Site

BANNER_FILE = Path("site/banner/continuity-banner.json")


def shipped_timing(cfg: dict[str, Any]) -> None:
    """The shipped playbook as it is: the website banner goes up 30 minutes into the outage."""
    cfg["channels"]["phone"].pop("override", None)


def cli(workdir: Path, *args: str, at: datetime) -> str:
    done = run_cli(workdir, *args, now=at)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: a sink failed; the ledger has it all
    return done.stdout


def outage(workdir: Path, start: datetime, *, banner: bool, restore: timedelta) -> None:
    """Phone down at `start`; a tick 31 minutes in (the banner's time) when `banner`; restored `restore` in."""
    cli(workdir, "outage", "phone", "--reason", "SIP trunk down", "--cause", "provider", at=start)
    if banner:
        cli(workdir, "tick", at=start + timedelta(minutes=31))
    cli(workdir, "restore", "phone", at=start + restore)


def banner_doc(s: Site) -> dict[str, Any]:
    answer = s.get("/banner.json")
    assert answer.status == 200, answer.text
    doc: dict[str, Any] = json.loads(answer.body)
    return doc


def test_restore_leaves_a_resolved_banner_for_a_while(site: MakeSite, workdir: Path) -> None:
    s = site(shipped_timing)
    now = datetime.now(UTC)
    outage(workdir, now - timedelta(minutes=65), banner=True, restore=timedelta(minutes=60))  # closed 5 min ago

    doc = banner_doc(s)
    assert doc["active"] is False and doc["banners"] == []  # the outage banner itself is off
    (done,) = doc["resolved"]
    assert (done["id"], done["state"], done["channel"], done["situation_kind"]) == ("1", "resolved", "phone",
                                                                                    "outage")
    assert set(done["locales"]) == {"hu", "en", "sk", "pl"}
    texts = done["locales"]
    assert texts["hu"]["title"] == "Újra működik a telefonos ügyfélszolgálat"
    assert "Az üzemzavar 1 óra ideig tartott." in texts["hu"]["body"]
    assert "The outage lasted 1 hour." in texts["en"]["body"]
    assert "Dĺžka výpadku: 1 hodina." in texts["sk"]["body"]
    assert "Czas trwania awarii: 1 godzina." in texts["pl"]["body"]
    closed = datetime.fromisoformat(done["updated_at"])
    assert datetime.fromisoformat(done["until"]) - closed == timedelta(minutes=30)
    assert banner_doc(s)["resolved"][0]["revision"] == done["revision"]  # stable: a dismissal sticks

    # After the period (closed 31 minutes before): nothing, on the same store.
    later = BannerSource(s.daemon.loaded, s.daemon.store, ManualClock(closed + timedelta(minutes=31)))
    assert "resolved" not in later.document()
    just_in = BannerSource(s.daemon.loaded, s.daemon.store, ManualClock(closed + timedelta(minutes=29)))
    assert just_in.document()["resolved"][0]["revision"] == done["revision"]


def test_resolved_state_is_over_after_the_period(site: MakeSite, workdir: Path) -> None:
    s = site(shipped_timing)
    now = datetime.now(UTC)
    outage(workdir, now - timedelta(minutes=100), banner=True, restore=timedelta(minutes=65))  # 35 min ago
    doc = banner_doc(s)
    assert "resolved" not in doc and doc["banners"] == []


def test_no_resolved_state_when_no_banner_was_shown(site: MakeSite, workdir: Path) -> None:
    s = site(shipped_timing)
    now = datetime.now(UTC)
    outage(workdir, now - timedelta(minutes=20), banner=False, restore=timedelta(minutes=15))  # a blip
    assert "resolved" not in banner_doc(s)


def test_zero_switches_it_off(site: MakeSite, workdir: Path) -> None:
    s = site(lambda cfg: (shipped_timing(cfg),
                          cfg.setdefault("daemon", {}).setdefault("public", {}).update(banner_resolved_for="0s")))
    now = datetime.now(UTC)
    outage(workdir, now - timedelta(minutes=65), banner=True, restore=timedelta(minutes=60))
    assert "resolved" not in banner_doc(s)


def test_the_setting_is_checked(workdir: Path, configure: Any) -> None:
    path = configure(lambda cfg: cfg.setdefault("daemon", {}).setdefault("public", {}).update(
        banner_resolved_for="-5m"))
    done = run_cli(workdir, "validate", config=path)
    assert done.returncode != 0 and "banner_resolved_for" in done.stdout + done.stderr
