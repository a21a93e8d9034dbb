"""`continuity retry ID`: a step whose retries ran out (the receiver was down longer than the backoff lasted)
is sent again on request, once, with a fresh round of retries; nothing else is re-sent, and a closed outage's
customer-facing steps are not."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import NOW, Configure, HttpServer, RunCli

# The CLI's own start (Python, imports, config) on a loaded CI machine, beside the 6 s the budget allows.
STARTUP_ALLOWANCE = 3.0


def _hook_row(workdir: Path, step: str = "staff-runbook") -> tuple[int, str, int]:
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        (row,) = conn.execute("SELECT id, state, attempts FROM steps WHERE sink = 'hook' AND phase = 'open' "
                              "AND step_id = ?", (step,))
        return int(row[0]), str(row[1]), int(row[2])
    finally:
        conn.close()


def test_a_step_whose_retries_ran_out_is_sent_again_on_request(configure: Configure, cli: RunCli,
                                                                http_server: HttpServer, workdir: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": http_server.url, "timeout": 5}
        cfg["routes"]["staff"] = ["outbox", "hook"]
        cfg["retry"] = {"attempts": 2, "first_delay": "1m", "max_delay": "1m", "inline_budget": "0s"}

    configure(edit)
    http_server.script(then=503)  # down for longer than the retries last
    assert cli("outage", "phone", "--reason", "SIP trunk down", now=NOW).returncode == 1
    assert cli("tick", now=NOW + timedelta(minutes=2)).returncode == 1
    step, state, attempts = _hook_row(workdir)
    assert (state, attempts) == ("failed", 2)
    assert cli("tick", now=NOW + timedelta(minutes=5)).returncode == 0, "no more automatic retries"
    assert len(http_server.requests) == 2

    http_server.script(then=200)  # it is back
    proc = cli("retry", str(step), "--json", now=NOW + timedelta(minutes=20))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True and [r["step"] for r in out["ran"]] == ["staff-runbook"]
    assert _hook_row(workdir)[1] == "done"
    assert len(http_server.requests) == 3
    assert len(list((workdir / "outbox").glob("*staff-runbook*"))) == 1, "the outbox copy is not re-sent"

    again = cli("retry", str(step), now=NOW + timedelta(minutes=21))
    assert again.returncode == 2 and "is done; only a failed step can be sent again" in again.stderr
    missing = cli("retry", "999", now=NOW + timedelta(minutes=21))
    assert missing.returncode == 2 and "error: no step with id 999" in missing.stderr  # not "continuity.yaml: …"


def test_a_closed_outage_is_not_announced_again(configure: Configure, cli: RunCli, http_server: HttpServer,
                                                 workdir: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": http_server.url, "timeout": 5}
        cfg["routes"]["customers"] = ["hook"]
        cfg["retry"] = {"attempts": 1, "first_delay": "1m", "max_delay": "1m", "inline_budget": "0s"}

    configure(edit)
    http_server.script(then=503)
    assert cli("outage", "phone", "--reason", "SIP trunk down", now=NOW).returncode == 1
    assert cli("restore", "phone", now=NOW + timedelta(minutes=10)).returncode in (0, 1)
    step = _hook_row(workdir, "customer-notice")[0]
    http_server.script(then=200)
    before = len(http_server.requests)
    proc = cli("retry", str(step), now=NOW + timedelta(minutes=11))
    assert proc.returncode == 2 and "situation #1 is closed" in proc.stderr
    assert len(http_server.requests) == before


def test_the_inline_budget_bounds_the_command_against_a_sink_that_hangs(
        configure: Configure, cli: RunCli, http_server: HttpServer, workdir: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["hook"] = {"type": "webhook", "url": http_server.url, "timeout": 30}
        cfg["routes"]["staff"] = ["outbox", "hook"]
        cfg["retry"] = {"attempts": 4, "first_delay": "1s", "max_delay": "1s", "inline_budget": "5s"}

    configure(edit)
    http_server.hang = 60  # takes the request and never answers within the sink's own 30 s

    started = time.monotonic()
    proc = cli("outage", "phone", "--reason", "SIP trunk down", "--json", now=NOW)
    took = time.monotonic() - started

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert took < 6 + STARTUP_ALLOWANCE, took
    out = json.loads(proc.stdout)
    [hook] = [r for r in out["ran"] if r["sink"] == "hook" and r["step"] == "staff-runbook"]
    assert hook["state"] == "failed"
    assert "inline budget" in hook["detail"] and "left for `continuity tick`" in hook["detail"], hook["detail"]
    step, state, attempts = _hook_row(workdir)
    assert state == "failed" and attempts >= 1
    # The outbox copy went out at once: one hanging sink holds up nothing else.
    assert len(list((workdir / "outbox").glob("*staff-runbook*"))) == 1
