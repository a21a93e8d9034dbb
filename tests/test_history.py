"""History from the ledger, built through the real CLI with the pinned clock: the month's report
(`report --month`) and the 90 days of uptime in /status.json, in the organisation's timezone
(Europe/Budapest in the shipped example)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from continuity.config.loader import load_config
from continuity.public.status import status_data
from continuity.store import open_store
from tests.conftest import RunCli

BUD = ZoneInfo("Europe/Budapest")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BUD)


def outage(cli: RunCli, channel: str, start: str, end: str | None) -> None:
    opened = cli("outage", channel, "--reason", "down", now=local(start))
    assert opened.returncode in (0, 1), opened.stderr  # 1: a sink failed, the situation is open all the same
    if end is not None:
        restored = cli("restore", channel, now=local(end))
        assert restored.returncode in (0, 1), restored.stderr


def month(cli: RunCli, value: str, now: str, *extra: str) -> dict[str, Any]:
    proc = cli("report", "--month", value, "--format", "json", *extra, now=local(now))
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def by_channel(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["channel"]: r for r in rep["channels"]}


def status_json(workdir: Path, now: datetime) -> dict[str, Any]:
    loaded = load_config(workdir / "continuity.yaml")
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        return status_data(loaded, store, {}, now, loaded.config.organisation.default_locale)
    finally:
        store.close()


def uptime_of(data: dict[str, Any], channel: str) -> dict[str, Any]:
    [ch] = [c for c in data["channels"] if c["key"] == channel]
    result: dict[str, Any] = ch["uptime"]
    return result


def test_november_phone_and_email_outages(cli: RunCli, workdir: Path) -> None:
    opened = cli("outage", "phone", "--reason", "down", now=local("2026-11-10T10:00"))
    assert opened.returncode in (0, 1), opened.stderr
    assert cli("tick", now=local("2026-11-10T10:31")).returncode in (0, 1)  # the banner, due after 30 min
    assert cli("restore", "phone", now=local("2026-11-10T11:30")).returncode in (0, 1)
    outage(cli, "email", "2026-11-20T14:00", "2026-11-20T14:30")
    rep = month(cli, "2026-11", "2026-12-07T09:00")
    rows = by_channel(rep)
    assert (rows["phone"]["outages"], rows["phone"]["down_seconds"], rows["phone"]["availability"]) == (
        1, 5400, 0.99792)
    assert rows["phone"]["longest_outage_seconds"] == 5400
    assert (rows["email"]["outages"], rows["email"]["down_seconds"]) == (1, 1800)
    assert rep["mttr_seconds"] == 3600
    assert rep["period_seconds"] == 30 * 86400
    # the customer notice goes out when the outage opens (the shipped phone playbook's first customer step)
    [phone_sit] = [s for s in rep["situations"] if s["channel"] == "phone"]
    assert phone_sit["customer_notice_seconds"] == 0 and phone_sit["duration_seconds"] == 5400
    assert (phone_sit["banner_seconds"], phone_sit["staff_runbook_seconds"]) == (31 * 60, 0)
    # October and December know nothing of it
    assert by_channel(month(cli, "2026-10", "2026-12-07T09:00"))["phone"]["down_seconds"] == 0
    assert month(cli, "2026-10", "2026-12-07T09:00")["mttr_seconds"] is None
    markdown = cli("report", "--month", "2026-11", now=local("2026-12-07T09:00")).stdout
    assert "| phone | 1 | 5400 | 0.99792 | 5400 |" in markdown and "MTTR: 3600 s" in markdown

    data = status_json(workdir, local("2026-12-07T09:00"))
    phone = uptime_of(data, "phone")
    assert len(phone["days"]) == 90
    assert phone["days"][-1]["date"] == "2026-12-07" and phone["days"][0]["date"] == "2026-09-09"
    [nov10] = [d for d in phone["days"] if d["date"] == "2026-11-10"]
    assert nov10 == {"date": "2026-11-10", "down_seconds": 5400, "maintenance_seconds": 0,
                     "situations": [phone_sit["id"]]}
    assert sum(d["down_seconds"] for d in phone["days"]) == 5400
    # 90 days up to 09:00 today: 89 whole days (one of them 25 h: 25 October) and 9 hours
    period = 89 * 86400 + 3600 + 9 * 3600
    assert phone["percent"] == round(100 * (1 - 5400 / period), 2) == 99.93
    assert sum(d["down_seconds"] for d in uptime_of(data, "email")["days"]) == 1800


def test_an_outage_across_midnight_counts_on_both_days(cli: RunCli, workdir: Path) -> None:
    outage(cli, "phone", "2026-11-10T23:00", "2026-11-11T01:30")
    days = {d["date"]: d for d in uptime_of(status_json(workdir, local("2026-11-12T12:00")), "phone")["days"]}
    assert (days["2026-11-10"]["down_seconds"], days["2026-11-11"]["down_seconds"]) == (3600, 5400)
    assert days["2026-11-10"]["situations"] == days["2026-11-11"]["situations"] != []
    assert days["2026-11-12"]["down_seconds"] == 0 and days["2026-11-12"]["situations"] == []


def test_a_day_across_dst_has_25_hours_and_an_open_outage_counts_up_to_now(cli: RunCli, workdir: Path) -> None:
    # Clocks go back on 2026-10-25 at 03:00: 00:00–12:00 local is 13 hours.
    outage(cli, "phone", "2026-10-25T00:00", None)
    rep = cli("report", "--since", "2026-10-25", "--until", "2026-10-26", "--format", "json",
              now=local("2026-10-25T12:00"))
    assert rep.returncode == 0, rep.stderr
    rows = by_channel(json.loads(rep.stdout))
    assert rows["phone"]["down_seconds"] == 13 * 3600
    assert json.loads(rep.stdout)["period_seconds"] == 13 * 3600  # the rest of the day has not happened
    # The whole day, seen later: 25 hours down out of 25.
    rep = month(cli, "2026-10", "2026-10-26T00:00")
    assert by_channel(rep)["phone"]["down_seconds"] == 25 * 3600
    days = {d["date"]: d for d in uptime_of(status_json(workdir, local("2026-10-26T06:00")), "phone")["days"]}
    assert days["2026-10-25"]["down_seconds"] == 25 * 3600 and days["2026-10-26"]["down_seconds"] == 6 * 3600


def test_maintenance_is_not_downtime(cli: RunCli, workdir: Path) -> None:
    added = cli("maintenance", "add", "phone", "--start", "2h", "--end", "4h", "--reason", "PBX upgrade",
                "--notice", "1h", now=local("2026-11-10T08:00"))
    assert added.returncode == 0, added.stderr
    for hhmm in ("09:00", "10:00", "12:00"):
        assert cli("tick", now=local(f"2026-11-10T{hhmm}")).returncode in (0, 1)
    # an outage declared during the window counts only outside it
    outage(cli, "phone", "2026-11-10T11:00", "2026-11-10T13:00")
    rep = month(cli, "2026-11", "2026-12-01T00:00")
    phone = by_channel(rep)["phone"]
    assert (phone["down_seconds"], phone["maintenance_seconds"]) == (3600, 7200)
    assert rep["maintenance_minutes"] == 120
    days = {d["date"]: d for d in uptime_of(status_json(workdir, local("2026-11-11T00:00")), "phone")["days"]}
    assert (days["2026-11-10"]["down_seconds"], days["2026-11-10"]["maintenance_seconds"]) == (3600, 7200)
    assert len(days["2026-11-10"]["situations"]) == 2


def test_bad_period_names_the_field(cli: RunCli) -> None:
    bad = cli("report", "--month", "2026-13", "--format", "json")
    assert bad.returncode == 2 and "--month" in bad.stderr
    bad = cli("report", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    bad = cli("report", "--since", "2026-11-02", "--until", "2026-11-01")
    assert bad.returncode == 2 and "--until" in bad.stderr
    assert cli("report").returncode == 2
    assert cli("report", "1", "--month", "2026-11").returncode == 2
