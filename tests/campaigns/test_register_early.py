"""Registering early: a campaign file with only name, start and end registers through the real CLI (title =
name, every customer channel, no terms, codes or FAQ yet); what it lacks shows in `campaign list --json`;
every text it sends reads whole (no "None", no empty sections); and `validate` warns of the gaps once the
briefing is due within campaigns.min_lead, and no longer once they are filled."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from tests.campaigns.kit import WINTER, banner, outbox_text, sent, write
from tests.conftest import NOW, RunCli

EARLY = """\
name: winter-sale
start: 2026-12-01T08:00:00+01:00
end: 2026-12-03T20:00:00+01:00
"""
CUSTOMER_CHANNELS = ["phone", "email", "chat", "social"]  # the example config's channels with a contact


def test_name_start_and_end_are_enough_and_every_text_reads_whole(workdir: Path, cli: RunCli) -> None:
    path = write(workdir, EARLY, name="campaign-early.yaml")
    proc = cli("campaign", "register", str(path), "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(proc.stdout)["campaign"]
    assert info["title"] == "winter-sale" and info["channels"] == CUSTOMER_CHANNELS
    assert info["missing"] == ["terms", "owner", "codes", "faq", "answers", "faq_url"]
    listed = json.loads(cli("campaign", "list", "--json", now=NOW).stdout)
    assert [(r["name"], r["missing"]) for r in listed] == [("winter-sale", info["missing"])]

    # Through the whole campaign: briefing, reminder, launch (banner, notice, status, auto-reply), summary.
    for moment in (info["brief_at"], info["reminder_at"], info["starts_at"]):
        assert cli("tick", now=datetime.fromisoformat(moment) + timedelta(minutes=1)).returncode == 0
    shown = json.dumps(banner(workdir), ensure_ascii=False)  # the website banner, while it is live
    assert "winter-sale: high demand" in shown and "None" not in shown, shown
    assert cli("tick", now=datetime.fromisoformat(info["ends_at"]) + timedelta(minutes=1)).returncode == 0
    steps = {step for step, op in sent(workdir) if op == "apply"}
    assert {"brief", "reminder", "launch-notice", "launch-status", "launch-autoreply", "summary"} <= steps, steps
    for step in steps:
        text = outbox_text(workdir, step)
        assert "None" not in text and "\n\n\n\n" not in text, (step, text)
    brief = outbox_text(workdir, "brief")
    assert "TERMS\nNot given yet: ask marketing" in brief
    assert "FAQ (https://shop.example.test)\nNo entries yet: send customers to the FAQ page." in brief
    assert "(every channel: the campaign names none)" in brief
    assert "Campaign briefing: winter-sale" in brief


def test_the_human_output_says_what_is_still_missing(workdir: Path, cli: RunCli) -> None:
    proc = cli("campaign", "register", str(write(workdir, EARLY, name="early.yaml")), now=NOW)
    assert proc.returncode == 0, proc.stderr
    assert "still missing:  terms, owner, codes, faq, answers, faq_url" in proc.stdout


def test_validate_warns_of_the_gaps_once_the_briefing_is_due(workdir: Path, cli: RunCli) -> None:
    path = write(workdir, EARLY, name="campaign-early.yaml")
    registered = cli("campaign", "register", str(path), "--json", now=NOW)
    assert registered.returncode == 0, registered.stderr
    brief_at = datetime.fromisoformat(json.loads(registered.stdout)["campaign"]["brief_at"])
    assert brief_at - NOW > timedelta(hours=48)

    far = cli("validate", now=NOW)  # the briefing is more than campaigns.min_lead (48h) away: nothing yet
    assert far.returncode == 0 and "winter-sale" not in far.stderr, far.stderr

    soon = brief_at - timedelta(hours=47)
    near = cli("validate", now=soon)
    assert near.returncode == 0, near.stderr
    warnings = [line for line in near.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, near.stderr
    assert warnings[0].startswith(f"warning: {path.name}: campaign winter-sale is briefed "), warnings[0]
    assert "still lacks terms, discount codes, FAQ entries, template answers (terms, codes, faq, answers)" in \
        warnings[0]
    as_json = json.loads(cli("validate", "--json", now=soon).stdout)
    assert as_json["ok"] is True
    assert [(g["name"], g["file"], g["briefed"], g["missing"]) for g in as_json["campaigns_missing"]] == [
        ("winter-sale", path.name, False, ["terms", "codes", "faq", "answers"])]

    # Briefed already and still incomplete: still warned of, in the past tense.
    after = brief_at + timedelta(hours=1)
    assert cli("tick", now=after).returncode == 0
    briefed = cli("validate", now=after)
    assert briefed.returncode == 0 and "campaign winter-sale was briefed" in briefed.stderr, briefed.stderr

    # Filled in (the complete file): no warning any more; the owner and FAQ page alone do not warn.
    full = write(workdir, WINTER, name="campaign-full.yaml")
    updated = cli("campaign", "update", "winter-sale", str(full), now=after)
    assert updated.returncode == 0, updated.stderr
    changed = outbox_text(workdir, "campaign-changed")  # staff briefed on the early version are told
    assert "terms: not given → 15% off every coat." in changed and "None" not in changed, changed
    assert "channels: every customer channel → ['email', 'chat']" in changed
    done = cli("validate", "--json", now=after)
    assert done.returncode == 0 and json.loads(done.stdout)["campaigns_missing"] == []
    listed = json.loads(cli("campaign", "list", "--json", now=after).stdout)
    assert listed[0]["missing"] == ["owner"]


def test_what_is_given_is_no_longer_missing(workdir: Path, cli: RunCli) -> None:
    text = EARLY + "terms: 15% off every coat.\nchannels: [email]\nowner: Anna (marketing)\n"
    proc = cli("campaign", "register", str(write(workdir, text, name="some.yaml")), "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(proc.stdout)["campaign"]
    assert info["missing"] == ["codes", "faq", "answers", "faq_url"] and info["channels"] == ["email"]
