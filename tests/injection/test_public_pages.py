"""Hostile text on the pages a real `continuity daemon` process serves customers (/status, /status.json,
/banner.json, /voice.xml), typed on the command line (`outage --reason/--by`, `maintenance add --reason`), in a
campaign file (its title) and in the bodies of the daemon's HTTP API (declare, restore, tick). The API's own
outage goes through every sink too, and broken bodies are refused with a JSON answer that changes nothing.

The daemon runs on the system clock; the campaign is registered and launched on a pinned clock so that it is
live now. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli
from tests.crashkit import free_port, wait_for
from tests.injection.kit import (
    EMAIL_HEADERS,
    TEAM,
    TOKEN_ENV,
    Mailbox,
    Web,
    declare,
    hooks,
    hostile,
    inert_html,
    mail,
    mail_text,
    marker,
    shown_or_absent,
    shows,
    sink_env,
    smtp_server,
    strict_json,
    strings,
    write_config,
)
from tests.injection.kit import http_server as web_server

TOKEN = "inj-t0ken"
CLI_REASON = hostile("cli-reason")
CLI_BY = hostile("cli-by", "tiny")
MAINT = hostile("maintenance")
TITLE = hostile("title", "title", nul=True)  # YAML can spell a NUL: "\0"
API_REASON = hostile("api-reason", nul=True)
API_BY = hostile("api-by", "tiny", nul=True)
API_NOTE = hostile("api-note", nul=True)
STAFF_ONLY = [marker(m) for m in ("cli-by", "api-by", "api-note")]  # customers never see staff names or notes
# Bodies the API must refuse: 400 with a JSON error, nothing opened.
BROKEN = {
    "not JSON": b'{"reason": "x"}}',
    "not an object": b'["x"]',
    "reason not text": b'{"reason": {"$ne": ""}}',
    "by not text": b'{"reason": "x", "by": ["x"]}',
    "eta with template syntax": b'{"reason": "x", "eta": "{{ 7*7 }}"}',
    "eta with a header": b'{"reason": "x", "eta": "2h\\r\\nBcc: evil@example.test"}',
}
SURROGATE = b'{"reason": "lone \\ud800 surrogate"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return strict_json(self.body)


@dataclass
class Site:
    workdir: Path
    box: Mailbox
    web: Web
    published: bool  # the phone outage's reason was published for English-reading customers
    pages: dict[str, Answer] = field(default_factory=dict)
    api: dict[str, Answer] = field(default_factory=dict)
    log: str = ""

    def db(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.workdir / "continuity.db")
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


def fetch(port: int, path: str, body: bytes | None = None, token: str | None = None) -> Answer:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers,
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def campaign_file(workdir: Path, start: datetime, end: datetime) -> Path:
    locales = ("hu", "en", "sk", "pl")
    doc = {"name": "evil-sale", "title": TITLE, "start": start.isoformat(), "end": end.isoformat(),
           "terms": "10% off.", "faq_url": "https://shop.example.test/faq", "channels": ["email", "chat"],
           "faq": {loc: [{"q": "Q?", "a": "A."}] for loc in locales}}
    path = workdir / "evil.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("injection-pages")
    with smtp_server() as box, web_server() as web:
        port = free_port()
        write_config(workdir, smtp_port=box.port, http_port=web.port, daemon_port=port)
        env = {**sink_env(web), TOKEN_ENV: TOKEN}

        def cli(*args: str, at: datetime | None = None) -> None:
            done = run_cli(workdir, *args, now=at, env=env)
            assert done.returncode == 0, done.stdout + done.stderr

        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(hours=1)  # live since an hour: registered three days before, launched then
        cli("campaign", "register", str(campaign_file(workdir, start, now + timedelta(days=2))),
            at=start - timedelta(days=3))
        cli("tick", at=start + timedelta(minutes=1))
        done, published = declare(lambda *a: run_cli(workdir, *a, env=env),
                                  "outage", "phone", "--reason", CLI_REASON, "--by", CLI_BY, "--eta", "2h")
        assert done.returncode == 0, done.stdout + done.stderr
        cli("maintenance", "add", "chat", "--start", "1h", "--end", "3h", "--notice", "2h", "--reason", MAINT)
        cli("tick")

        s = Site(workdir, box, web, published)
        log_path = workdir / "daemon.log"
        proc_env = {k: v for k, v in os.environ.items() if k != "CONTINUITY_NOW"}
        proc_env.update(env, CONTINUITY_USER="tester")
        with log_path.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(workdir / "continuity.yaml"),
                                     "daemon", "--log-format", "json"], cwd=workdir, env=proc_env,
                                    stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: _up(port), 20, "the daemon's /healthz")
            s.api["declare"] = fetch(port, "/api/outage/email", json.dumps(
                {"reason": API_REASON, "eta": "2h", "by": API_BY}).encode(), TOKEN)
            for name, path in (("status en", "/status?lang=en"), ("status hu", "/status?lang=hu"),
                               ("status.json", "/status.json?lang=en"), ("banner.json", "/banner.json"),
                               ("voice.xml", "/voice.xml")):
                s.pages[name] = fetch(port, path)
            s.pages["voice.xml POST"] = fetch(port, "/voice.xml", b"CallSid=x&From=%2B3612345678")
            for name, body in BROKEN.items():
                s.api[name] = fetch(port, "/api/outage/chat", body, TOKEN)
            s.api["surrogate"] = fetch(port, "/api/outage/chat", SURROGATE, TOKEN)
            s.api["tick"] = fetch(port, "/api/tick", b'{"reason": "{{ 7*7 }}", "channel": "</Say>"}', TOKEN)
            s.api["restore"] = fetch(port, "/api/restore/email", json.dumps(
                {"note": API_NOTE, "by": API_BY}).encode(), TOKEN)
            s.pages["status.json after"] = fetch(port, "/status.json?lang=en")
            s.pages["healthz"] = fetch(port, "/healthz")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        s.log = log_path.read_text(encoding="utf-8", errors="replace")
        yield s


def _up(port: int) -> bool:
    try:
        return fetch(port, "/healthz").status == 200
    except OSError:
        return False


def _sid(site: Site, channel: str, kind: str = "outage") -> int:
    [(sid,)] = site.db(f"SELECT id FROM situations WHERE channel = '{channel}' AND kind = '{kind}'")
    return int(sid)


# --- the API ------------------------------------------------------------------------------------------------------


def test_api_stores_hostile_text_verbatim(site: Site) -> None:
    answer = site.api["declare"]
    assert answer.status == 200 and answer.json()["created"] is True
    assert site.db("SELECT reason, opened_by, note FROM situations WHERE channel = 'email'") == [
        (API_REASON, API_BY, API_NOTE)]  # stored as sent, NUL and all: escaping is each output's business
    restored = site.api["restore"]
    assert restored.status == 200 and restored.json()["closed"] is True


@pytest.mark.parametrize("name", list(BROKEN))
def test_api_refuses_broken_bodies_with_json(site: Site, name: str) -> None:
    answer = site.api[name]
    assert answer.status == 400, answer.body
    assert answer.json()["ok"] is False
    assert site.db("SELECT COUNT(*) FROM situations WHERE channel = 'chat' AND kind = 'outage'") == [(0,)]


def test_api_refuses_a_lone_surrogate_with_json(site: Site) -> None:
    """JSON can spell a lone surrogate ("\\ud800"); it is no text any store or document can hold, and must be
    refused like any other bad body: 400 with a JSON error. Nothing is stored either way."""
    assert site.db("SELECT COUNT(*) FROM situations WHERE channel = 'chat' AND kind = 'outage'") == [(0,)]
    answer = site.api["surrogate"]
    assert answer.status == 400, (answer.status, answer.body)
    assert answer.json()["ok"] is False


def test_api_tick_ignores_its_body(site: Site) -> None:
    answer = site.api["tick"]
    assert answer.status == 200 and answer.json()["ok"] is True


def test_the_api_outage_reaches_every_sink_as_text(site: Site) -> None:
    sid = _sid(site, "email")
    for received in site.box.messages:
        assert received.rcpt_tos == [TEAM]
        mail(received.content, EMAIL_HEADERS)
    texts = [mail_text(mail(m.content, EMAIL_HEADERS)) for m in site.box.messages]
    assert any(shows(t, API_REASON) and shows(t, API_BY) for t in texts)  # the runbook
    assert any(shows(t, API_NOTE) for t in texts)  # the resolved message
    [runbook] = hooks(site.web, sid, "staff-runbook")
    assert runbook["facts"]["reason"] == API_REASON  # one JSON string, \u0000 escaped
    chats = [strict_json(r.body)["message"] for r in site.web.on("/chat")]
    assert any(shows(c, API_REASON) for c in chats)
    for toot in (strict_json(r.body) for r in site.web.on("/toot")):
        assert set(toot) == {"status", "title", "step"}


# --- the pages ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "hu"])
def test_status_page_shows_typed_reasons_as_text(site: Site, lang: str) -> None:
    answer = site.pages[f"status {lang}"]
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
    html = answer.body.decode("utf-8")
    text = inert_html(html)  # no tag, handler or link from a text; no NUL
    # A campaign is named by its title, escaped. Customers read a prepared cause, and a typed reason only when
    # it was published for them (`--public-reason`, in the language it is written in: English here); the API's
    # and the maintenance window's reasons are not published: absent (they used to be shown, escaped).
    assert shows(text, TITLE)
    assert shown_or_absent(text, CLI_REASON) == ("shown" if site.published and lang == "en" else "absent")
    for typed in (API_REASON, MAINT):
        shown_or_absent(text, typed)
    assert "&lt;script&gt;" in html and "<img" not in html
    for staff in STAFF_ONLY:
        assert staff not in html


def test_status_json_holds_the_reasons_as_strings(site: Site) -> None:
    doc = site.pages["status.json"].json()
    reasons = {s["channel"]: s["reason"] for s in doc["situations"]}
    assert set(reasons) == {"phone", "email", "chat", None}
    # Shown (see the page above) as one string, exactly as typed, control characters but CR/LF/tab blanked.
    for channel, typed in (("phone", CLI_REASON), ("email", API_REASON.replace("\x00", " ")), ("chat", MAINT)):
        if shown_or_absent(reasons[channel] or "", typed) == "shown":
            assert reasons[channel] == typed
    assert (reasons["phone"] == CLI_REASON) is site.published
    assert [s["channel_name"] for s in doc["situations"] if s["kind"] == "surge"] == [TITLE.replace("\x00", " ")]
    for staff in STAFF_ONLY:
        assert staff not in " ".join(strings(doc))
    after = site.pages["status.json after"].json()
    assert "email" not in {s["channel"] for s in after["situations"]}  # restored


def test_banner_json_holds_the_texts_as_strings(site: Site) -> None:
    doc = site.pages["banner.json"].json()
    by_channel = {b["channel"]: b for b in doc["banners"]}
    assert set(by_channel) == {"phone", "email", "chat", None}  # None: the campaign (its scope key is internal)
    for channel, typed in (("phone", CLI_REASON), ("email", API_REASON)):
        en, hu = by_channel[channel]["locales"]["en"], by_channel[channel]["locales"]["hu"]
        assert shows(en["title"], typed) and shows(en["body"], typed)  # this test's English pack prints it
        assert not [m for m in (marker("cli-reason"), marker("api-reason")) if m in json.dumps(hu)]
    assert marker("maintenance") not in json.dumps(by_channel["chat"])  # the shipped banner: no staff text
    for texts in by_channel[None]["locales"].values():
        assert shows(texts["title"], TITLE)
    for staff in STAFF_ONLY:
        assert staff not in json.dumps(doc)


@pytest.mark.parametrize("name", ["voice.xml", "voice.xml POST"])
def test_voice_xml_says_the_reason_as_text(site: Site, name: str) -> None:
    answer = site.pages[name]
    assert answer.status == 200 and answer.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(answer.body)  # well-formed, or this raises
    assert root.tag == "Response"
    assert {el.tag for el in root} <= {"Say", "Pause"} and not list(root.iter("Redirect"))
    says = [(el.get("language"), el.text or "") for el in root if el.tag == "Say"]
    english = " ".join(t for lang, t in says if lang == "en-GB")
    assert shows(english, CLI_REASON) and shows(english, API_REASON)  # this test's English pack says it
    hungarian = " ".join(t for lang, t in says if lang == "hu-HU")
    assert hungarian and marker("cli-reason") not in hungarian and marker("api-reason") not in hungarian
    for staff in STAFF_ONLY:
        assert staff not in answer.body.decode("utf-8")


def test_the_daemon_kept_serving(site: Site) -> None:
    assert site.pages["healthz"].status == 200
    assert TOKEN not in site.log
