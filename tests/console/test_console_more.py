"""The console's later parts against a real daemon, through HTTP as a browser without scripts sends it: the
console on a bind of its own, the prepared cause in Declare and its preview, the campaign form's FAQ and
answer rows (add, remove, every error at its field at once, preview, the campaign's page with what is still
missing), each channel per vantage on the dashboard, and the Slovak and Polish pages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from tests.console.kit import ConsoleSite, cli
from tests.crashkit import free_port, wait_for

Make = Callable[..., ConsoleSite]


def _local(days: float, hour: int) -> str:
    return (datetime.now() + timedelta(days=days)).strftime(f"%Y-%m-%dT{hour:02d}:00")


def _alert(text: str) -> str:
    found = re.search(r'<div class="alert" role="alert">(.*?)</div>', text, re.S)
    assert found, text[:3000]
    return found.group(1)


def test_the_console_on_a_bind_of_its_own(console_site: Make) -> None:
    import urllib.error
    import urllib.request

    port = free_port()
    site = console_site(console=f"{{bind: '127.0.0.1:{port}'}}")
    own = f"http://127.0.0.1:{port}"

    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
                return int(r.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code

    wait_for(lambda: status(f"{own}/console/login") == 200, 10, "the console's own bind")
    assert status(f"{site.url}/console/login") == 404  # not on the daemon's bind any more
    assert status(f"{site.url}/status") == 200 and status(f"{site.url}/healthz") in (200, 503)
    assert status(f"{own}/status") == 404  # the public pages stay on theirs
    from tests.console.kit import Browserless

    c = Browserless(own)
    assert c.sign_in("olga").status == 303
    assert c.get("/console/").status == 200
    site.daemon.stop()  # both binds close with the daemon
    wait_for(lambda: _refused(own), 10, "the console's bind closed")


def _refused(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{url}/console/login", timeout=2)  # noqa: S310 (loopback)
    except urllib.error.HTTPError:
        return False
    except OSError:
        return True
    return False


def test_declare_with_the_cause_customers_read_and_the_slovak_and_polish_pages(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("olga")
    page = c.get("/console/declare")
    assert '<label for="cause">Cause</label>' in page.text
    assert '<option value="power"' in page.text and "There is a power cut at our office." in page.text
    bad = c.post("/console/declare", {"csrf": page.csrf(), "channel": "phone", "reason": "UPS died",
                                      "cause": "aliens", "do": "declare"})
    assert bad.status == 400 and 'id="cause-error"' in bad.text
    assert re.search(r'id="cause"[^>]*aria-invalid="true"', bad.text)
    assert site.status_json()["open"] == []
    shown = c.post("/console/declare", {"csrf": page.csrf(), "channel": "phone", "reason": "UPS died",
                                        "cause": "power", "do": "preview"})
    assert shown.status == 200
    causes = re.search(r'id="preview-cause".*?</ul>', shown.text, re.S)
    assert causes is not None
    for sentence in ("There is a power cut at our office.", "Irodánkban áramszünet van.",
                     "V našej kancelárii je výpadok elektriny.", "W naszym biurze nie ma prądu."):
        assert sentence in causes.group(0)
    # The customers' own texts of the playbook carry it too, in their languages; the staff's reason does not.
    customer = [t for t in re.findall(r'<pre lang="(\w+)">(.*?)</pre>', shown.text, re.S)
                if "áramszünet" in t[1] or "power cut" in t[1]]
    assert {lang for lang, _ in customer} >= {"hu", "en"}
    assert site.status_json()["open"] == []
    done = c.post("/console/declare", {"csrf": page.csrf(), "channel": "phone", "reason": "UPS died",
                                       "cause": "power", "do": "declare"})
    assert done.status == 303
    opened = site.status_json()["open"]
    assert len(opened) == 1 and opened[0]["opened_by"] == "olga"
    # The status page tells customers the prepared sentence, never the staff's reason.
    public = site.client().get("/status.json").text
    assert "Irodánkban áramszünet van." in public and "UPS died" not in public, public[-3000:]

    # The same pages in Slovak and Polish.
    expected = {"sk": ("Prehľad", "Nahlásiť výpadok", "Odhlásiť sa", "Príčina pre zákazníkov",
                       "Otázka FAQ č. 1, odpoveď</a>: Povinné: otázka aj odpoveď."),
                "pl": ("Pulpit", "Zgłoś awarię", "Wyloguj się", "Przyczyna dla klientów",
                       "Pytanie FAQ nr 1, odpowiedź</a>: Wymagane: zarówno pytanie, jak i odpowiedź.")}
    for lang, (dashboard, declare, sign_out, cause, half_row) in expected.items():
        switched = c.get(f"/console/lang/{lang}?next=/console/declare")
        assert switched.status == 303 and switched.headers["location"] == "/console/declare"
        page = c.get("/console/declare")
        assert page.headers["content-language"] == lang and f'<html lang="{lang}">' in page.text
        assert f"<h1>{declare}</h1>" in page.text and sign_out in page.text and cause in page.text
        assert f">{dashboard}<" in page.text
        for path in ("/console/", "/console/campaigns", "/console/maintenance", "/console/autoreply"):
            assert c.get(path).status == 200, (lang, path)
        campaign = c.post("/console/campaigns/new", _campaign(page.csrf(), **{"faq-0-q": "?", "do": "preview"}))
        assert campaign.status == 400 and half_row in _alert(campaign.text)
        bad = c.post("/console/declare", {"csrf": page.csrf(), "channel": "phone", "reason": "", "do": "declare"})
        assert bad.status == 400
    assert "Opisz, co nie działa" in _alert(bad.text)
    assert len(site.status_json()["open"]) == 1  # the refused forms changed nothing


def _campaign(csrf: str, **more: str) -> dict[str, str]:
    return {"csrf": csrf, "name": "spring-sale", "starts": _local(5, 9), "ends": _local(7, 20),
            "timezone": "Europe/Budapest", "terms": "10% off everything", "channels": "email chat", **more}


FAQ = {"faq-0-locale": "hu", "faq-0-q": "Meddig tart?", "faq-0-a": "Vasárnap estig.",
       "faq-1-locale": "en", "faq-1-q": "Until when?", "faq-1-a": "Until Sunday evening.",
       "faq-2-locale": "sk", "faq-2-q": "Dokedy?", "faq-2-a": "Do nedele večera.",
       "faq-3-locale": "pl", "faq-3-q": "Do kiedy?", "faq-3-a": "Do niedzieli wieczorem."}
ANSWER = {"answer-0-name": "code-help", "answer-0-vars": "order_id",
          "answer-0-text-en": "Order {{ order_id }}: the code applies at checkout.",
          "answer-0-text-hu": "{{ order_id }} rendelés: a kód a pénztárnál érvényes.",
          "answer-0-text-sk": "Objednávka {{ order_id }}: kód platí pri pokladni.",
          "answer-0-text-pl": "Zamówienie {{ order_id }}: kod działa przy kasie."}


def test_campaign_rows_errors_preview_and_the_campaigns_page(console_site: Make) -> None:
    site = console_site()
    c = site.client()
    c.sign_in("mark")
    form = c.get("/console/campaigns/new")
    assert 'name="faq-0-q"' in form.text and 'name="answer-0-text-pl"' in form.text
    assert 'name="faq-1-q"' not in form.text
    csrf = form.csrf()

    # "Add FAQ entry" sends the form back with one more row, keeping what was typed; nothing is stored.
    more = c.post("/console/campaigns/new", _campaign(csrf, **{"faq-0-q": "Meddig tart?", "do": "add-faq"}))
    assert more.status == 200 and 'value="Meddig tart?"' in more.text
    assert 'name="faq-1-q"' in more.text and 'name="faq-2-q"' not in more.text
    assert 'role="alert"' not in more.text

    # Every mistake at once, each at its field: a half FAQ row, an answer without its Polish text, a bad
    # code, a bad load, and the end before the start.
    broken = {**FAQ, "faq-0-a": "", **ANSWER, "answer-0-text-pl": "", "codes": "SPRING10", "load": "lots",
              "ends": _local(4, 9)}
    bad = c.post("/console/campaigns/new", _campaign(csrf, **broken, do="register"))
    assert bad.status == 400
    summary = _alert(bad.text)
    for field in ("faq-0-a", "answer-0-text-pl", "codes", "load"):
        assert f'href="#{field}"' in summary, (field, summary)
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"[^>]*aria-describedby="{field}-error', bad.text), field
        assert f'id="{field}-error"' in bad.text
    assert "FAQ entry 1, answer" in summary and "Template answer 1, text (pl)" in summary
    assert bad.text.count('role="alert"') == 1
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []

    # The end before the start is named once the rest is right (the same checks as the CLI's).
    late = c.post("/console/campaigns/new", _campaign(csrf, **FAQ, **ANSWER, ends=_local(4, 9), do="register"))
    assert late.status == 400 and 'href="#ends"' in _alert(late.text)

    # Preview: the briefing and customer texts in every locale, the FAQ and answers, what is missing.
    good = _campaign(csrf, **FAQ, **ANSWER, **{"faq-4-locale": "en", "faq-4-q": "Drop me", "faq-4-a": "x",
                                               "faq-4-remove": "1"})
    shown = c.post("/console/campaigns/new", {**good, "do": "preview"})
    assert shown.status == 200, _alert(shown.text)
    missing = re.search(r'<h2 id="missing">.*?</ul>', shown.text, re.S)
    assert missing is not None and "An owner" in missing.group(0) and "The FAQ page" in missing.group(0)
    assert "FAQ entries" not in missing.group(0)
    langs = set(re.findall(r'<pre lang="(\w+)">', shown.text))
    assert langs >= {"en", "hu", "sk", "pl"}
    assert "Zamówienie [order_id]" in shown.text or "Zamówienie" in shown.text
    assert "Drop me" not in shown.text  # a removed row is gone
    assert json.loads(cli(site.workdir, "campaign", "list", "--json").stdout) == []

    done = c.post("/console/campaigns/new", {**good, "do": "register"})
    assert done.status == 303, _alert(done.text)
    listed = json.loads(cli(site.workdir, "campaign", "list", "--json").stdout)
    assert [(r["name"], r["registered_by"]) for r in listed] == [("spring-sale", "mark")]
    down = yaml.safe_load(c.get("/console/campaigns/spring-sale.yaml").text)
    assert down["faq"]["sk"] == [{"q": "Dokedy?", "a": "Do nedele večera."}]
    assert down["answers"]["code-help"]["vars"] == ["order_id"] and len(down["answers"]["code-help"]["text"]) == 4

    # The campaign's page: its phase, what it still lacks, and the preview.
    page = c.get("/console/campaigns/spring-sale")
    assert page.status == 200 and "upcoming" in page.text
    assert "An owner: who in marketing" in page.text and 'id="brief-preview"' in page.text

    # Edit: the rows come back filled; removing the answer and adding the owner stores version 2 without it.
    edit = c.get("/console/campaigns/spring-sale/edit")
    assert 'value="Dokedy?"' in edit.text and "Objednávka {{ order_id }}" in edit.text
    # The form as the page shows it, the answer ticked for removal and an owner added.
    sent = {**good, "csrf": edit.csrf(), "owner": "Marta from marketing", "answer-0-remove": "1", "do": "register"}
    del sent["faq-4-q"], sent["faq-4-a"], sent["faq-4-locale"], sent["faq-4-remove"]
    saved = c.post("/console/campaigns/spring-sale/edit", sent)
    assert saved.status == 303, _alert(saved.text)
    after = yaml.safe_load(c.get("/console/campaigns/spring-sale.yaml").text)
    assert after["owner"] == "Marta from marketing" and after["answers"] == {}
    assert after["faq"] == down["faq"] and after["codes"] == down["codes"]
    assert after["title"] == down["title"] and after["start"] == down["start"]
    page = c.get("/console/campaigns/spring-sale")
    assert "An owner" not in page.text and "Template answers for agents (hu, en, sk, pl)." in page.text


def _with_vantages(site: ConsoleSite) -> None:
    """The phone line watched from here (central) and from an office agent that never reports, quorum 2."""
    text = site.config.read_text(encoding="utf-8")
    bind = f"  bind: 127.0.0.1:{site.port}\n"
    contact = '    contact: "+36 1 234 5678"\n'
    assert text.count(bind) == 1 and text.count(contact) == 1
    text = text.replace(bind, bind + "  vantage: central\n")
    text = text.replace(contact, contact + "    health:\n      every: 1s\n      quorum: 2\n      probes:\n"
                        f"        - {{type: http, url: 'http://127.0.0.1:{site.port}/status', timeout: 2s, "
                        "vantages: [central, office]}\n")
    site.config.write_text(text, encoding="utf-8")


def test_the_dashboard_shows_each_vantage_of_a_channel_seen_from_several(tmp_path: Path) -> None:
    site = ConsoleSite(tmp_path)
    _with_vantages(site)
    site.daemon.start()
    try:
        c = site.client()
        c.sign_in("vera")

        def both() -> bool:
            text = c.get("/console/").text
            return bool(re.search(r"central: <span class=\"state state-up\">up", text)) and "office: " in text

        wait_for(both, 15, "central up and office listed on the dashboard")
        text = c.get("/console/").text
        assert "down when 2 of them see it down" in text
        office = re.search(r"office: <span class=\"state state-(\w+)\">", text)
        assert office is not None and office.group(1) in ("waiting", "silent")
        chat = re.search(r"<strong>Chat.*?</li>", text, re.S) or re.search(r"<strong>chat.*?</li>", text, re.S)
        assert chat is None or "Seen from" not in chat.group(0)  # a channel seen from one place: no list
        c.get("/console/lang/sk")
        assert "Pozorovacie body" in c.get("/console/").text
    finally:
        site.daemon.stop()
