"""Broken campaign files: each problem is named with file, line and field, the CLI exits 2 without a
traceback, and nothing is stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from continuity.campaigns import phases
from continuity.campaigns.store import runs
from continuity.config.yamlsrc import pretty_path
from continuity.errors import InputError, InputErrors
from tests.campaigns.kit import WINTER, write
from tests.conftest import NOW, MakeEngine, RunCli

# (case, {line to replace: new text}, text on the line the error must point at, field, message part)
CASES: list[tuple[str, dict[str, str], str, str | None, str]] = [
    ("yaml syntax", {"load: 2x": "load: [2x"}, "wait:", None, "YAML syntax error"),
    ("unknown key", {"load: 2x": "load: 2x\nlaod: 3x"}, "laod: 3x", "laod", "unknown key"),
    ("naive date", {"start: 2026-12-01T08:00:00+01:00": "start: 2026-12-01T08:00:00"}, "start:", "start",
     "no timezone"),
    ("a date alone", {"end: 2026-12-03T20:00:00+01:00": "end: 2026-12-03"}, "end:", "end", "a date alone"),
    ("end before start", {"end: 2026-12-03T20:00:00+01:00": "end: 2026-11-30T20:00:00+01:00"}, "end:", "end",
     "must be after start"),
    ("start in the past", {"start: 2026-12-01T08:00:00+01:00": "start: 2026-11-20T08:00:00+01:00"}, "start:",
     "start", "is in the past"),
    ("short lead", {"start: 2026-12-01T08:00:00+01:00": "start: 2026-11-24T20:00:00+01:00"}, "start:", "start",
     "under the minimum lead of 2d"),
    ("lead under min_lead", {"load: 2x": "load: 2x\nlead: 12h"}, "lead: 12h", "lead", "under the minimum of 2d"),
    ("unknown channel", {"channels: [email, chat]": "channels: [email, fax]"}, "channels:", "channels[1]",
     "unknown channel 'fax'"),
    ("bad load", {"load: 2x": "load: lots"}, "load:", "load", "expected load like 3x"),
    ("missing locale in FAQ", {"  sk:\n    - q: Na ktoré kabáty platí zľava?\n      a: Na všetky kabáty do "
                               "{{ campaign.end }}.\n": ""}, "faq:", "faq", "no FAQ for locale 'sk'"),
    ("missing answer locale", {"      sk: Ďakujeme, {{ customer_name }}! Váš kód je {{ campaign.codes[0].code }}.\n":
                               ""},
     "    text:", "answers.thanks.text", "no text for locale 'sk'"),
    ("template syntax error", {"Thank you, {{ customer_name }}!": "Thank you, {{ customer_name }!"}, "en: Thank",
     "answers.thanks.text.en", "template syntax error"),
    ("undefined variable", {"Thank you, {{ customer_name }}!": "Thank you, {{ customer_name }} ({{ order_id }})!"},
     "en: Thank", "answers.thanks.text.en", "'order_id' is undefined"),
    ("FAQ with undefined variable", {"a: Every coat, until {{ campaign.end }}.": "a: Until {{ campaign.ends }}."},
     "a: Until", "faq.en[0].a", "no field 'ends' here"),
    ("code listed twice", {"channels: [email, chat]": "  - code: winter15\n    discount: 5%\nchannels: [email, chat]"},
     "code: winter15", "codes[1].code", "listed twice"),
]


def _line(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


@pytest.mark.parametrize(("replace", "needle", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_file_is_refused_with_its_location(engine: MakeEngine, workdir: Path, replace: dict[str, str],
                                                   needle: str, field: str | None, message: str) -> None:
    eng = engine()
    path = write(workdir, **replace)
    with pytest.raises(InputError) as caught:
        phases.register(eng, path, by="marketing")
    errors = caught.value.errors if isinstance(caught.value, InputErrors) else [caught.value]
    where = f"{pretty_path(path)}:{_line(path, needle)}" + (f" {field}" if field else "")
    assert any(str(e).startswith(f"{where}: ") and message in str(e) for e in errors), [str(e) for e in errors]
    assert runs(eng.store, include_finished=True) == []
    assert eng.store.conn.execute("SELECT COUNT(*) FROM campaign_versions").fetchone()[0] == 0


def test_a_code_of_an_overlapping_campaign_is_refused(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    other = write(workdir, WINTER.replace("name: winter-sale", "name: coat-week"), name="coats.yaml",
                  **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-12-02T08:00:00+01:00",
                     "end: 2026-12-03T20:00:00+01:00": "end: 2026-12-06T20:00:00+01:00"})
    with pytest.raises(InputError) as caught:
        phases.register(eng, other, by="marketing")
    text = str(caught.value)
    assert f"{pretty_path(other)}:{_line(other, 'code: WINTER15')} codes[0].code: code WINTER15 is also a code of " \
           "campaign 'winter-sale'" in text
    assert [r.name for r in runs(eng.store)] == ["winter-sale"]
    # with another code the overlap on the same channels is only a warning
    fine = write(workdir, other.read_text(encoding="utf-8").replace("WINTER15", "COATS10"), name="coats2.yaml")
    result = phases.register(eng, fine, by="marketing")
    assert len(result.warnings) == 1 and "overlaps campaign 'winter-sale'" in result.warnings[0]
    assert "on email, chat" in result.warnings[0]


def test_the_same_name_cannot_be_registered_twice(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    path = write(workdir)
    phases.register(eng, path, by="marketing")
    with pytest.raises(InputError, match="already registered"):
        phases.register(eng, path, by="marketing")


def _rows(workdir: Path) -> list[tuple[object, ...]]:
    db = workdir / "continuity.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT name, version FROM campaign_versions").fetchall()
        except sqlite3.OperationalError:
            return []


def test_the_cli_exits_2_with_every_error_and_stores_nothing(cli: RunCli, workdir: Path) -> None:
    path = write(workdir, **{"start: 2026-12-01T08:00:00+01:00": "start: 2026-12-01T08:00:00",
                             "load: 2x": "load: lots"})
    bad = cli("campaign", "register", str(path), now=NOW)
    assert bad.returncode == 2, bad.stderr
    assert "Traceback" not in bad.stderr
    assert f"{path.name}:3 start: no timezone" in bad.stderr
    assert _rows(workdir) == []
    assert not (workdir / "continuity.db").exists()  # a bad file does not even create the ledger
    as_json = cli("campaign", "register", str(path), "--json", now=NOW)
    assert as_json.returncode == 2
    doc = json.loads(as_json.stdout)
    assert {(e["line"], e["field"]) for e in doc["errors"]} == {(3, "start"), (12, "load")}
    assert _rows(workdir) == []


def test_every_mistake_of_a_file_is_reported_in_one_run(engine: MakeEngine, workdir: Path) -> None:
    """A schema mistake in an optional field no longer hides the file's other mistakes until it is fixed."""
    eng = engine()
    path = write(workdir, **{"load: 2x": "load: lots",
                             "end: 2026-12-03T20:00:00+01:00": "end: 2026-11-30T20:00:00+01:00",
                             "Thank you, {{ customer_name }}!": "Thank you, {{ customer_name }} ({{ order_id }})!"})
    with pytest.raises(InputErrors) as caught:
        phases.register(eng, path, by="marketing")
    found = [str(e) for e in caught.value.errors]
    shown = pretty_path(path)
    assert any(e.startswith(f"{shown}:{_line(path, 'load: lots')} load: ") for e in found), found
    assert any(e.startswith(f"{shown}:{_line(path, 'end: 2026-11-30')} end: ") and "after start" in e
               for e in found), found
    assert any("'order_id' is undefined" in e for e in found), found
    assert runs(eng.store, include_finished=True) == []
