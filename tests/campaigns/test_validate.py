"""`continuity validate` checks the campaign files lying in the playbook search path with the checks of
`campaign register`, except those that depend on the date or on what is registered; a shipped example that
names a channel this config does not have is a warning, not an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from continuity.campaigns.load import check_files
from continuity.config.loader import load_config
from continuity.config.yamlsrc import pretty_path
from continuity.errors import InputErrors
from tests.campaigns.kit import WINTER, line_of, write
from tests.campaigns.test_bad_files import CASES
from tests.conftest import NOW, REPO, STORE_NAME, Configure, RunCli

# What register refuses only because of the date: validate lets these through.
TIME_ONLY = ("start in the past", "short lead", "lead under min_lead")
EXAMPLE = REPO / "playbooks" / "campaign-example.yaml"


def own_playbooks(configure: Configure) -> Path:
    path = configure(lambda cfg: cfg["paths"].update(playbooks=["my-playbooks"]))
    folder = path.parent / "my-playbooks"
    folder.mkdir()
    return folder


def test_validate_names_every_broken_campaign_file(configure: Configure, workdir: Path, cli: RunCli) -> None:
    folder = own_playbooks(configure)
    expected: list[tuple[str, str]] = []
    for i, (case, replace, needle, field, message) in enumerate(CASES):
        path = write(folder, name=f"campaign-{i:02d}.yaml", **replace)
        if case in TIME_ONLY:
            continue
        where = f"my-playbooks/{path.name}:{line_of(path, needle)}" + (f" {field}" if field else "")
        expected.append((where, message))
    write(folder, name="campaign-good.yaml")

    proc = cli("validate", now=NOW)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout.strip() == ""
    lines = proc.stderr.splitlines()
    for where, message in expected:
        assert any(line.startswith(f"error: {where}: ") and message in line for line in lines), (where, message)
    assert len([line for line in lines if line.startswith("error: ")]) == len(expected)
    for i, (case, *_rest) in enumerate(CASES):  # the date-only problems and the good file are not errors
        if case in TIME_ONLY:
            assert f"campaign-{i:02d}.yaml" not in proc.stderr, case
    assert "campaign-good.yaml" not in proc.stderr
    assert not (workdir / STORE_NAME).exists(), "validate stores nothing"


def test_validate_lists_the_campaign_files_it_checked(configure: Configure, cli: RunCli) -> None:
    folder = own_playbooks(configure)
    write(folder, name="campaign-winter.yaml",
          **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-11-01T08:00:00+01:00"})  # in the past: fine here
    proc = cli("validate", "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = {Path(f["file"]).name: f for f in json.loads(proc.stdout)["campaign_files"]}
    assert set(files) == {"campaign-winter.yaml", "campaign-example.yaml"}
    assert files["campaign-winter.yaml"]["name"] == "winter-sale" and files["campaign-winter.yaml"]["warnings"] == []
    text = cli("validate", now=NOW)
    assert text.returncode == 0 and "2 campaign files" in text.stdout


def test_a_broken_example_campaign_is_caught(configure: Configure, cli: RunCli) -> None:
    """A copy of the shipped example beside the playbooks hides the shipped one, and is checked in full."""
    folder = own_playbooks(configure)
    broken = EXAMPLE.read_text(encoding="utf-8").replace("{{ campaign.codes[1].code }}: in our mobile app",
                                                         "{{ campaign.codes[2].code }}: in our mobile app")
    (folder / EXAMPLE.name).write_text(broken, encoding="utf-8")
    proc = cli("validate", now=NOW)
    assert proc.returncode == 2
    line = line_of(folder / EXAMPLE.name, "- q: Can I combine discount codes?") + 1
    assert f"error: my-playbooks/campaign-example.yaml:{line} faq.en[1].a: " in proc.stderr, proc.stderr
    assert str(EXAMPLE) not in proc.stderr


def _without_phone(cfg: dict[str, Any]) -> None:
    del cfg["channels"]["phone"]
    for ch in cfg["channels"].values():
        ch["fallbacks"] = [f for f in ch.get("fallbacks", [])
                           if (f if isinstance(f, str) else f.get("channel")) != "phone"]


def test_the_shipped_example_only_warns_about_a_channel_this_config_lacks(configure: Configure) -> None:
    loaded = load_config(configure(_without_phone))
    [report] = check_files(loaded, NOW)
    assert Path(report.file).resolve() == EXAMPLE.resolve() and report.name == "black-friday-2026"
    [warning] = report.warnings
    assert f"campaign-example.yaml:{line_of(EXAMPLE, 'channels: [email, chat, phone]')} channels[2]: " in warning
    assert "unknown channel 'phone'" in warning and "shipped example" in warning


def test_the_same_file_of_ones_own_is_an_error(configure: Configure, workdir: Path) -> None:
    folder = own_playbooks(configure)
    loaded = load_config(configure(_without_phone))
    path = write(folder, WINTER.replace("channels: [email, chat]", "channels: [email, phone]"),
                 name="campaign-winter.yaml")
    with pytest.raises(InputErrors) as caught:
        check_files(loaded, NOW)
    [error] = caught.value.errors
    assert str(error).startswith(f"{pretty_path(path)}:{line_of(path, 'channels:')} channels[1]: unknown channel "
                                 "'phone'"), str(error)


def test_a_code_shared_by_two_overlapping_campaign_files_is_an_error(configure: Configure, cli: RunCli) -> None:
    folder = own_playbooks(configure)
    write(folder, name="campaign-a-winter.yaml")
    # Another campaign with WINTER15 on overlapping dates: register would refuse it once the first is in.
    rival = write(folder, name="campaign-b-coats.yaml", **{"name: winter-sale": "name: coat-week",
                                                            "start: 2026-12-01T08:00:00+01:00":
                                                                "start: 2026-12-02T08:00:00+01:00",
                                                            "end: 2026-12-03T20:00:00+01:00":
                                                                "end: 2026-12-06T20:00:00+01:00"})
    # The same code a week later does not overlap: fine.
    write(folder, name="campaign-c-later.yaml", **{"name: winter-sale": "name: spring-coats",
                                                   "start: 2026-12-01T08:00:00+01:00":
                                                       "start: 2026-12-10T08:00:00+01:00",
                                                   "end: 2026-12-03T20:00:00+01:00":
                                                       "end: 2026-12-12T20:00:00+01:00"})
    proc = cli("validate", now=NOW)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    where = f"my-playbooks/{rival.name}:{line_of(rival, '- code: WINTER15')} codes[0].code"
    assert len(errors) == 1 and errors[0].startswith(f"error: {where}: code WINTER15 is also a code of campaign "
                                                     "'winter-sale'"), proc.stderr
    assert "campaign-c-later.yaml" not in proc.stderr

    # A second file of the same campaign is a version of it, not a rival.
    rival.unlink()
    write(folder, name="campaign-b-winter-v2.yaml", **{"terms: 15% off every coat.": "terms: 15% off coats."})
    assert cli("validate", now=NOW).returncode == 0


def test_a_locale_the_shipped_example_lacks_is_a_warning_there_and_an_error_in_ones_own(
        configure: Configure, cli: RunCli) -> None:
    configure(lambda cfg: cfg["organisation"].update(locales=[*cfg["organisation"]["locales"], "de"]))
    proc = cli("validate", "--json", now=NOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [example] = json.loads(proc.stdout)["campaign_files"]
    assert any("no FAQ for locale 'de'" in w and "shipped example" in w for w in example["warnings"])

    folder = own_playbooks(configure)
    write(folder, name="campaign-winter.yaml")  # written for hu, en, sk, pl only
    mine = cli("validate", now=NOW)
    assert mine.returncode == 2
    assert "campaign-winter.yaml" in mine.stderr and "no FAQ for locale 'de'" in mine.stderr
