"""`continuity report --format html` in Slovak and Polish (organisation.staff_locale) through the real CLI:
every word the page's template writes is the language's own, none of the English template's text shows
(the page does not fall back to English), and counts take the noun form their number wants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Configure, RunCli
from tests.test_history import local
from tests.test_report_html import assert_self_contained, november, parsed

ROOT = Path(__file__).resolve().parents[1]


def english(name: str) -> set[str]:
    """The English template's own text: what is left between tags once the Jinja parts are taken out,
    pieces with a word of four letters or more ("MTTR", "#" and the like are the same in every language)."""
    source = (ROOT / "templates" / "en" / "report" / name).read_text(encoding="utf-8")
    source = re.sub(r"<style>.*?</style>", " ", source, flags=re.S)
    source = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", "\n", source, flags=re.S)
    pieces = set()
    for text in re.split(r"<[^>]*>|\n|[()]", source):
        text = " ".join(text.split()).strip(" .,:–—→")
        if re.search(r"[A-Za-z]{4,}", text) and text != "MTTR":
            pieces.add(text)
    return pieces


@pytest.mark.parametrize(("lang", "words"), [
    ("sk", ("2 výpadky", "Dostupnosť", "priemerný čas obnovenia (MTTR)", "1 hodina 30 minút",
            "V tomto období neprebiehala žiadna kampaň.", "Situácia č. 1: výpadok, phone", "Časová os")),
    ("pl", ("2 awarie", "Dostępność", "średni czas przywrócenia działania (MTTR)", "1 godzina 30 minut",
            "W tym okresie nie prowadzono żadnej kampanii.", "Sytuacja nr 1: awaria, phone", "Oś czasu")),
])
def test_the_reports_in_slovak_and_polish_without_english(cli: RunCli, configure: Configure, lang: str,
                                                          words: tuple[str, ...]) -> None:
    configure(lambda cfg: cfg["organisation"].update(staff_locale=lang))
    november(cli)
    month = cli("report", "--month", "2026-11", "--format", "html", now=local("2026-12-07T09:00"))
    one = cli("report", "1", "--format", "html", now=local("2026-12-07T09:00"))
    assert month.returncode == 0 and one.returncode == 0, month.stderr + one.stderr
    # the ledger's own lines (the timeline's "what happened") are data the page quotes, not its words
    quoted = [e["text"] for e in json.loads(cli("report", "1", "--format", "json",
                                                now=local("2026-12-07T09:00")).stdout)["timeline"]]
    shown = ""
    for proc, name in ((month, "month.html.j2"), (one, "situation.html.j2")):
        page = parsed(proc.stdout)
        assert_self_contained(proc.stdout, page)
        assert f'<html lang="{lang}">' in proc.stdout
        text = " ".join(" ".join(page.text).split())
        for line in quoted:
            text = text.replace(" ".join(line.split()), " ")
        left = sorted(p for p in english(name) if p in text)
        assert left == [], (lang, name, left)
        shown += text + " "
    for expected in words:
        assert expected in shown, (lang, expected)
    # a quiet month: the words for none
    quiet = cli("report", "--month", "2026-10", "--format", "html", now=local("2026-12-07T09:00")).stdout
    assert {"sk": "V tomto období nebol žiadny výpadok.", "pl": "W tym okresie nie było żadnej awarii."}[lang] in quiet
    assert {"sk": "0 výpadkov", "pl": "0 awarii"}[lang] in " ".join(" ".join(parsed(quiet).text).split())


def test_the_english_text_it_looks_for_is_found_in_english(cli: RunCli) -> None:
    """The check above can fail: the pieces it reads from the English template are on the English page."""
    november(cli)
    month = cli("report", "--month", "2026-11", "--format", "html", now=local("2026-12-07T09:00")).stdout
    text = " ".join(" ".join(parsed(month).text).split())
    found = {p for p in english("month.html.j2") if p in text}
    assert {"Channels", "Auto-replies", "Campaigns", "mean time to restore"} <= found, found
