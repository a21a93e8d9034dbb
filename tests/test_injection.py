"""Hostile text typed on the command line (`outage --reason/--by/--eta`, `restore --note`, `maintenance add
--reason`) through every sink: the outbox (.eml and .json), e-mail through a real SMTP server, chat through
apprise to a real HTTP server, the webhook, an http_post (Mastodon-like) body, the website banner files and the
PBX announcement files. Everywhere the text comes out as text: no header of its own, no markup, no evaluated
template syntax, and every document still parses.

The campaign file is in tests/injection/test_campaign_file.py; the daemon's HTTP API and the public pages
(/status, /banner.json, /voice.xml) in tests/injection/test_public_pages.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, run_cli
from tests.injection.kit import (
    EMAIL_HEADERS,
    EXECUTED,
    OUTBOX_HEADERS,
    TEAM,
    Mailbox,
    Web,
    declare,
    hooks,
    hostile,
    inert_html,
    mail,
    mail_text,
    marker,
    outbox_file,
    outbox_mails,
    sent_mail,
    shown_or_absent,
    shows,
    sink_env,
    smtp_server,
    snapshot,
    strict_json,
    strings,
    write_config,
)
from tests.injection.kit import http_server as web_server

REASON = hostile("reason")
BY = hostile("by", "tiny")
NEW_REASON = hostile("new-reason")
NOTE = hostile("note")
MAINT = hostile("maintenance")


@dataclass
class Run:
    workdir: Path
    box: Mailbox
    web: Web
    banner_open: dict[str, str]  # the banner folder while the outage was open
    banner_maintenance: dict[str, str]  # ... while the maintenance window was announced
    pbx_open: dict[str, str]  # the PBX folder while the outage was open
    banner_closed: dict[str, str]  # ... after restore
    published: bool  # the first reason was published for customers (`--public-reason`)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One phone outage declared, updated and restored, then a chat maintenance window announced; every text
    typed is hostile."""
    workdir = tmp_path_factory.mktemp("injection-cli")
    with smtp_server() as box, web_server() as web:
        write_config(workdir, smtp_port=box.port, http_port=web.port)
        env = sink_env(web)

        def cli(*args: str, at: timedelta = timedelta(0)) -> None:
            done = run_cli(workdir, *args, now=NOW + at, env=env)
            assert done.returncode == 0, done.stdout + done.stderr

        done, published = declare(lambda *a: run_cli(workdir, *a, now=NOW, env=env),
                                  "outage", "phone", "--reason", REASON, "--by", BY, "--eta", "2h")
        assert done.returncode == 0, done.stdout + done.stderr
        banner_open, pbx_open = snapshot(workdir / "site/banner"), snapshot(workdir / "pbx")
        cli("outage", "phone", "--reason", NEW_REASON, "--eta", "3h", at=timedelta(minutes=10))
        cli("restore", "phone", "--note", NOTE, "--by", BY, at=timedelta(minutes=20))
        banner_closed = snapshot(workdir / "site/banner")
        cli("maintenance", "add", "chat", "--start", "2h", "--end", "4h", "--notice", "2h", "--reason", MAINT,
            at=timedelta(minutes=30))
        cli("tick", at=timedelta(minutes=30))
        yield Run(workdir, box, web, banner_open, snapshot(workdir / "site/banner"), pbx_open, banner_closed,
                  published)


def _text(run: Run, sid: int, step: str) -> str:
    return mail_text(mail(outbox_file(run.workdir, sid, step).read_bytes(), OUTBOX_HEADERS))


# Which step shows which text. Staff read what staff typed, quoted as typed; customers read prepared texts.
STAFF_SHOWS = [
    (1, "staff-runbook", [REASON, BY]),
    (1, "staff-eta-update", [NEW_REASON]),
    (1, "staff-resolved", [NEW_REASON, NOTE]),
    (2, "staff-brief", [MAINT]),
]
# The prepared customer notices never contain anything staff typed: absent, not escaped.
CUSTOMER_SILENT = [(1, "customer-notice"), (2, "customer-notice")]
ALL_MARKERS = [marker(m) for m in ("reason", "by", "new-reason", "note", "maintenance")]


