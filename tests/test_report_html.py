"""`continuity report --format html` through the real CLI with the pinned clock: the month's page and one
situation's post-incident page, parsed, with their charts, and nothing that reaches outside the page; the
period's auto-replies, campaigns and maintenance in the JSON."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

from continuity.config.loader import load_config
from continuity.store import open_store
from tests.conftest import Configure, RunCli
from tests.test_history import by_channel, local, month, outage


class Page(HTMLParser):
    """Every start tag with its attributes, the figures' SVGs, and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figure: str | None = None
        self.svg_parts: dict[str, list[str]] = {}
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "figure":
            self.figure = found.get("id")
        elif self.figure:
            self.svg_parts.setdefault(self.figure, []).append(tag)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.figure = None
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def assert_self_contained(html: str, page: Page) -> None:
    """No script, no frame, no link or image to load, no URL anywhere in attributes or CSS."""
    names = {t for t, _ in page.tags}
    assert not names & {"script", "iframe", "link", "img", "object", "embed", "image", "use"}, names
    for tag, attrs in page.tags:
        for key, value in attrs.items():
            assert not (value and re.search(r"(https?:)?//|url\(", value)), (tag, key, value)
    assert "url(" not in "".join(page.styles) and "@import" not in "".join(page.styles)
    assert not re.search(r"https?://", html), re.findall(r"https?://\S{0,40}", html)


def november(cli: RunCli) -> None:
    assert cli("outage", "phone", "--reason", "SIP trunk down", now=local("2026-11-10T10:00")).returncode in (0, 1)
    assert cli("tick", now=local("2026-11-10T10:31")).returncode in (0, 1)
    assert cli("restore", "phone", now=local("2026-11-10T11:30")).returncode in (0, 1)
    outage(cli, "email", "2026-11-20T14:00", "2026-11-20T14:30")


def test_the_month_as_one_self_contained_page_with_its_charts(cli: RunCli) -> None:
    november(cli)
    rows = by_channel(month(cli, "2026-11", "2026-12-07T09:00"))
    assert (rows["phone"]["outages"], rows["phone"]["down_seconds"], rows["phone"]["availability"]) == (
        1, 5400, 0.99792)
    proc = cli("report", "--month", "2026-11", "--format", "html", now=local("2026-12-07T09:00"))
    assert proc.returncode == 0, proc.stderr
    page = parsed(proc.stdout)
    assert_self_contained(proc.stdout, page)
    assert set(page.svg_parts) == {"chart-downtime", "chart-timeline"}
    for chart in page.svg_parts.values():
        assert chart[:2] == ["figcaption", "svg"] and ("path" in chart or "rect" in chart)
    text = " ".join(" ".join(page.text).split())
    # the staff language of the shipped config is English; one bar per day, labelled by the day of the month
    assert "phone line 1 1 hour 30 minutes 99.792 % 1 hour 30 minutes" in text
    assert "email 1 30 minutes 99.931 %" in text
    assert "1 hour mean time to restore" in text
    downtime = proc.stdout.split('id="chart-downtime"')[1].split("</figure>")[0]
    assert downtime.count('class="rect reactive tooltip-trigger"') == 2  # phone on the 10th, email on the 20th
    assert "<desc class=\"value\">90</desc>" in downtime and "<desc class=\"value\">30</desc>" in downtime
    timeline = proc.stdout.split('id="chart-timeline"')[1].split("</figure>")[0]
    assert "#1 2026-11-10 10:00" in timeline and "#2 2026-11-20 14:00" in timeline
    # a month without outages still has its (empty) charts
    quiet = cli("report", "--month", "2026-10", "--format", "html", now=local("2026-12-07T09:00"))
    assert quiet.returncode == 0, quiet.stderr
    assert set(parsed(quiet.stdout).svg_parts) == {"chart-downtime", "chart-timeline"}
    assert "No outages in this period." in quiet.stdout


def test_the_page_speaks_the_staff_language(cli: RunCli, configure: Configure) -> None:
    configure(lambda cfg: cfg["organisation"].update(staff_locale="hu"))
    november(cli)
    proc = cli("report", "--month", "2026-11", "--format", "html", now=local("2026-12-07T09:00"))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(" ".join(parsed(proc.stdout).text).split())
    assert '<html lang="hu">' in proc.stdout and "Kiesés percben naponként" in text
    assert "1 óra 30 perc 99,792 %" in text and "1 óra átlagos helyreállítási idő (MTTR)" in text


