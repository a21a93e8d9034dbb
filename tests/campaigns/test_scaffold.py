"""`campaign new NAME` and `campaign register FILE --dry-run` through the real CLI: a campaign file dated ahead
whatever today is, and every text a campaign will send, in every locale, before anything is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG, run_cli

LOCALES = ["hu", "en", "sk", "pl"]


def _config(workdir: Path) -> None:
    (workdir / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")


@pytest.mark.parametrize(("now", "start", "end", "brief"), [
    # today + 14 days at midnight, Budapest; the example's length (3 days 23:59); briefed 09:00, 48h+ ahead
    ("2026-12-07T11:00:00+00:00", "2026-12-21 00:00", "2026-12-24 23:59", "2026-12-18 09:00"),
    ("2031-06-01T08:00:00+00:00", "2031-06-15 00:00", "2031-06-18 23:59", "2031-06-12 09:00"),  # never rots
])
def test_a_new_campaign_is_dated_ahead_and_registers(tmp_path: Path, now: str, start: str, end: str,
                                                     brief: str) -> None:
    _config(tmp_path)
    made = run_cli(tmp_path, "campaign", "new", "spring-sale", now=now)
    assert made.returncode == 0, made.stdout + made.stderr
    text = (tmp_path / "spring-sale.yaml").read_text(encoding="utf-8")
    assert "\nname: spring-sale\n" in text
    assert f"\nstart: {start} Europe/Budapest\n" in text and f"\nend: {end} Europe/Budapest\n" in text
    assert "campaign register spring-sale.yaml" in text and "# Texts can be one string" in text  # comments kept
    assert f"staff briefed {brief}" in made.stdout
    done = run_cli(tmp_path, "campaign", "register", "spring-sale.yaml", "--json", now=now)
    assert done.returncode == 0, done.stdout + done.stderr
    registered = json.loads(done.stdout)["campaign"]
    assert registered["name"] == "spring-sale" and registered["state"] == "registered"


def test_new_refuses_an_existing_file_and_a_start_too_soon(tmp_path: Path) -> None:
    _config(tmp_path)
    now = "2026-12-07T11:00:00+00:00"
    soon = run_cli(tmp_path, "campaign", "new", "soon", "--start", "2026-12-08", now=now)
    assert soon.returncode == 2 and "--start 2026-12-08 00:00" in soon.stderr and "min_lead" in soon.stderr
    assert not (tmp_path / "soon.yaml").exists()
    bad = run_cli(tmp_path, "campaign", "new", "Spring Sale!", now=now)
    assert bad.returncode == 2 and "lower-case letters" in bad.stderr
    (tmp_path / "taken.yaml").write_text("mine\n", encoding="utf-8")
    taken = run_cli(tmp_path, "campaign", "new", "taken", "--start", "2027-03-01 08:00", now=now)
    assert taken.returncode == 2 and "already exists" in taken.stderr
    assert (tmp_path / "taken.yaml").read_text(encoding="utf-8") == "mine\n"
    assert not (tmp_path / "continuity.db").exists()


def test_register_dry_run_shows_every_text_in_every_locale_and_stores_nothing(tmp_path: Path) -> None:
    _config(tmp_path)
    now = "2026-12-07T11:00:00+00:00"
    assert run_cli(tmp_path, "campaign", "new", "spring-sale", "--start", "2027-03-01 08:00", now=now
                   ).returncode == 0
    plan = run_cli(tmp_path, "campaign", "register", "spring-sale.yaml", "--dry-run", "--json", now=now)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    shown = json.loads(plan.stdout)
    assert shown["dry_run"] is True and shown["brief_at"] == "2027-02-26T08:00:00+00:00"  # 09:00, 48h+ ahead
    steps = {s["step"]: s for s in shown["steps"]}
    assert [t["locale"] for t in steps["brief"]["texts"]] == ["en"]  # staff read the staff language
    for step in ("launch-banner", "launch-notice", "launch-autoreply"):
        assert [t["locale"] for t in steps[step]["texts"]] == LOCALES, step
        for t in steps[step]["texts"]:
            assert t["text"].strip() and "None" not in t["text"], (step, t)
    assert "1 March" in steps["brief"]["texts"][0]["text"]
    text = run_cli(tmp_path, "campaign", "register", "spring-sale.yaml", "--dry-run", now=now)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "Dry run: campaign spring-sale (nothing was stored)" in text.stdout
    assert "Briefing 2027-02-26 09:00 CET" in text.stdout or "Briefing 2027-02-26 09:00" in text.stdout
    for step in ("brief", "launch-banner", "launch-notice", "launch-autoreply"):
        assert f"== {step} (" in text.stdout, step
    assert text.stdout.count("-- [sk]") >= 4
    assert not (tmp_path / "continuity.db").exists()  # nothing stored, no store created
    listed = run_cli(tmp_path, "campaign", "register", "spring-sale.yaml", "--dry-run", "--name", "x", now=now)
    assert listed.returncode == 2  # a file or flags, not both: still checked


def test_a_start_is_read_in_organisation_time_unless_it_names_its_offset() -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from continuity.campaigns.scaffold import parse_start
    from continuity.errors import InputError

    zone = ZoneInfo("Europe/Budapest")
    assert parse_start("2027-03-01", "Europe/Budapest") == datetime(2027, 3, 1, tzinfo=zone)
    assert parse_start(" 2027-03-01 08:00 ", "Europe/Budapest") == datetime(2027, 3, 1, 8, tzinfo=zone)
    given = parse_start("2027-03-01T08:00+00:00", "Europe/Budapest")
    assert given.utcoffset() == timedelta(0) and given == datetime(2027, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(InputError, match="--start 'next monday'"):
        parse_start("next monday", "Europe/Budapest")