def test_every_outbox_mail_has_only_its_own_headers(run: Run) -> None:
    paths = outbox_mails(run.workdir)
    assert len(paths) >= 8
    for path in paths:
        mail(path.read_bytes(), OUTBOX_HEADERS)  # exactly these headers, each once, a one-line Subject


@pytest.mark.parametrize(("sid", "step", "texts"), STAFF_SHOWS)
def test_outbox_mail_quotes_what_was_typed_as_typed(run: Run, sid: int, step: str, texts: list[str]) -> None:
    text = _text(run, sid, step)
    for typed in texts:
        assert shows(text, typed), (step, typed)


def test_the_automatic_answer_shows_a_published_reason_as_text(run: Run) -> None:
    """The automatic answer to customer e-mail shows the reason only when it was published for customers
    (`--public-reason`; the update without it took it back), as plain text: the whole reason as typed, or none
    of it; never a staff name."""
    first, again = sorted((run.workdir / "outbox").glob("*-s1-email-autoreply-apply-*"))
    text = mail_text(mail(first.read_bytes(), OUTBOX_HEADERS))
    assert shown_or_absent(text, REASON) == ("shown" if run.published else "absent")
    shown_or_absent(mail_text(mail(again.read_bytes(), OUTBOX_HEADERS)), NEW_REASON)
    for path in (first, again):
        text = mail_text(mail(path.read_bytes(), OUTBOX_HEADERS))
        assert marker("by") not in text and marker("note") not in text


@pytest.mark.parametrize(("sid", "step"), CUSTOMER_SILENT)
def test_customer_notices_carry_no_staff_text(run: Run, sid: int, step: str) -> None:
    text = _text(run, sid, step)
    for m in ALL_MARKERS:
        assert m not in text
    for bad in ("<script", "onerror", "{{", "{%", "evil"):
        assert bad not in text


def test_outbox_json_files_parse_and_hold_the_text_as_strings(run: Run) -> None:
    docs = [strict_json(p.read_bytes()) for p in sorted((run.workdir / "outbox").glob("*.json"))]
    assert docs  # banners' switch-offs, social posts
    for doc in docs:
        for s in strings(doc):
            for m in ALL_MARKERS:
                if m in s:  # a text that reached a JSON file is whole in one string
                    assert any(shows(s, t) for t in (REASON, BY, NEW_REASON, NOTE, MAINT)), s


def test_smtp_messages_have_their_headers_and_one_recipient(run: Run) -> None:
    assert len(run.box.messages) == len(STAFF_SHOWS)  # the staff route: customers' notices are not mail here
    for received in run.box.messages:
        assert received.rcpt_tos == [TEAM]  # no Bcc smuggled into the envelope
        msg = mail(received.content, EMAIL_HEADERS)
        assert str(msg["To"]) == TEAM


@pytest.mark.parametrize(("sid", "step", "texts"), STAFF_SHOWS)
def test_smtp_bodies_quote_as_typed(run: Run, sid: int, step: str, texts: list[str]) -> None:
    key = str(mail(outbox_file(run.workdir, sid, step).read_bytes(), OUTBOX_HEADERS)["X-Continuity-Key"])
    text = mail_text(mail(sent_mail(run.box, key).content, EMAIL_HEADERS))
    for typed in texts:
        assert shows(text, typed), (step, typed)


def test_chat_gets_json_with_the_text_verbatim(run: Run) -> None:
    posts = [strict_json(r.body) for r in run.web.on("/chat")]
    assert len(posts) >= 5
    for post in posts:
        assert set(post) >= {"title", "message", "type"}
        assert "<a " not in post["message"] and "href" not in post["message"]  # no markdown turned into links
    messages = [p["message"] for p in posts]
    for typed in (REASON, BY, NEW_REASON, NOTE, MAINT):
        assert any(shows(m, typed) for m in messages), typed
    assert not any(m in p["title"] for p in posts for m in ALL_MARKERS)  # titles are the prepared subjects


