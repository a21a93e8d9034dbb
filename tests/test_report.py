"""`continuity report` after the outage is over: every step at the time it went on, every switch-off at its
own time, and a step that failed and was never retried (the outage closed first) still shown as failed."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import NOW, Configure, RunCli
from tests.crashkit import free_port


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def _entries(report: dict[str, Any], needle: str) -> list[tuple[str, str]]:
    return [(e["offset"], e["text"]) for e in report["timeline"] if needle in e["text"]]


def test_the_timeline_keeps_when_each_step_went_on_and_off(configure: Configure, cli: RunCli) -> None:
    # Staff messages also go to a webhook nobody listens on: refused, retried later, never in time.
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook", "timeout": 2}
        cfg["routes"]["staff"] = ["outbox", "hook"]
        cfg["retry"] = {"attempts": 5, "first_delay": "1h", "max_delay": "2h", "inline_budget": "0s"}

    configure(edit)
    assert cli("outage", "phone", "--reason", "SIP trunk down", now=NOW).returncode == 1  # the hook failed
    assert cli("tick", now=at(31)).returncode == 0
    assert cli("restore", "phone", now=at(40)).returncode == 1  # staff-resolved to the hook fails too
    proc = cli("report", "1", "--format", "json", now=at(45))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)

    assert _entries(report, "customer-notice (notice) → outbox: done") == [("+0s", "customer-notice (notice) → "
                                                                          "outbox: done")]
    assert [o for o, _ in _entries(report, "website-banner (banner) → website: done")] == ["+31m"]
    assert [o for o, _ in _entries(report, "website-banner (switched off) → website: done")] == ["+40m"]
    assert [o for o, _ in _entries(report, "customer-notice (switched off) → outbox: done")] == ["+40m"]
    [(offset, text)] = _entries(report, "staff-runbook (notify) → hook")
    assert offset == "+40m" and ": failed" in text and "not retried: the situation closed" in text
    assert "refused" in text or "cannot connect" in text
    markdown = cli("report", "1", now=at(45)).stdout
    shown = at(31).astimezone(ZoneInfo("Europe/Budapest")).strftime("%Y-%m-%d %H:%M")  # the organisation's time
    assert re.search(rf"\| {shown}( CET)? \| \+31m \| website-banner \(banner\) → website: done \|", markdown)
