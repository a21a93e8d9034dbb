"""`continuity outage CHANNEL --dry-run` through the real command: it shows what the command would do given the
store (a new outage, nothing for one already open, the update steps when the ETA moves) and touches nothing.

Each case checks the plan against what the real command then does, so the dry run cannot drift from the engine.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIG_NAME, NOW, STORE_NAME, MakeEngine, RunCli, store_snapshot, tree

REASON = "SIP trunk down at the provider"
ETA = (NOW + timedelta(hours=2)).isoformat()
LATER_ETA = (NOW + timedelta(hours=3, minutes=30)).isoformat()

# The actions of a new outage of the phone, in time order (first runs of repeats only).
NEW_OUTAGE_FIRST = [("staff-runbook", "outbox"), ("customer-notice", "outbox"), ("email-autoreply", "outbox"),
                    ("website-banner", "website"), ("social-post", "outbox"), ("staff-reminder", "outbox")]
ETA_UPDATE = {("staff-eta-update", "outbox", "update"), ("customer-notice", "outbox", "update"),
              ("email-autoreply", "outbox", "update")}


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def dry_run(cli: RunCli, *args: str, minutes: int, as_json: bool = True) -> Any:
    proc = cli("outage", "phone", *args, "--dry-run", *(["--json"] if as_json else []),
               now=NOW + timedelta(minutes=minutes))
    if as_json:
        return ok_json(proc)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


def untouched(workdir: Path) -> tuple[dict[str, tuple[bytes, int]], list[str]]:
    """The store's files (bytes, mtimes) and every file of the working folder (outbox, banners)."""
    return store_snapshot(workdir), tree(workdir)


def test_no_store_yet_plans_the_whole_playbook_and_creates_no_store(workdir: Path, cli: RunCli) -> None:
    plan = dry_run(cli, "--reason", REASON, "--eta", ETA, minutes=0)

    assert (plan["dry_run"], plan["created"], plan["situation_id"]) == (True, True, None)
    steps = [(a["step"], a["sink"]) for a in plan["actions"]]
    assert steps[:6] == NEW_OUTAGE_FIRST
    assert tree(workdir) == [CONFIG_NAME], "no store file, no outbox, no banner"


def test_a_closed_outage_is_not_open_any_more(workdir: Path, cli: RunCli) -> None:
    ok_json(cli("outage", "phone", "--reason", REASON, "--eta", ETA, "--json", now=NOW))
    ok_json(cli("restore", "phone", "--json", now=NOW + timedelta(minutes=10)))
    before = untouched(workdir)

    plan = dry_run(cli, "--reason", REASON, minutes=20)

    assert plan["created"] is True
    assert [(a["step"], a["sink"]) for a in plan["actions"]][:6] == NEW_OUTAGE_FIRST
    assert untouched(workdir) == before


# (case, minutes after the opening, arguments, expected actions (step, sink, group), eta_changed, reason_changed)
OPEN_CASES = [
    ("same reason and ETA", 5, ("--reason", REASON, "--eta", ETA), set(), False, False),
    ("same reason, no ETA given", 5, ("--reason", REASON), set(), False, False),
    ("ETA within the tolerance", 5, ("--reason", REASON, "--eta", (NOW + timedelta(hours=2, minutes=5)).isoformat()),
     set(), False, False),
    ("new reason only", 5, ("--reason", "The provider's exchange is flooded", "--eta", ETA), set(), False, True),
    ("new ETA", 5, ("--reason", REASON, "--eta", LATER_ETA), ETA_UPDATE, True, False),
    ("new reason and ETA", 5, ("--reason", "Flooded exchange", "--eta", LATER_ETA), ETA_UPDATE, True, True),
    # Nobody ran `tick` since the opening: the real command would run the overdue banner and social post too.
    ("overdue steps", 45, ("--reason", REASON, "--eta", ETA),
     {("website-banner", "website", "open"), ("social-post", "outbox", "open")}, False, False),
]


@pytest.mark.parametrize(("minutes", "args", "expected", "eta_changed", "reason_changed"),
                         [case[1:] for case in OPEN_CASES], ids=[case[0] for case in OPEN_CASES])
