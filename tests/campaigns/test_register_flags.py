"""`campaign register` with the main fields as flags instead of a file: the same model and the same checks,
errors that name the flag, nothing stored when anything is wrong."""

from __future__ import annotations

import json
from pathlib import Path

from continuity.campaigns import phases
from continuity.campaigns.flags import Flags, from_flags
from continuity.campaigns.load import parse
from continuity.campaigns.store import runs
from tests.campaigns.kit import outbox_text, sent
from tests.campaigns.test_phases import BRIEF, END, START, at
from tests.conftest import NOW, STORE_NAME, MakeEngine, RunCli

FLAGS = ("--name", "spring-sale", "--title", "Spring Sale", "--start", "2026-12-01 08:00 Europe/Budapest",
         "--end", "2026-12-03T20:00:00+01:00", "--terms", "10% off every jacket.",
         "--code", "SPRING10=10% off", "--code", "SPRINGAPP=extra 5% in the app", "--channel", "email",
         "--channel", "chat", "--load", "3x", "--faq-url", "https://shop.example.test/spring/faq")

SAME_AS_A_FILE = """\
name: spring-sale
title: Spring Sale
start: 2026-12-01 08:00 Europe/Budapest
end: 2026-12-03T20:00:00+01:00
terms: 10% off every jacket.
codes:
  - code: SPRING10
    discount: 10% off
  - code: SPRINGAPP
    discount: extra 5% in the app
channels: [email, chat]
load: 3x
faq_url: https://shop.example.test/spring/faq
faq: {}
"""


def flags(**change: str | list[str] | None) -> Flags:
    base = Flags(name="spring-sale", title="Spring Sale", start="2026-12-01 08:00 Europe/Budapest",
                 end="2026-12-03T20:00:00+01:00", terms="10% off every jacket.",
                 codes=["SPRING10=10% off", "SPRINGAPP=extra 5% in the app"], channels=["email", "chat"], load="3x",
                 faq_url="https://shop.example.test/spring/faq")
    for key, value in change.items():
        setattr(base, key, value)
    return base


def errors_of(proc: object) -> list[dict[str, object]]:
    import subprocess

    assert isinstance(proc, subprocess.CompletedProcess)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    return list(doc["errors"])


def test_flags_build_the_model_a_file_builds(workdir: Path) -> None:
    path = workdir / "campaign-spring.yaml"
    path.write_text(SAME_AS_A_FILE, encoding="utf-8")
    from_file, _doc = parse(path)
    built, doc = from_flags(flags())
    assert built == from_file
    assert doc.file == "command line"