def test_webhook_documents_parse_and_hold_the_text_as_a_string(run: Run) -> None:
    requests = run.web.on("/hook")
    assert len(requests) >= 10
    for r in requests:
        assert r.headers["Content-Type"] == "application/json; charset=utf-8"
        doc = strict_json(r.body)
        assert set(doc) >= {"operation", "key", "messages", "facts"}
    [runbook] = hooks(run.web, 1, "staff-runbook")
    assert shows(runbook["messages"][0]["body"], REASON) and shows(runbook["messages"][0]["body"], BY)
    assert runbook["facts"]["reason"] == REASON  # the exact text, one JSON string
    notices = hooks(run.web, 1, "customer-notice")  # sent again when the ETA changed
    assert [n["facts"]["reason"] for n in notices] == [REASON, NEW_REASON]
    # The receiver (the team's own code) gets the reason as a fact; the customers' texts do not contain it.
    assert not [m for m in ALL_MARKERS if m in json_text([n["messages"] for n in notices])]


def json_text(doc: Any) -> str:
    return " ".join(strings(doc))


def test_http_post_body_stays_the_template_document(run: Run) -> None:
    posts = [strict_json(r.body) for r in run.web.on("/toot")]
    assert {p["step"] for p in posts} >= {"social-post", "social-update", "social-resolved"}
    for post in posts:
        assert set(post) == {"status", "title", "step"}  # a quote in a text never adds or ends a field


def test_banner_file_holds_the_text_as_json_strings(run: Run) -> None:
    doc = strict_json(run.banner_open["continuity-banner.json"].encode())
    [entry] = doc["banners"].values()
    en, hu = entry["locales"]["en"], entry["locales"]["hu"]
    # The English pack of this test prints the reason (a site's own template may); the shipped Hungarian one not.
    assert shows(en["title"], REASON) and shows(en["body"], REASON)
    assert marker("reason") not in json_text(hu)
    for executed in EXECUTED:
        assert executed not in en["title"]


def test_banner_html_is_text_not_markup(run: Run) -> None:
    html = run.banner_open["continuity-banner.html"]
    text = inert_html(html)
    assert shows(text, REASON)
    assert "<script" not in html and "<img" not in html and "</Say>" not in html
    assert "&lt;script&gt;" in html


def test_banners_of_maintenance_carry_no_staff_text(run: Run) -> None:
    assert [n for n in run.banner_closed if not n.startswith(".")] == []  # restore took the banner down
    doc = strict_json(run.banner_maintenance["continuity-banner.json"].encode())
    assert marker("maintenance") not in json_text(doc)
    inert_html(run.banner_maintenance["continuity-banner.html"])


def test_pbx_announcement_is_one_line_of_text(run: Run) -> None:
    en = run.pbx_open["continuity-announcement.en.txt"]
    assert shows(en, REASON)
    assert en.count("\n") == 1 and "\r" not in en  # one line: a CR/LF in the reason does not start another
    assert marker("reason") not in run.pbx_open["continuity-announcement.hu.txt"]
    strict_json(run.pbx_open[".continuity-announcement.json"].encode())


# --- refused at the door ----------------------------------------------------------------------------------------


def test_hostile_eta_is_refused_and_nothing_happens(workdir: Path) -> None:
    for eta in ("{{ 7*7 }}", "<script>alert(1)</script>", "2h\r\nBcc: evil@example.test", '"}'):
        done = run_cli(workdir, "outage", "phone", "--reason", "trunk down", "--eta", eta, now=NOW)
        assert done.returncode == 2, done.stderr
        assert "--eta" in done.stderr
    assert not (workdir / "outbox").exists() and not (workdir / "site").exists()


def test_text_that_is_not_unicode_is_refused_and_nothing_is_stored(workdir: Path) -> None:
    """An argv that is not UTF-8 (a lone surrogate's bytes, a stray Latin-1 byte): refused, nothing stored or
    sent. (It is refused as an internal error, exit 1, not as bad input, exit 2: see the report.)"""
    import os
    import sqlite3

    base = [sys.executable, "-m", "continuity", "--config", str(workdir / "continuity.yaml")]
    env = dict(os.environ, CONTINUITY_NOW=NOW.isoformat(), CONTINUITY_USER="tester")
    for args in ([b"outage", b"phone", b"--reason", b"lone \xed\xa0\x80 surrogate"],
                 [b"maintenance", b"add", b"chat", b"--start", b"1h", b"--end", b"2h", b"--reason", b"bad \xff"]):
        done = subprocess.run([*base, *args], cwd=workdir, env=env, capture_output=True, timeout=60)
        assert done.returncode != 0
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM situations").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM maintenance").fetchone() == (0,)
    finally:
        conn.close()
    assert not (workdir / "outbox").exists()
