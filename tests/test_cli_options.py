"""Options of the real CLI that staff rely on: CONTINUITY_CONFIG, `outage --by`, `history --since`, a drill's
private folder, and `settle ID sent|resend` on a step whose outcome a SIGKILL left `uncertain`.

Every command runs as `python -m continuity` in a subprocess; the e-mail sink talks to a real aiosmtpd server
on 127.0.0.1 that can be told to stall inside its DATA handler (the message is in, the answer never comes).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.conftest import (
    CONFIG_NAME,
    EXAMPLE_CONFIG,
    NOW,
    STORE_NAME,
    Configure,
    HttpServer,
    RunCli,
    store_snapshot,
    tree,
)
from tests.probes.conftest import free_port


def cli_env(**extra: str) -> dict[str, str]:
    """The environment run_cli gives the CLI (tester, a wide terminal), minus the developer's own settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONTINUITY_CONFIG", "CONTINUITY_NOW", "CONTINUITY_USER", "SMTP_PASSWORD")}
    env.update({"CONTINUITY_USER": "tester", "COLUMNS": "250", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


def bare_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m continuity ARGS` with no --config: the config comes from the environment or ./continuity.yaml."""
    return subprocess.run([sys.executable, "-m", "continuity", *args], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, encoding="utf-8", timeout=60)


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def make_config(folder: Path, name: str) -> Path:
    """A copy of the shipped config in its own folder, its organisation renamed so outputs tell them apart."""
    folder.mkdir(parents=True)
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["organisation"]["name"] = name
    path = folder / CONFIG_NAME
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# (a) CONTINUITY_CONFIG -------------------------------------------------------------------------------------------


def test_continuity_config_selects_the_config_when_no_option_is_given(tmp_path: Path) -> None:
    chosen = make_config(tmp_path / "chosen", "Chosen Shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    opened = ok_json(bare_cli(elsewhere, "outage", "phone", "--reason", "trunk down", "--json",
                              CONTINUITY_CONFIG=str(chosen), CONTINUITY_NOW=NOW.isoformat()))

    assert opened["created"] is True and opened["situation"]["channel"] == "phone"
    # The store and outbox are those of the chosen config (relative to its folder), not of the working folder.
    assert (chosen.parent / STORE_NAME).exists()
    assert len(tree(chosen.parent / "outbox")) == 3
    assert tree(elsewhere) == []
    staff = next((chosen.parent / "outbox").glob("*staff-runbook*"))
    from email import policy
    from email.parser import BytesParser

    subject = str(BytesParser(policy=policy.default).parsebytes(staff.read_bytes())["Subject"])
    assert subject.startswith("[Chosen Shop]"), subject
    status = ok_json(bare_cli(elsewhere, "status", "--json", CONTINUITY_CONFIG=str(chosen)))
    assert [s["channel"] for s in status["open"]] == ["phone"]


def test_without_the_variable_the_working_folder_config_is_used(tmp_path: Path) -> None:
    here = make_config(tmp_path / "here", "Local Shop").parent
    status = ok_json(bare_cli(here, "status", "--json"))
    assert status["open"] == []
    assert (here / STORE_NAME).exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    missing = bare_cli(empty, "status")
    assert missing.returncode == 2
    assert "config file not found (run `continuity init` to create one)" in missing.stderr
    assert tree(empty) == []


def test_the_config_option_wins_over_the_variable(tmp_path: Path) -> None:
    from_env = make_config(tmp_path / "env", "Env Shop")
    from_option = make_config(tmp_path / "option", "Option Shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    ok_json(bare_cli(elsewhere, "--config", str(from_option), "outage", "email", "--reason", "mx down", "--json",
                     CONTINUITY_CONFIG=str(from_env), CONTINUITY_NOW=NOW.isoformat()))

    assert (from_option.parent / STORE_NAME).exists()
    assert tree(from_env.parent) == [CONFIG_NAME]
    assert tree(elsewhere) == []


def test_a_variable_naming_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    make_config(tmp_path / "cwd", "Local Shop")  # a config is here, but the variable names another one
    out = bare_cli(tmp_path / "cwd", "status", CONTINUITY_CONFIG=str(tmp_path / "nowhere.yaml"))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "config file not found" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "cwd" / STORE_NAME).exists()


# (b) outage --by -----------------------------------------------------------------------------------------------


def test_outage_by_records_who_declared_it(cli: RunCli) -> None:
    opened = ok_json(cli("outage", "phone", "--reason", "trunk down", "--by", "Anna Kovács", "--json", now=NOW))
    assert opened["situation"]["opened_by"] == "Anna Kovács"
    ok_json(cli("outage", "email", "--reason", "mx down", "--json", now=NOW))  # no --by: CONTINUITY_USER

    status = ok_json(cli("status", "--json", now=NOW))
    assert {s["channel"]: s["opened_by"] for s in status["open"]} == {"phone": "Anna Kovács", "email": "tester"}
    report = ok_json(cli("report", str(opened["situation"]["id"]), "--format", "json", now=NOW))
    assert report["opened_by"] == "Anna Kovács"


# (c) history --since -------------------------------------------------------------------------------------------


def _closed_outage(cli: RunCli, channel: str, opened: datetime, closed: datetime) -> int:
    sit = ok_json(cli("outage", channel, "--reason", f"{channel} down", "--json", now=opened))["situation"]
    ok_json(cli("restore", channel, "--json", now=closed))
    return int(sit["id"])


def test_history_since_selects_situations_by_time(cli: RunCli) -> None:
    old = _closed_outage(cli, "phone", NOW - timedelta(days=3), NOW - timedelta(days=3) + timedelta(hours=1))
    recent = _closed_outage(cli, "email", NOW - timedelta(minutes=40), NOW - timedelta(minutes=10))

    def ids(since: str) -> list[int]:
        return [r["id"] for r in ok_json(cli("history", "--since", since, "--json", now=NOW))]

    assert ids("1h") == [recent]
    assert ids("7d") == [old, recent]
    assert ids("3d") == [old, recent]  # opened exactly 3 days ago: inside
    assert ids("2d") == [recent]
    assert ids("5m") == []  # both closed before then
    default = [r["id"] for r in ok_json(cli("history", "--json", now=NOW))]
    assert default == [old, recent]  # 7d by default
    rows = ok_json(cli("history", "--since", "1h", "--json", now=NOW))
    assert (rows[0]["channel"], rows[0]["state"], rows[0]["duration"]) == ("email", "closed", "30m")
    assert "steps" not in rows[0]

    table = cli("history", "--since", "1h", now=NOW)
    assert table.returncode == 0, table.stderr
    assert "Situations in the last 1h" in table.stdout
    assert "email down" in table.stdout and "phone down" not in table.stdout


@pytest.mark.parametrize("since", ["soon", "7 days", "-1h", ""])
def test_history_with_a_bad_since_exits_2(cli: RunCli, workdir: Path, since: str) -> None:
    out = cli("history", "--since", since, now=NOW)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--since" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert not (workdir / STORE_NAME).exists()  # rejected before the store is opened


# (d) drill -----------------------------------------------------------------------------------------------------


def test_a_fast_drill_writes_only_into_its_private_folder(configure: Configure, cli: RunCli, workdir: Path,
                                                          http_server: HttpServer,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    # A real webhook sink on the staff route: a drill must never call it.
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["team_hook"] = {"type": "webhook", "url": http_server.url}
        cfg["routes"]["staff"] = ["outbox", "team_hook"]

    configure(edit)
    assert cli("status", now=NOW).returncode == 0  # the real store exists before the drill
    before, files_before = store_snapshot(workdir), tree(workdir)
    assert STORE_NAME in files_before
    scratch = tmp_path_factory.mktemp("tmpdir")  # outside workdir (which is tmp_path itself)

    started = time.monotonic()
    data = ok_json(cli("drill", "phone", "--speed", "200000", "--json", now=NOW, env={"TMPDIR": str(scratch)}))
    elapsed = time.monotonic() - started

    private = Path(data["directory"])
    assert private.parent == scratch and private.name.startswith("continuity-drill-")  # a new temporary folder
    assert http_server.requests == []
    assert store_snapshot(workdir) == before
    assert tree(workdir) == files_before  # no ./outbox, no site/banner
    lines = data["lines"]
    assert {line["state"] for line in lines} == {"done"}
    assert {line["sink"] for line in lines} == {"outbox", "website", "team_hook"}
    written = tree(private)
    assert "drill.db" in written
    for line in lines:
        assert f"outbox/{line['sink']}/{line['file']}" in written, line
    # Three hours and more of timeline, compressed 200,000 times: well under the real time.
    assert lines[-1]["offset_seconds"] > 3 * 3600
    assert elapsed < 30


def test_a_drill_at_speed_0_and_with_outbox_leaves_the_store_alone(
        cli: RunCli, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert cli("outage", "email", "--reason", "real outage", now=NOW).returncode == 0
    before, files_before = store_snapshot(workdir), tree(workdir)
    private = tmp_path_factory.mktemp("drills") / "rehearsal"

    out = cli("drill", "phone", "--speed", "0", "--outbox", str(private), now=NOW)

    assert out.returncode == 0, out.stderr
    assert f"messages go to {private}/outbox only" in out.stdout
    assert store_snapshot(workdir) == before
    assert tree(workdir) == files_before
    status = ok_json(cli("status", "--json", now=NOW))
    assert [(s["channel"], s["reason"]) for s in status["open"]] == [("email", "real outage")]
    assert any(f.startswith("outbox/outbox/") and "staff-runbook" in f for f in tree(private))


def test_a_negative_drill_speed_exits_2(cli: RunCli, workdir: Path) -> None:
    out = cli("drill", "phone", "--speed", "-1", "--outbox", str(workdir / "never"), now=NOW)
    assert out.returncode == 2
    assert "--speed must be 0 or more" in out.stderr
    assert tree(workdir) == [CONFIG_NAME]


# (e) settle ID sent / resend -----------------------------------------------------------------------------------


class StallingSmtp:
    """aiosmtpd handler keeping every message; while `stall` is set it takes the message and never answers."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.received = threading.Event()
        self.stall = threading.Event()
        self.stall.set()
        self.stopping = threading.Event()
        self.reject = threading.Event()  # answer a permanent 554 instead of taking the message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        if self.reject.is_set():
            return "554 5.7.1 message refused"
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        self.received.set()
        while self.stall.is_set() and not self.stopping.is_set():
            await asyncio.sleep(0.02)
        return "250 OK"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


@pytest.fixture
def smtp() -> Iterator[tuple[StallingSmtp, int]]:
    handler = StallingSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.stopping.set()
        controller.stop()


def _mail_config(configure: Configure, port: int) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["staff_mail"] = {"type": "email", "host": "127.0.0.1", "port": port, "security": "none",
                                      "sender": "alerts@example.test", "to": ["team@example.test"], "timeout": 60}
        cfg["routes"]["staff"] = ["staff_mail"]

    configure(edit)


def _outage_killed_mid_send(workdir: Path, server: StallingSmtp) -> None:
    """Run `outage phone` and SIGKILL it once the SMTP server holds the staff message and has not answered."""
    log = (workdir / "killed-outage.log").open("w", encoding="utf-8")
    with log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "continuity", "--config", str(workdir / CONFIG_NAME), "outage", "phone",
             "--reason", "SIP trunk down"],
            cwd=workdir, env=cli_env(CONTINUITY_NOW=NOW.isoformat()), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not server.received.wait(0.05):
                assert proc.poll() is None, (workdir / "killed-outage.log").read_text(encoding="utf-8")
                assert time.monotonic() < deadline, "the staff e-mail never reached the SMTP server"
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _uncertain_after_tick(cli: RunCli, server: StallingSmtp) -> int:
    """`tick` after the crash: the interrupted e-mail step becomes `uncertain`, loudly (exit 1), and staff are
    told once, with the command that settles it."""
    server.stall.clear()  # from now on the server answers at once: a resend would show up
    text = cli("tick", now=NOW)
    assert text.returncode == 1, text.stdout + text.stderr
    status = ok_json(cli("status", "--json", now=NOW))
    [sit] = status["open"]
    [row] = [s for s in sit["steps"] if s["sink"] == "staff_mail" and s["step"] == "staff-runbook"]
    assert row["state"] == "uncertain"
    # Only the interrupted send is in doubt; the hourly reminder by e-mail waits for its time, and the message
    # telling staff about the doubt went out.
    assert sorted((s["step"], s["state"]) for s in sit["steps"]
                  if s["sink"] == "staff_mail" and s["step"] != "staff-runbook") == [
        ("staff-reminder", "planned"), ("step-uncertain", "done")]
    assert f"continuity settle {row['id']} sent" in text.stderr
    assert [a["id"] for a in sit["attention"]] == [row["id"]]
    with server.lock:
        [note] = [m for m in server.messages if "Check whether a message went out" in str(m["Subject"])]
    body = note.get_payload(decode=True).decode()
    assert f"step {row['id']}: staff-runbook → staff_mail" in body and "continuity settle ID resend" in body
    # Another tick neither sends it nor flags it nor tells staff again (cron would repeat the alarm every
    # minute); status keeps showing it until someone settles it.
    again = ok_json(cli("tick", "--json", now=NOW))
    assert (again["ran"], again["recovered"], again["uncertain"]) == ([], [], [])
    return int(row["id"])


def _runbook_ids(server: StallingSmtp) -> list[str]:
    """Message-IDs of the staff runbook as the server received it (not the note about it)."""
    with server.lock:
        return [str(m["Message-ID"]) for m in server.messages
                if "Check whether a message went out" not in str(m["Subject"])]


def _staff_mail_state(cli: RunCli, step_id: int) -> str:
    status = ok_json(cli("status", "--json", now=NOW))
    for sit in status["open"]:
        for s in sit["steps"]:
            if s["id"] == step_id:
                return str(s["state"])
    raise AssertionError(f"step {step_id} not in status")


def test_settle_sent_marks_an_uncertain_step_done_and_sends_nothing(
        configure: Configure, cli: RunCli, workdir: Path, smtp: tuple[StallingSmtp, int]) -> None:
    server, port = smtp
    _mail_config(configure, port)
    _outage_killed_mid_send(workdir, server)
    assert len(_runbook_ids(server)) == 1
    step = _uncertain_after_tick(cli, server)

    settled = ok_json(cli("settle", str(step), "sent", "--by", "bela", "--json", now=NOW))

    assert (settled["step"], settled["state"], settled["ran"]) == (step, "done", [])
    assert _staff_mail_state(cli, step) == "done"
    status = ok_json(cli("status", "--json", now=NOW))
    assert status["open"][0]["attention"] == []
    assert ok_json(cli("tick", "--json", now=NOW))["ran"] == []
    time.sleep(0.2)
    assert len(_runbook_ids(server)) == 1, "nothing is sent again"
    report = ok_json(cli("report", str(status["open"][0]["id"]), "--format", "json", now=NOW))
    assert any("confirmed sent by bela" in e["text"] for e in report["timeline"])


def test_settle_resend_sends_the_step_again_exactly_once(
        configure: Configure, cli: RunCli, workdir: Path, smtp: tuple[StallingSmtp, int]) -> None:
    server, port = smtp
    _mail_config(configure, port)
    _outage_killed_mid_send(workdir, server)
    step = _uncertain_after_tick(cli, server)
    [first] = _runbook_ids(server)

    settled = ok_json(cli("settle", str(step), "resend", "--json", now=NOW))

    assert settled["step"] == step
    assert [(r["id"], r["state"]) for r in settled["ran"] if r["sink"] == "staff_mail"] == [(step, "done")]
    assert _staff_mail_state(cli, step) == "done"
    # The same message (same Message-ID, so a deduplicating mail system could drop it) arrived once more.
    assert _runbook_ids(server) == [first, first]
    assert ok_json(cli("tick", "--json", now=NOW))["ran"] == []
    time.sleep(0.2)
    assert len(_runbook_ids(server)) == 2, "sent again exactly once"
    # A step that is no longer uncertain cannot be settled again.
    twice = cli("settle", str(step), "resend", now=NOW)
    assert twice.returncode == 2
    assert f"step {step} is done, not uncertain" in twice.stderr
    assert len(_runbook_ids(server)) == 2
    # The JSON names the step's state once the command is over: it was sent again, so it is done (not the
    # intermediate `failed` that only schedules the resend).
    assert settled["state"] == "done", settled


def test_settle_rejects_a_verdict_it_does_not_know(cli: RunCli) -> None:
    out = cli("settle", "1", "maybe", now=NOW)
    assert out.returncode == 2
    assert "sent" in out.stderr and "resend" in out.stderr


def test_confirm_not_sent_whose_resend_fails_exits_1_and_says_so(
        configure: Configure, cli: RunCli, workdir: Path, smtp: tuple[StallingSmtp, int]) -> None:
    """`confirm ID --not-sent` is the older spelling of `settle ID resend` and still works."""
    server, port = smtp
    _mail_config(configure, port)
    _outage_killed_mid_send(workdir, server)
    step = _uncertain_after_tick(cli, server)
    server.reject.set()  # the mail server now refuses the message for good (5xx: no retry)

    out = cli("confirm", str(step), "--not-sent", "--json", now=NOW)

    assert out.returncode == 1, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    [ran] = [r for r in doc["ran"] if r["id"] == step]
    assert ran["state"] == "failed" and "554" in ran["detail"]
    assert _staff_mail_state(cli, step) == "failed"
    assert len(_runbook_ids(server)) == 1  # only the copy from before the crash
    assert doc["ok"] is False, doc  # as `outage`, `restore` and `retry` say: ok only when nothing failed


def test_a_step_left_running_by_a_killed_process_shows_as_interrupted_at_once(
        configure: Configure, cli: RunCli, workdir: Path, smtp: tuple[StallingSmtp, int]) -> None:
    server, port = smtp
    _mail_config(configure, port)
    _outage_killed_mid_send(workdir, server)

    status = ok_json(cli("status", "--json", now=NOW))  # no tick yet: nothing has recovered the row
    [sit] = status["open"]
    [row] = [s for s in sit["steps"] if s["sink"] == "staff_mail" and s["step"] == "staff-runbook"]
    assert row["state"] == "running" and row["interrupted"] is True
    assert "runs again with the next tick" in row["recovery"]  # e-mail is safe to re-run: its send marks
    assert [a["id"] for a in sit["attention"]] == [row["id"]]
    table = cli("status", now=NOW)
    assert "interrupted" in table.stdout and "INTERRUPTED" in table.stdout, table.stdout
    report = cli("report", str(sit["id"]), now=NOW)
    assert f"step {row['id']} `staff-runbook` → staff_mail: **interrupted**" in report.stdout, report.stdout
    server.stall.clear()
    # The next tick recovers it (the send mark says the message reached its final dot: uncertain).
    cli("tick", now=NOW)
    after = ok_json(cli("status", "--json", now=NOW))
    [again] = [s for s in after["open"][0]["steps"] if s["id"] == row["id"]]
    assert (again["state"], again["interrupted"]) == ("uncertain", False)