def test_one_situation_as_a_post_incident_page_and_its_text_in_local_time(cli: RunCli) -> None:
    november(cli)
    proc = cli("report", "1", "--format", "html", now=local("2026-12-07T09:00"))
    assert proc.returncode == 0, proc.stderr
    page = parsed(proc.stdout)
    assert_self_contained(proc.stdout, page)
    assert set(page.svg_parts) == {"chart-timeline"} and "path" in page.svg_parts["chart-timeline"]
    text = " ".join(" ".join(page.text).split())
    assert "Situation #1: outage of phone" in text and "2026-11-10 10:00 (Europe/Budapest)" in text
    assert "2026-11-10 10:31 +31m website-banner (banner) → website: done" in text
    # the Markdown too: the organisation's local time, as `history` shows it
    md = cli("report", "1", now=local("2026-12-07T09:00")).stdout
    # as the other commands show times (`CET` after them where this machine's clock is in another zone)
    assert re.search(r"- \*\*Opened:\*\* 2026-11-10 10:00( CET)? by tester \(cli\)", md), md
    assert re.search(r"\| 2026-11-10 11:30( CET)? \| \+1h 30m \| closed by tester \|", md), md
    bad = cli("report", "1", "--format", "pdf")
    assert bad.returncode == 2 and "--format" in bad.stderr


def test_the_period_counts_its_own_auto_replies_and_campaigns(cli: RunCli, workdir: Path) -> None:
    november(cli)
    # The auto-responder's decisions, written as the responder writes them (its store methods), a month apart.
    loaded = load_config(workdir / "continuity.yaml")
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        with store.transaction():
            for i, when in enumerate(("2026-10-30T12:00", "2026-11-10T10:05", "2026-11-10T10:20")):
                at = local(when)
                store.insert_autoreply_answer("support", key=f"a{i}", uidvalidity=1, uid=i, received_at=at,
                                              language="hu", situations=[1], recipient="c@example.org",
                                              subject="Re: x", in_reply_to=None, references=[], decided_at=at)
                assert store.claim_autoreply("support", f"a{i}", "t", f"id{i}")
                assert store.set_autoreply_sent("support", f"a{i}", at + timedelta(seconds=5))
            store.insert_autoreply_skip("support", key="s1", uidvalidity=1, uid=9, received_at=local(
                "2026-11-10T10:10"), reason="auto-submitted", language=None, situations=[1],
                decided_at=local("2026-11-10T10:10"))
    finally:
        store.close()
    rep = month(cli, "2026-11", "2026-12-07T09:00")
    assert rep["autoreplies"] == {"answered": 2, "skipped": 1, "skipped_by_reason": {"auto-submitted": 1}}
    assert month(cli, "2026-10", "2026-12-07T09:00")["autoreplies"]["answered"] == 1
    assert rep["campaigns"] == [] and rep["maintenance_minutes"] == 0
    html = cli("report", "--month", "2026-11", "--format", "html", now=local("2026-12-07T09:00")).stdout
    assert "2 answered, 1 skipped (auto-submitted: 1)." in " ".join(html.split())
    assert json.loads(cli("report", "--month", "2026-11", "--format", "json",
                          now=local("2026-12-07T09:00")).stdout)["mttr_seconds"] == 3600


def test_a_campaign_that_ran_is_in_its_month_with_its_load(cli: RunCli, workdir: Path) -> None:
    from tests.campaigns.kit import write

    reg = cli("campaign", "register", str(write(workdir)), now=local("2026-11-23T11:00"))
    assert reg.returncode == 0, reg.stderr
    for when in ("2026-11-29T09:00", "2026-12-01T08:05", "2026-12-03T20:05"):  # brief, launch, end
        assert cli("tick", now=local(when)).returncode in (0, 1)
    loaded = load_config(workdir / "continuity.yaml")
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        with store.transaction():
            store.insert_autoreply_skip("support", key="s1", uidvalidity=1, uid=1, received_at=None, reason="bulk",
                                        language=None, situations=[], decided_at=local("2026-12-02T10:00"))
    finally:
        store.close()
    [run] = month(cli, "2026-12", "2026-12-07T09:00")["campaigns"]
    assert (run["name"], run["run"], run["expected_load"], run["autoreply_mails"]) == ("winter-sale", 1, "2x", 1)
    assert run["starts_at"] == "2026-12-01T07:00:00+00:00" and run["situation_id"] is not None
    assert month(cli, "2026-11", "2026-12-07T09:00")["campaigns"] == []
    html = cli("report", "--month", "2026-12", "--format", "html", now=local("2026-12-07T09:00")).stdout
    assert "winter-sale (run 1) 2026-12-01 08:00 2026-12-03 20:00 2x 1" in " ".join(" ".join(parsed(html).text).split())
