"""A ledger row whose sink or action cannot even be prepared fails alone: the run goes on, the other rows'
results are recorded and reported, and nothing is left `running`."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import NOW, Configure, RunCli


def _steps(workdir: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(workdir / "continuity.db")
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT step_id, phase, sink, state, last_error FROM steps").fetchall()
    finally:
        conn.close()
    return {f"{r['step_id']}/{r['phase']}/{r['sink']}": dict(r) for r in rows}


def _rename_website(cfg: dict[str, Any]) -> None:
    cfg["sinks"]["site"] = cfg["sinks"].pop("website")
    cfg["routes"]["website"] = ["site"]


def test_removed_sink_fails_its_row_and_the_run_goes_on(cli: RunCli, configure: Configure, workdir: Path) -> None:
    opened = cli("outage", "phone", "--reason", "SIP trunk down", now=NOW)
    assert opened.returncode == 0, opened.stderr
    configure(_rename_website)

    ticked = cli("tick", "--json", now=NOW + timedelta(minutes=31))
    assert ticked.returncode == 1, ticked.stderr
    assert "Traceback" not in ticked.stderr and "internal error" not in ticked.stderr
    ran = {r["step"]: r for r in json.loads(ticked.stdout)["ran"]}
    assert ran["website-banner"]["state"] == "failed"
    assert ran["website-banner"]["detail"] == "sink 'website' is no longer configured"
    assert ran["social-post"]["state"] == "done"  # the other row due at the same time still ran and is reported

    steps = _steps(workdir)
    banner = steps["website-banner/open/website"]
    assert banner["state"] == "failed"
    assert banner["last_error"] == "sink 'website' is no longer configured"
    assert not [k for k, s in steps.items() if s["state"] == "running"]

    # Not retried forever: the next tick has nothing to do.
    again = cli("tick", now=NOW + timedelta(hours=2))
    assert "website" not in again.stdout + again.stderr
    assert _steps(workdir)["website-banner/open/website"]["state"] == "failed"

    # Restore closes the outage and runs every switch-off; only the banner's, whose sink is gone, fails
    # (and says why), so the exit code still tells the operator to look.
    restored = cli("restore", "phone", "--json", now=NOW + timedelta(hours=3))
    assert "Traceback" not in restored.stderr and "internal error" not in restored.stderr
    body = json.loads(restored.stdout)
    assert body["closed"] is True and body["situation"]["closed_at"]
    ran = {(r["step"], r["phase"]): r for r in body["ran"]}
    assert ran[("website-banner", "undo")]["detail"] == "sink 'website' is no longer configured"
    assert {r["state"] for k, r in ran.items() if k != ("website-banner", "undo")} == {"done"}
    assert ran[("staff-resolved", "close")]["state"] == "done"
    assert restored.returncode == 1
    assert not [k for k, s in _steps(workdir).items() if s["state"] == "running"]
    status = cli("status", now=NOW + timedelta(hours=3)).stdout
    assert "outage of phone — CLOSED, work pending" in status
    assert "website FAILED: sink 'website' is no longer configured" in status

def test_removed_sink_in_plain_output(cli: RunCli, configure: Configure) -> None:
    assert cli("outage", "phone", "--reason", "SIP trunk down", now=NOW).returncode == 0
    configure(_rename_website)
    ticked = cli("tick", now=NOW + timedelta(minutes=31))
    assert ticked.returncode == 1
    assert "sink 'website' is no longer configured" in ticked.stdout
    assert "social-post" in ticked.stdout
