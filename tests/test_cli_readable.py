"""Small frictions of the CLI (issue 15, point 10), through the real command: times name their zone when the
machine is elsewhere, outbox paths are shown whole, flags carry no `<bool>`, overdue steps say so."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import EXAMPLE_CONFIG, run_cli

NOW = "2026-12-05T10:00:00+00:00"  # 11:00 in Budapest, the example organisation's zone


def _config(workdir: Path) -> None:
    (workdir / "continuity.yaml").write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")


def test_times_name_the_organisations_zone_only_when_the_machine_is_elsewhere(tmp_path: Path) -> None:
    _config(tmp_path)
    there = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--cause", "provider", "--eta", "2h",
                    now=NOW, env={"TZ": "UTC"})
    assert there.returncode == 0, there.stdout + there.stderr
    assert "ETA: 2026-12-05 13:00 CET" in there.stdout
    assert re.search(r"website-banner at 2026-12-05 11:30 CET", there.stdout), there.stdout
    here = run_cli(tmp_path, "status", now=NOW, env={"TZ": "Europe/Budapest"})
    assert "ETA 2026-12-05 13:00" in here.stdout and "CET" not in here.stdout, here.stdout


def test_outbox_paths_are_shown_whole_on_a_narrow_terminal(tmp_path: Path) -> None:
    _config(tmp_path)
    done = run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--cause", "provider", now=NOW,
                   env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "…" not in done.stdout
    # The detail column folds a long path onto the next lines: glued together, every file is there in full.
    detail = "".join(line.split("│")[-2].strip() for line in done.stdout.splitlines() if line.count("│") >= 6)
    for path in (tmp_path / "outbox").iterdir():
        assert f"outbox/{path.name}" in detail, (path.name, done.stdout)


def test_flags_show_no_bool_metavar_and_options_keep_their_type(tmp_path: Path) -> None:
    for command in (["outage", "--help"], ["restore", "--help"], ["status", "--help"], ["campaign", "register",
                                                                                         "--help"]):
        shown = run_cli(tmp_path, *command)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "<bool>" not in shown.stdout, (command, shown.stdout)
    outage = run_cli(tmp_path, "outage", "--help").stdout
    assert re.search(r"--dry-run\s+Show every action", outage), outage
    assert re.search(r"--eta\s+<str>", outage), outage


def test_status_marks_overdue_steps_and_says_what_runs_them(tmp_path: Path) -> None:
    _config(tmp_path)
    assert run_cli(tmp_path, "outage", "phone", "--reason", "trunk down", "--cause", "provider",
                   now=NOW).returncode == 0
    on_time = run_cli(tmp_path, "status", now="2026-12-05T10:10:00+00:00")
    assert "overdue" not in on_time.stdout
    late = run_cli(tmp_path, "status", now="2026-12-05T10:45:00+00:00", env={"TZ": "UTC"})
    rows = {line.split("│")[1].strip(): line for line in late.stdout.splitlines() if line.count("│") >= 5}
    assert "overdue" in rows["website-banner"] and "overdue" in rows["social-post"]
    assert "overdue" not in rows["staff-reminder"]  # due at +60m: still ahead
    assert "2 steps are overdue" in late.stdout and "`continuity tick` runs what is due now" in late.stdout
    assert "continuity daemon" in late.stdout
    assert re.search(r"due CET", late.stdout), late.stdout  # the table names the zone once
