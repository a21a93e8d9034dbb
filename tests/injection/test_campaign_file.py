"""Hostile text in a campaign file (`continuity campaign register FILE`): the title, terms, owner, FAQ link,
the codes' conditions, the people briefed, FAQ entries and template answers, and what an agent fills into an
answer (`continuity reply --var`). The campaign is briefed and launched with `continuity tick`, through every
sink of tests/injection/kit.py.

Customers read the title and the FAQ link (banner, notice, automatic answer, status post), staff everything.
FAQ entries and template answers are jinja2 templates by design (the campaign file says so): their author's
template syntax runs, in the sandbox, and is refused at registration when it reaches for anything but the
campaign's own fields; text meant literally is written in {% raw %}. What they render to is never rendered
again, and every other field is plain text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import NOW, RunCli, run_cli
from tests.injection.kit import (
    EMAIL_HEADERS,
    OUTBOX_HEADERS,
    TEAM,
    Mailbox,
    Web,
    hooks,
    hostile,
    inert_html,
    mail,
    mail_text,
    marker,
    outbox_file,
    outbox_mails,
    raw,
    sent_mail,
    shows,
    sink_env,
    smtp_server,
    snapshot,
    strict_json,
    strings,
    write_config,
)
from tests.injection.kit import http_server as web_server

START = NOW + timedelta(days=3)
END = NOW + timedelta(days=5)
LOCALES = ("hu", "en", "sk", "pl")

TITLE = hostile("title", "title", nul=True)
FAQ_URL = "https://shop.example.test/faq?q=" + hostile("faq-url", "tiny")
# Staff-only texts (a question is at most 200 characters, in {% raw %}: tiny).
STAFF_FIELDS = {name: hostile(name) for name in ("terms", "owner", "discount", "min-order", "code-note",
                                                 "people", "faq-a", "answer")}
STAFF_FIELDS["faq-q"] = hostile("faq-q", "tiny")
VAR = hostile("var", "tiny")


def campaign(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "evil-sale",
        "title": TITLE,
        "start": START.isoformat(),
        "end": END.isoformat(),
        "owner": STAFF_FIELDS["owner"],
        "terms": STAFF_FIELDS["terms"],
        "faq_url": FAQ_URL,
        "codes": [{"code": "EVIL26", "discount": STAFF_FIELDS["discount"], "min_order": STAFF_FIELDS["min-order"],
                   "note": STAFF_FIELDS["code-note"]}],
        "channels": ["email", "chat"],
        "wait": {"email": "12h"},
        "brief": {"people": [STAFF_FIELDS["people"]]},
        # The question is text (in raw); the answer shows hostile text too, and the title through a variable:
        # the title's own template syntax must come out as written, not be rendered a second time.
        "faq": {loc: [{"q": raw(STAFF_FIELDS["faq-q"]),
                       "a": raw(STAFF_FIELDS["faq-a"]) + " Title: {{ campaign.title }}"}] for loc in LOCALES},
        "answers": {"thanks": {"vars": ["customer_name"],
                               "text": {loc: "Dear {{ customer_name }}, " + raw(STAFF_FIELDS["answer"])
                                        for loc in LOCALES}}},
    }
    doc.update(changes)
    return doc


def write(directory: Path, doc: dict[str, Any], name: str = "evil.yaml") -> Path:
    path = directory / name
    # safe_dump writes CR, LF and NUL as escapes in double quotes: the file is what an editor would save.
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Run:
    workdir: Path
    box: Mailbox
    web: Web
    banner: dict[str, str]
    reply: str
    faq: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("injection-campaign")
    with smtp_server() as box, web_server() as web:
        write_config(workdir, smtp_port=box.port, http_port=web.port)
        env = sink_env(web)

        def cli(*args: str, at: Any = NOW, check: bool = True) -> str:
            done = run_cli(workdir, *args, now=at, env=env)
            assert done.returncode == 0 or not check, done.stdout + done.stderr
            return done.stdout

        cli("campaign", "register", str(write(workdir, campaign())))
        # The briefing, then the launch; a failed step is test_every_step_went_out's to report.
        cli("tick", at=START + timedelta(minutes=1), check=False)
        reply = cli("reply", "thanks", "--locale", "en", "--var", f"customer_name={VAR}", at=START)
        faq = cli("faq", "--locale", "en", at=START)
        yield Run(workdir, box, web, snapshot(workdir / "site/banner"), reply, faq)


STAFF_STEPS = ("brief", "launch-staff")
CUSTOMER_MAIL_STEPS = ("launch-notice", "launch-autoreply")


def _mail(run: Run, step: str) -> Any:
    return mail(outbox_file(run.workdir, 1, step).read_bytes(), OUTBOX_HEADERS)


def test_every_step_went_out(run: Run) -> None:
    """A title with a line break in it used to fail every mail step ('Header values may not contain linefeed or
    carriage return characters'): the briefing and the customer notice never went out."""
    done = run_cli(run.workdir, "status", "--json", now=START + timedelta(minutes=2), env=sink_env(run.web))
    [sit] = json.loads(done.stdout)["open"]
    states = {s["step"]: s["state"] for s in sit["steps"] if s["phase"] != "undo"}
    bad = {step: state for step, state in states.items() if state not in ("done", "skipped", "planned")}
    assert bad == {}, sit["attention"]


def test_outbox_mails_have_their_own_headers_and_the_title_in_one_subject_line(run: Run) -> None:
    for path in outbox_mails(run.workdir):
        mail(path.read_bytes(), OUTBOX_HEADERS)
    for step in (*STAFF_STEPS, *CUSTOMER_MAIL_STEPS):
        subject = str(_mail(run, step)["Subject"])
        assert shows(subject, TITLE), (step, subject)  # the line break became a space: one header, no Bcc


def test_smtp_messages_have_their_own_headers_and_one_recipient(run: Run) -> None:
    assert len(run.box.messages) >= len(STAFF_STEPS)
    for received in run.box.messages:
        assert received.rcpt_tos == [TEAM]
        mail(received.content, EMAIL_HEADERS)
    for step in STAFF_STEPS:
        sent = mail(sent_mail(run.box, str(_mail(run, step)["X-Continuity-Key"])).content, EMAIL_HEADERS)
        assert shows(str(sent["Subject"]), TITLE)


def test_the_briefing_shows_every_field_as_written(run: Run) -> None:
    for text in (mail_text(_mail(run, "brief")),
                 mail_text(mail(sent_mail(run.box, str(_mail(run, "brief")["X-Continuity-Key"])).content,
                                EMAIL_HEADERS))):
        for name, typed in STAFF_FIELDS.items():
            assert shows(text, typed), name
        # The FAQ answer printed the title through {{ campaign.title }}: its {{ 7*7 }} stayed as written.
        assert shows(text, "Title: " + TITLE)
        assert "Title: 49" not in text and "xxxxxxxxx" not in text


def test_customers_read_the_title_as_text_and_nothing_staff_typed(run: Run) -> None:
    texts = [mail_text(_mail(run, step)) for step in CUSTOMER_MAIL_STEPS]
    texts += [" ".join(strings(strict_json(outbox_file(run.workdir, 1, "launch-status").read_bytes())))]
    for text in texts:
        assert shows(text, TITLE)
        for name in STAFF_FIELDS:
            assert marker(name) not in text, name


def test_banner_file_json_and_html(run: Run) -> None:
    doc = strict_json(run.banner["continuity-banner.json"].encode())
    [entry] = doc["banners"].values()
    for loc in LOCALES:
        texts = entry["locales"][loc]
        assert shows(texts["title"], TITLE) and shows(texts["body"], TITLE)
        assert marker("faq-url") in texts["body"]
    text = inert_html(run.banner["continuity-banner.html"])
    assert shows(text, TITLE)
    assert '<a href="https://shop.example.test/faq?q=INJ-faq-url">' in run.banner["continuity-banner.html"]


def test_chat_webhook_and_http_post_documents(run: Run) -> None:
    chats = [strict_json(r.body) for r in run.web.on("/chat")]
    assert any(shows(c["title"], TITLE) for c in chats)  # the staff messages' subjects
    assert any(shows(c["message"], STAFF_FIELDS["terms"]) for c in chats)  # the briefing
    for step in ("brief", "launch-banner", "launch-notice", "launch-status"):
        [doc] = hooks(run.web, 1, step)
        assert any(shows(s, TITLE) for s in strings(doc["messages"])), step
    [toot] = [strict_json(r.body) for r in run.web.on("/toot")]
    assert set(toot) == {"status", "title", "step"} and shows(toot["status"], TITLE)


def test_an_agents_variable_is_pasted_as_typed(run: Run) -> None:
    assert shows(run.reply, "Dear " + VAR + ", " + STAFF_FIELDS["answer"])
    assert shows(run.faq, STAFF_FIELDS["faq-q"]) and shows(run.faq, STAFF_FIELDS["faq-a"])


# --- refused at registration ------------------------------------------------------------------------------------


def _refused(cli: RunCli, workdir: Path, doc: dict[str, Any]) -> list[dict[str, Any]]:
    done = cli("campaign", "register", str(write(workdir, doc)), "--json", now=NOW)
    assert done.returncode == 2, done.stdout + done.stderr
    errors: list[dict[str, Any]] = json.loads(done.stdout)["errors"]
    assert cli("campaign", "list", "--json", now=NOW).stdout.strip() in ("[]", "")  # nothing registered
    return errors


def test_faq_and_answer_templates_reaching_outside_the_sandbox_are_refused(cli: RunCli, workdir: Path) -> None:
    reaching = {
        "hu": "{{ config }}",  # not a variable here: StrictUndefined
        "en": "{{ ''.__class__.__mro__[1].__subclasses__() }}",  # the sandbox's unsafe attribute
        "sk": "{{ lipsum.__globals__ }}",
        "pl": "{% for x in range(10**9) %}x{% endfor %}",  # the sandbox's range limit
    }
    doc = campaign(faq={loc: [{"q": "Q?", "a": text}] for loc, text in reaching.items()},
                   answers={"thanks": {"vars": [], "text": {loc: "{{ cycler.__init__.__globals__ }}"
                                                            for loc in LOCALES}}})
    errors = _refused(cli, workdir, doc)
    fields = {e["field"] for e in errors}
    assert {f"faq.{loc}[0].a" for loc in LOCALES} <= fields, errors
    assert {f"answers.thanks.text.{loc}" for loc in LOCALES} <= fields, errors
    assert any("unsafe" in e["message"] for e in errors)


def test_codes_and_variable_names_with_markup_are_refused(cli: RunCli, workdir: Path) -> None:
    doc = campaign(codes=[{"code": "<script>alert(1)</script>", "discount": "10%"}],
                   answers={"thanks": {"vars": ["x }}{{ 7*7"], "text": {loc: "x" for loc in LOCALES}}})
    errors = _refused(cli, workdir, doc)
    fields = {e["field"] for e in errors}
    assert "codes[0].code" in fields and any(f.startswith("answers.thanks.vars") for f in fields), errors
