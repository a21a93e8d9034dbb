"""Two `continuity outage phone` started at the same moment produce one situation, and each step runs once."""

from __future__ import annotations

import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

from tests.crashkit import SmtpServer, cli_args, cli_env, fresh_workdir, write_config

T0 = "2026-11-23T09:00:00+00:00"


def test_simultaneous_outage_commands_open_one_situation(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        for i in range(4):
            smtp.recorder.messages.clear()
            workdir = fresh_workdir(tmp_path, f"race{i}")
            config = write_config(workdir, smtp.port)
            procs = [
                subprocess.Popen(cli_args(config, "outage", "phone", "--reason", f"trunk down ({who})", "--eta", "2h"),
                                 cwd=workdir, env=cli_env(T0), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
                for who in ("anna", "bela", "csilla")
            ]
            outs = [p.communicate(timeout=60) for p in procs]
            assert all(p.returncode == 0 for p in procs), outs
            conn = sqlite3.connect(workdir / "continuity.db")
            try:
                sits = conn.execute("SELECT id, state FROM situations").fetchall()
                steps = conn.execute("SELECT key, state FROM steps").fetchall()
            finally:
                conn.close()
            assert sits == [(1, "open")]
            keys = Counter(k for k, _ in steps)
            assert all(n == 1 for n in keys.values())
            # The 0m steps ran exactly once between the three processes.
            done = sorted(k for k, s in steps if s == "done")
            assert done == sorted([
                "s1/open/staff-runbook/1/outbox", "s1/open/staff-runbook/1/staff_mail",
                "s1/open/customer-notice/1/outbox", "s1/open/email-autoreply/1/outbox",
            ])
            assert len(smtp.recorder.message_ids()) == 1
            assert len([p for p in (workdir / "outbox").iterdir() if not p.name.startswith(".")]) == 3
            # Exactly one process reported opening; the others found it open.
            opened = [o for o, _ in outs if "opened" in o]
            assert len(opened) == 1, [o for o, _ in outs]