def test_register_with_flags(workdir: Path, cli: RunCli) -> None:
    proc = cli("campaign", "register", *FLAGS, "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(proc.stdout)
    campaign = info["campaign"]
    assert (campaign["name"], campaign["state"], campaign["source"]) == ("spring-sale", "registered", "command line")
    assert campaign["codes"] == ["SPRING10", "SPRINGAPP"] and campaign["channels"] == ["email", "chat"]
    assert campaign["load"] == "3x" and campaign["starts_at"] == "2026-12-01T07:00:00+00:00"
    assert any("--faq-url: no FAQ entries" in w for w in info["warnings"])
    shown = json.loads(cli("campaign", "show", "spring-sale", "--json", now=NOW).stdout)
    snap = shown["snapshot"]
    assert snap["terms"] == "10% off every jacket." and snap["faq"] == {}
    assert snap["codes"][1]["discount"] == "extra 5% in the app"
    assert snap["faq_url"] == "https://shop.example.test/spring/faq"


def test_every_wrong_flag_is_named_and_nothing_is_stored(workdir: Path, cli: RunCli) -> None:
    proc = cli("campaign", "register", "--title", "Spring Sale", "--start", "2026-12-01 08:00", "--end",
               "2026-12-03T20:00:00+01:00", "--terms", "x", "--code", "SPRING10", "--code", "S=5%", "--channel",
               "email", "--load", "lots", "--json", now=NOW)
    found = {(e["file"], e["field"]): str(e["message"]) for e in errors_of(proc)}
    assert set(found) == {("command line", "--name"), ("command line", "--start"), ("command line", "--code SPRING10"),
                          ("command line", "--code S=5%"), ("command line", "--load")}
    assert found[("command line", "--name")] == "required without a campaign FILE"
    assert "no timezone" in found[("command line", "--start")]
    assert "expected CODE=DESCRIPTION" in found[("command line", "--code SPRING10")]
    assert "expected load like 3x" in found[("command line", "--load")]
    assert not (workdir / STORE_NAME).exists()  # refused before the store was opened


def test_the_register_checks_name_the_flag_too(workdir: Path, cli: RunCli, engine: MakeEngine) -> None:
    args = list(FLAGS)
    args[args.index("chat")] = "fax"
    args[args.index("2026-12-01 08:00 Europe/Budapest")] = "2026-11-24 08:00 Europe/Budapest"
    found = {e["field"]: str(e["message"]) for e in errors_of(cli("campaign", "register", *args, "--json", now=NOW))}
    assert found["--channel fax"].startswith("unknown channel 'fax'")
    assert "under the minimum lead" in found["--start"]
    assert runs(engine().store, include_finished=True) == []

    both = cli("campaign", "register", "campaign.yaml", "--name", "x", now=NOW)
    assert both.returncode == 2 and "error: command line: give either a campaign FILE or the fields" in both.stderr
    neither = cli("campaign", "register", now=NOW)
    assert neither.returncode == 2 and "--name, --start and --end at least (see --help)" in neither.stderr
    assert "Traceback" not in both.stderr + neither.stderr


def test_name_start_and_end_flags_are_enough(cli: RunCli) -> None:
    proc = cli("campaign", "register", "--name", "spring-sale", "--start", "2026-12-01 08:00 Europe/Budapest",
               "--end", "2026-12-03 20:00 Europe/Budapest", "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    campaign = json.loads(proc.stdout)["campaign"]
    assert (campaign["title"], campaign["source"]) == ("spring-sale", "command line")
    assert campaign["missing"] == ["terms", "owner", "codes", "faq", "answers", "faq_url"]


def test_a_campaign_from_flags_runs_its_phases(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    result = phases.register(eng, from_flags(flags(codes=["SPRING10=10% off"])), by="marketing")
    assert result.run.starts_at == START
    at(eng, BRIEF)
    at(eng, START)
    at(eng, END)
    assert sent(workdir)[("brief", "apply")] == sent(workdir)[("launch-autoreply", "apply")] == 1
    assert sent(workdir)[("summary", "apply")] == 1
    brief = outbox_text(workdir, "brief")
    assert "SPRING10" in brief and "https://shop.example.test/spring/faq" in brief
    assert "https://shop.example.test/spring/faq" in outbox_text(workdir, "launch-autoreply")


def test_update_with_flags_changes_only_what_is_given(workdir: Path, cli: RunCli) -> None:
    """A campaign registered from a file (FAQ, answers, conditions of its codes) is extended by a flag; the rest
    of the version is kept, and staff briefed earlier are told exactly what changed."""
    from tests.campaigns.kit import write

    registered = cli("campaign", "register", str(write(workdir)), "--json", now=NOW)
    assert registered.returncode == 0, registered.stderr
    at_brief = BRIEF.isoformat()
    assert cli("tick", now=at_brief).returncode == 0
    proc = cli("campaign", "update", "winter-sale", "--end", "2026-12-05 20:00 Europe/Budapest", "--json",
               now=at_brief)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body = json.loads(proc.stdout)
    assert body["staff_told"] is True and body["campaign"]["version"] == 2
    assert [c.split(" → ")[0] for c in body["changes"]] == ["end: 2026-12-03T20:00:00+01:00"], body["changes"]
    assert body["campaign"]["ends_at"] == "2026-12-05T19:00:00+00:00"
    snap = json.loads(cli("campaign", "show", "winter-sale", "--json", now=at_brief).stdout)["snapshot"]
    assert snap["codes"][0]["min_order"] == "20 000 Ft", "the code's conditions from the file are kept"
    assert set(snap["faq"]) == {"en", "hu", "sk", "pl"} and "thanks" in snap["answers"]
    assert "end:" in outbox_text(workdir, "campaign-changed")

    # --code replaces the codes; a wrong flag is named and nothing changes
    bad = cli("campaign", "update", "winter-sale", "--code", "WINTER20", "--end", "2026-12-01 07:00 Europe/Budapest",
              "--json", now=at_brief)
    found = {e["field"]: str(e["message"]) for e in errors_of(bad)}
    assert "expected CODE=DESCRIPTION" in found["--code WINTER20"]
    shown = json.loads(cli("campaign", "show", "winter-sale", "--json", now=at_brief).stdout)
    assert shown["version"] == 2
    swapped = cli("campaign", "update", "winter-sale", "--code", "WINTER20=20% off every coat", "--json",
                  now=at_brief)
    assert swapped.returncode == 0, swapped.stderr
    assert json.loads(swapped.stdout)["campaign"]["codes"] == ["WINTER20"]

    both = cli("campaign", "update", "winter-sale", "campaign.yaml", "--end", "2026-12-06 20:00 Europe/Budapest",
               now=at_brief)
    assert both.returncode == 2 and "not both" in both.stderr
    neither = cli("campaign", "update", "winter-sale", now=at_brief)
    assert neither.returncode == 2 and "--faq-url (see --help)" in neither.stderr
    assert "Traceback" not in both.stderr + neither.stderr