def test_an_open_outage_shows_only_what_the_command_would_do(
        workdir: Path, cli: RunCli, minutes: int, args: tuple[str, ...],
        expected: set[tuple[str, str, str]], eta_changed: bool, reason_changed: bool) -> None:
    ok_json(cli("outage", "phone", "--reason", REASON, "--eta", ETA, "--json", now=NOW))
    before = untouched(workdir)

    plan = dry_run(cli, *args, minutes=minutes)

    assert untouched(workdir) == before, "the store, the outbox and the banners are untouched"
    assert (plan["created"], plan["situation_id"]) == (False, 1)
    assert (plan["eta_changed"], plan["reason_changed"]) == (eta_changed, reason_changed)
    assert {(a["step"], a["sink"], a["group"]) for a in plan["actions"]} == expected
    assert all(a["preview"].strip() and a["when"].startswith("now") for a in plan["actions"])
    if not expected and not reason_changed:
        assert plan["message"] == "outage #1 of phone is already open; nothing would change"

    # The plan is what the real command then does.
    real = ok_json(cli("outage", "phone", *args, "--json", now=NOW + timedelta(minutes=minutes)))
    assert {(r["step"], r["sink"], r["phase"]) for r in real["ran"]} == expected
    assert (real["created"], real["eta_changed"]) == (False, eta_changed)


def test_the_text_output_says_nothing_would_change(workdir: Path, cli: RunCli) -> None:
    ok_json(cli("outage", "phone", "--reason", REASON, "--eta", ETA, "--json", now=NOW))
    before = untouched(workdir)

    text = dry_run(cli, "--reason", REASON, "--eta", ETA, minutes=1, as_json=False)

    assert "already open" in text and "nothing would change" in text and "nothing was sent or stored" in text
    assert "staff-runbook" not in text and "+0s" not in text
    moved = dry_run(cli, "--reason", REASON, "--eta", LATER_ETA, minutes=1, as_json=False)
    assert "the ETA would change" in moved and "now, on ETA change" in moved
    assert untouched(workdir) == before


def test_a_store_held_open_is_read_through_its_wal(workdir: Path, cli: RunCli, engine: MakeEngine) -> None:
    # A daemon-like process keeps the store open: the outage exists only in the WAL, not yet in the main file.
    eng = engine()
    eng.open("phone", reason=REASON, eta=NOW + timedelta(hours=2), by="daemon", source="daemon")
    assert (workdir / f"{STORE_NAME}-wal").stat().st_size > 0
    before = untouched(workdir)

    plan = dry_run(cli, "--reason", REASON, "--eta", LATER_ETA, minutes=5)

    assert (plan["created"], plan["situation_id"], plan["eta_changed"]) == (False, 1, True)
    # Nothing went out yet (the engine above only planned), so only the staff message is planned; the open
    # steps due at +0s would run as well.
    assert {(a["step"], a["group"]) for a in plan["actions"]} == {
        ("staff-eta-update", "update"), ("staff-runbook", "open"), ("customer-notice", "open"),
        ("email-autoreply", "open")}
    assert untouched(workdir) == before


def test_the_dry_run_shows_the_cause_customers_read_in_every_locale(workdir: Path, cli: RunCli) -> None:
    """The prepared cause as each locale reads it, in the plan and in the customer texts; the staff's own
    words only where published, in their language."""
    from continuity.variables import CAUSES

    plan = dry_run(cli, "--reason", "A szolgáltatónál leállt a SIP trönk", "--cause", "power",
                   "--public-reason", "--reason-locale", "hu", "--eta", ETA, minutes=0)
    assert plan["cause"] == {"hu": CAUSES["power"]["hu"] + " A szolgáltatónál leállt a SIP trönk",
                             "en": CAUSES["power"]["en"], "sk": CAUSES["power"]["sk"], "pl": CAUSES["power"]["pl"]}
    notice = next(a for a in plan["actions"] if a["step"] == "customer-notice")
    assert CAUSES["power"]["hu"] in notice["preview"]  # the first locale's text, rendered with the cause

    text = dry_run(cli, "--reason", REASON, "--cause", "provider", "--eta", ETA, minutes=0, as_json=False)
    assert "Customers read as the cause:" in text
    for locale in ("hu", "en", "sk", "pl"):
        assert f"  {locale}: {CAUSES['provider'][locale]}" in text, locale
    assert tree(workdir) == [CONFIG_NAME]


def test_previews_are_cut_between_words() -> None:
    from continuity.preview import PREVIEW_CHARS, shorten

    words = "Kedves Ügyfelünk! Jelenleg nem érhető el a telefonos ügyfélszolgálat. " * 20
    short = shorten(words)
    assert short.endswith(" …") and len(short) <= PREVIEW_CHARS + 2
    assert words.startswith(short[:-2]) and words[len(short) - 2] == " "  # the next character starts a word
    assert shorten("short text") == "short text"


def test_the_dry_runs_texts_end_on_whole_words(workdir: Path, cli: RunCli) -> None:
    plan = dry_run(cli, "--reason", REASON, "--cause", "provider", "--eta", ETA, minutes=0)
    for action in plan["actions"]:
        shown = action["preview"]
        if shown.endswith(" …"):
            assert not shown[:-2][-1].isspace(), action["step"]
            assert len(shown) <= 402, action["step"]
