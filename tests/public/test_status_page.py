"""/status and /status.json: each customer channel's state and the open situations, in the visitor's
language, autoescaped, with nothing internal (staff names, sink errors, probe details)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from tests.public.conftest import EVIL, MakeSite, Site


def status(s: Site, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = s.get("/status.json" + query, headers)
    assert answer.status == 200
    data: dict[str, Any] = json.loads(answer.body)
    return data


def page(s: Site, query: str = "", headers: dict[str, str] | None = None) -> str:
    answer = s.get("/status" + query, headers)
    assert answer.status == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    # default-src 'none': only the page's own status.js may run, nothing inline, nothing from elsewhere
    assert "script-src 'self';" in answer.headers["content-security-policy"]
    assert re.findall(r"<script[^>]*>", answer.text) == [
        '<script src="status.js" defer data-refresh="60">']
    return answer.text


def test_calm_day(site: MakeSite) -> None:
    s = site()
    data = status(s)
    assert data["overall"] == "up" and data["situations"] == []
    # Customer channels are those with a contact to give out: the office uplink is not one.
    assert [(c["key"], c["status"], c["health"]) for c in data["channels"]] == [
        ("phone", "up", None), ("email", "up", None), ("chat", "up", None), ("social", "up", None)]
    html = page(s)
    assert '<html lang="hu">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Minden elérhetőségünk rendben működik." in html


@pytest.mark.parametrize(("query", "headers", "lang", "words"), [
    ("", {}, "hu", "Üzemzavar: telefonos ügyfélszolgálat"),
    ("?lang=en", {}, "en", "Outage: phone line"),
    ("?lang=PL", {}, "pl", "Awaria: linia telefoniczna"),
    ("", {"Accept-Language": "sk-SK,sk;q=0.9,en;q=0.8"}, "sk", "Výpadok: telefonická linka"),
    ("", {"Accept-Language": "de-DE,de;q=0.9,en-GB;q=0.5"}, "en", "Outage: phone line"),
    ("", {"Accept-Language": "de, fr;q=0.5"}, "hu", "Üzemzavar"),
    ("?lang=xx", {"Accept-Language": "pl"}, "pl", "Awaria"),
])
def test_language_from_query_then_accept_language_then_default(site: MakeSite, query: str,
                                                               headers: dict[str, str], lang: str,
                                                               words: str) -> None:
    s = site()
    s.engine.open("phone", reason="SIP trunk down", eta=timedelta(hours=2), by="tester")
    answer = s.get("/status" + query, headers)
    assert answer.headers["content-language"] == lang
    assert f'<html lang="{lang}">' in answer.text
    assert words in answer.text
    assert status(s, query, headers)["locale"] == lang


def test_outage_with_reason_eta_and_updates(site: MakeSite) -> None:
    s = site()
    s.engine.open("phone", reason="Our phone provider has a fault", eta=timedelta(hours=2), by="Kovács Anna",
                  data={"public_reason": True, "reason_locale": "en"})  # published, written in English
    s.run(timedelta(minutes=5))
    s.engine.open("phone", reason="Our phone provider has a fault", eta=timedelta(hours=3), by="Kovács Anna")
    data = status(s, "?lang=en")
    assert data["overall"] == "outage"
    assert [c["status"] for c in data["channels"] if c["key"] == "phone"] == ["outage"]
    (sit,) = data["situations"]
    assert sit["reason"] == "Our phone provider has a fault"
    assert sit["eta"] == "2026-11-23T13:05:00+00:00"
    assert [u["kind"] for u in sit["updates"]] == ["eta", "opened"]  # newest first
    assert sit["updates"][0]["eta_text"] == sit["eta_text"]
    assert [f["key"] for f in sit["fallbacks"]] == ["email", "chat"]
    html = page(s, "?lang=en")
    assert "Our phone provider has a fault" in html
    assert "New expected fix time: " + sit["eta_text"] in html
    assert "help@shop.example.test" in html
    # Nothing internal: who typed it, sinks, steps, the ledger.
    for secret in ("Kovács", "tester", "outbox", "staff-runbook", "website-banner"):
        assert secret not in html and secret not in json.dumps(data)


def test_reason_is_escaped_in_html_and_plain_in_json(site: MakeSite) -> None:
    s = site()
    s.engine.open("phone", reason=EVIL, by="tester", data={"public_reason": True})
    assert status(s)["situations"][0]["reason"] == EVIL
    html = page(s)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&#34;alert(&#39;x&#39;)&#34;&gt; &amp; " \
           "&#34;quoted&#34;" in html
    assert len(re.findall(r"<script", html)) == 1  # status.js only (page() checks which)


def test_daemon_reasons_are_internal(site: MakeSite) -> None:
    s = site()
    s.engine.open("email", reason="health checks failing: smtp: connection refused 10.0.0.5:25", by="daemon",
                  source="daemon")
    (sit,) = status(s, "?lang=en")["situations"]
    assert sit["reason"] is None
    html = page(s, "?lang=en")
    assert "10.0.0.5" not in html
    assert "We are still looking into the cause." in html  # the prepared `unknown` cause


def test_channel_health_from_the_daemon(site: MakeSite) -> None:
    def probed(cfg: dict[str, Any]) -> None:
        cfg["channels"]["email"]["health"] = {"every": "30s", "fail_after": 1, "probes": [
            {"type": "tcp", "host": "127.0.0.1", "port": 9}]}

    s = site(probed)
    assert {c["key"]: c["status"] for c in status(s)["channels"]}["email"] == "unknown"  # not probed yet
    health, now = s.daemon.health["email"], s.engine.clock.now()
    for observed, shown in (("degraded", "degraded"), ("up", "up"), ("down", "down")):
        health.observe(observed, "", now)
        s.daemon.last_cycle_at["email"] = now
        channel = {c["key"]: c for c in status(s)["channels"]}["email"]
        assert (channel["status"], channel["health"]) == (shown, shown)
    # An open outage says more than the probes do.
    s.engine.open("email", reason="mail provider down", by="tester")
    assert {c["key"]: c["status"] for c in status(s)["channels"]}["email"] == "outage"


def test_maintenance_announced_then_in_progress(site: MakeSite) -> None:
    from continuity.maintenance import add_window

    s = site()
    add_window(s.engine, "phone", start=s.engine.clock.now() + timedelta(hours=1),
               end=s.engine.clock.now() + timedelta(hours=3), notice=timedelta(hours=2),
               reason="PBX firmware upgrade", by="tester")
    s.run()
    data = status(s, "?lang=en")
    (sit,) = data["situations"]
    assert sit["kind"] == "maintenance" and sit["maintenance"]["started"] is False
    assert {c["key"]: c["status"] for c in data["channels"]}["phone"] == "up"  # still works until it starts
    s.run(timedelta(hours=1, minutes=1))
    data = status(s, "?lang=en")
    assert data["overall"] == "maintenance"
    assert data["situations"][0]["maintenance"]["started"] is True
    assert [u["kind"] for u in data["situations"][0]["updates"]][0] == "started"
    assert "Planned maintenance: phone line" in page(s, "?lang=en")


def test_unplanned_surge_reads_as_high_demand(site: MakeSite) -> None:
    # As the daemon opens it when a channel's volume stays over the threshold: its reason is internal.
    s = site()
    s.engine.open("email", kind="surge", playbook="surge-unplanned", reason="mail queue 412 > 150", by="daemon",
                  source="daemon")
    data = status(s, "?lang=en")
    assert data["overall"] == "busy"
    (sit,) = data["situations"]
    assert (sit["kind"], sit["channel"], sit["reason"]) == ("surge", "email", None)
    html = page(s, "?lang=en")
    assert "High demand: email" in html
    assert "We are receiving far more messages than usual; answers may take longer." in html
    assert "We noticed far more messages than usual." in html  # the update, not "started working on ..."
    assert "problem" not in html and "412" not in html
