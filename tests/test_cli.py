"""End to end through the real `continuity` command: what on-call staff type, in the order they type it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.shipped import example_config
from tests.conftest import CONFIG_NAME, NOW, STORE_NAME, RunCli, run_cli, store_snapshot, tree

BANNER = Path("site/banner/continuity-banner.json")


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def ok_text(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


def test_init_writes_the_example_and_never_overwrites(tmp_path: Path, cli: RunCli) -> None:
    target = tmp_path / "fresh" / CONFIG_NAME

    first = cli("init", config=target)

    assert "Wrote" in ok_text(first)
    assert target.read_bytes() == example_config().read_bytes()
    target.write_text(target.read_text(encoding="utf-8") + "# my own edits\n", encoding="utf-8")
    edited = target.read_bytes()

    again = cli("init", config=target)

    assert again.returncode == 0  # the quick start can run again; nothing is overwritten
    assert "already exists; left as it is" in again.stderr and "Traceback" not in again.stderr
    assert target.read_bytes() == edited
    assert tree(target.parent) == [CONFIG_NAME]


def test_validate_accepts_the_shipped_config(workdir: Path, cli: RunCli) -> None:
    text = ok_text(cli("validate", now=NOW))
    assert text.startswith("OK")

    info = ok_json(cli("validate", "--json", now=NOW))
    assert info["ok"] is True
    assert info["channels"] == ["phone", "email", "chat", "internet", "social"]
    assert info["sinks"] == {"website": "file_banner", "outbox": "outbox"}
    assert info["channel_playbooks"]["phone"] == "outage-phone"
    assert info["channel_playbooks"]["social"] == "outage-generic"  # no outage-social: the generic one
    assert info["renderings"] > 0
    assert tree(workdir) == [CONFIG_NAME], "validate changes nothing"


def test_an_outage_from_start_to_finish(workdir: Path, cli: RunCli) -> None:
    def at(minutes: int) -> Any:
        return NOW + timedelta(minutes=minutes)

    # 10:00 the phone line dies.
    opened = ok_json(cli("outage", "phone", "--reason", "SIP trunk down at the provider", "--eta", "2h", "--json",
                         now=at(0)))
    assert opened["created"] is True and opened["ok"] is True
    assert {(r["step"], r["state"]) for r in opened["ran"]} == {("staff-runbook", "done"), ("customer-notice", "done"),
                                                                ("email-autoreply", "done")}
    assert len(tree(workdir / "outbox")) == 3

    status = ok_json(cli("status", "--json", now=at(1)))
    (sit,) = status["open"]
    assert (sit["id"], sit["channel"], sit["state"], sit["playbook"]) == (1, "phone", "open", "outage-phone")
    assert sit["reason"] == "SIP trunk down at the provider"
    assert sit["opened_by"] == "tester"
    assert sit["eta"] == (NOW + timedelta(hours=2)).isoformat()
    assert sit["switched_on"] == [{"step": "customer-notice", "sink": "outbox", "action": "notice"},
                                  {"step": "email-autoreply", "sink": "outbox", "action": "autoreply"}]
    assert status["next_due"] == at(30).isoformat()

    # Someone else declares the same outage a moment later: same situation, nobody re-told.
    again = ok_text(cli("outage", "phone", "--reason", "SIP trunk down at the provider", "--eta", "2h", now=at(0)))
    assert "already open" in again and "not re-told" in again
    assert len(tree(workdir / "outbox")) == 3

    # 10:31 cron ticks: banner and social post go out.
    ticked = ok_json(cli("tick", "--json", now=at(31)))
    assert {(r["step"], r["state"]) for r in ticked["ran"]} == {("website-banner", "done"), ("social-post", "done")}
    banner = json.loads((workdir / BANNER).read_text(encoding="utf-8"))
    assert set(banner["banners"]["1"]["locales"]) == {"hu", "en", "sk", "pl"}

    (row,) = ok_json(cli("history", "--json", now=at(35)))  # still the one situation
    assert (row["id"], row["channel"], row["state"], row["duration"]) == (1, "phone", "open", "35m")
    assert {s["step"] for s in row["switched_on"]} == {"customer-notice", "email-autoreply", "website-banner"}

    report_md = ok_text(cli("report", "1", now=at(35)))
    assert report_md.startswith("# Situation #1: outage of phone")
    assert "## Timeline" in report_md and "website-banner (banner) → website: done" in report_md
    report = ok_json(cli("report", "1", "--format", "json", now=at(35)))
    assert report["id"] == 1
    assert [e["offset"] for e in report["timeline"]][0] == "+0s"
    assert any(e["offset"] == "+31m" and "social-post" in e["text"] for e in report["timeline"])

    # 10:40 the line works again.
    restored = ok_json(cli("restore", "phone", "--note", "provider fixed it", "--json", now=at(40)))
    assert restored["closed"] is True
    assert {(r["step"], r["phase"], r["state"]) for r in restored["ran"]} == {
        ("customer-notice", "undo", "done"), ("website-banner", "undo", "done"),
        ("email-autoreply", "undo", "done"), ("staff-resolved", "close", "done"), ("social-resolved", "close", "done"),
        ("customer-restored", "close", "done"),  # the customers told of the outage are told it is over
    }
    assert not (workdir / BANNER).exists()
    after = ok_json(cli("status", "--json", now=at(41)))
    assert after["open"] == [] and after["closed_with_pending_work"] == [] and after["next_due"] is None
    assert "All clear" in ok_text(cli("status", now=at(41)))

    # Restoring twice is harmless.
    store_before = store_snapshot(workdir)[STORE_NAME][0]
    outbox_before = tree(workdir / "outbox")
    twice = ok_text(cli("restore", "phone", now=at(42)))
    assert "No open outage of phone" in twice
    assert tree(workdir / "outbox") == outbox_before
    assert store_snapshot(workdir)[STORE_NAME][0] == store_before


def test_a_changed_eta_re_tells_customers(workdir: Path, cli: RunCli) -> None:
    ok_json(cli("outage", "phone", "--reason", "SIP trunk down", "--eta", "2h", "--json", now=NOW))

    changed = ok_json(cli("outage", "phone", "--reason", "SIP trunk down", "--eta", "14:30", "--json",
                          now=NOW + timedelta(minutes=10)))

    assert changed["created"] is False and changed["eta_changed"] is True
    # 14:30 in Budapest (UTC+1 in November).
    assert changed["situation"]["eta"] == NOW.replace(hour=13, minute=30).isoformat()
    assert {(r["step"], r["phase"]) for r in changed["ran"]} == {("staff-eta-update", "update"),
                                                                 ("customer-notice", "update"),
                                                                 ("email-autoreply", "update")}


def test_dry_run_shows_every_action_and_touches_nothing(workdir: Path, cli: RunCli) -> None:
    text = ok_text(cli("outage", "phone", "--reason", "SIP trunk down", "--eta", "2h", "--dry-run", now=NOW))
    for word in ("Dry run", "nothing was sent or stored", "notify", "banner", "+30m", "on ETA change", "on restore"):
        assert word in text

    plan = ok_json(cli("outage", "phone", "--reason", "SIP trunk down", "--eta", "2h", "--dry-run", "--json",
                       now=NOW))

    assert plan["dry_run"] is True
    steps = [(a["step"], a["sink"]) for a in plan["actions"]]
    assert steps[:6] == [("staff-runbook", "outbox"), ("customer-notice", "outbox"), ("email-autoreply", "outbox"),
                         ("website-banner", "website"), ("social-post", "outbox"), ("staff-reminder", "outbox")]
    assert ("staff-resolved", "outbox") in steps and ("social-resolved", "outbox") in steps
    assert all(a["preview"].strip() for a in plan["actions"])
    assert tree(workdir) == [CONFIG_NAME], "a dry run creates no store, outbox or banner"


def test_schema_is_json_schema_of_the_config(cli: RunCli) -> None:
    schema = ok_json(cli("schema"))

    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "organisation" in schema["properties"]
    assert "organisation" in schema["required"] and "channels" in schema["required"]


def test_drill_prints_a_timeline_and_writes_only_its_own_folder(workdir: Path, cli: RunCli) -> None:
    private = workdir.parent / "drill-out"

    text = ok_text(cli("drill", "phone", "--outbox", str(private), now=NOW))

    assert "Drill: outage of phone" in text
    assert re.search(r"^\+\s*30m\s+banner\s+website-banner\s.*done", text, re.M)
    assert len(re.findall(r"^\+\s*\d+h\s+notify\s+staff-reminder\s.*done", text, re.M)) >= 2
    assert re.search(r"switch off\s+website-banner\s.*done", text)
    assert tree(workdir) == [CONFIG_NAME], "a drill touches neither the real store nor the real outbox"
    assert "drill.db" in tree(private)
    assert any(f.startswith("outbox/website/") for f in tree(private))

    data = ok_json(cli("drill", "phone", "--outbox", str(workdir.parent / "drill-json"), "--json", now=NOW))
    assert {line["state"] for line in data["lines"]} == {"done"}
    offsets = [line["offset_seconds"] for line in data["lines"]]
    assert offsets == sorted(offsets) and offsets[-1] > 3600


COMMANDS = ["outage", "restore", "status", "tick", "history", "report", "settle", "retry", "init", "validate",
            "schema", "drill"]


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """`--help` of the program and of every command, run side by side (each is a fresh Python process)."""
    where = tmp_path_factory.mktemp("help")
    calls = {"": ("--help",), "version": ("--version",), **{c: (c, "--help") for c in COMMANDS}}
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        futures = {name: pool.submit(run_cli, where, *args) for name, args in calls.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, helps: dict[str, subprocess.CompletedProcess[str]]) -> None:
    text = ok_text(helps[command])
    assert "Usage:" in text and command in text


def test_program_help_lists_every_command(helps: dict[str, subprocess.CompletedProcess[str]]) -> None:
    text = ok_text(helps[""])
    for command in COMMANDS:
        assert command in text
    assert ok_text(helps["version"]).startswith("continuity ")
