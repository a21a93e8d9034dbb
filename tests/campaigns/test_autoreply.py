"""Customers who email during a live campaign get the prepared answer about longer waits: the launch switches
the `autoreply` step on exactly once, the end switches it off, and with the phone down at the same time one
combined answer covers both. The last test runs the real responder against Dovecot and aiosmtpd."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuity.autoreply.compose import Composer
from continuity.autoreply.state import active_parts
from continuity.campaigns import phases
from continuity.campaigns.store import latest_run
from continuity.config.models import LOCALES
from continuity.engine import Engine
from tests.autoreply.respkit import ScriptedRelay, add_mailbox, env_name, mailbox_sink, responder, run_until
from tests.campaigns.kit import WINTER, outbox_text, sent, write
from tests.campaigns.test_phases import BRIEF, END, START, at
from tests.conftest import Configure, MakeEngine, tick
from tests.probes import peerfixtures
from tests.probes.mailpeers import DovecotServer, MailUser, mail_message

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user

STEP = "launch-autoreply"
TEMPLATE = "surge/campaign-autoreply"
PHONE_DOWN = "SIP trunk down at the provider"


def autoreply_rows(eng: Engine) -> list[tuple[str, str, str, datetime]]:
    run = latest_run(eng.store, "winter-sale")
    assert run is not None and run.situation_id is not None
    return [(r.phase, r.sink, r.state, r.due_at) for r in eng.store.steps_for(run.situation_id) if r.step_id == STEP]


def test_the_launch_switches_the_autoreply_on_once_and_the_end_switches_it_off(engine: MakeEngine,
                                                                                workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)
    # Planned at the briefing for the launch moment, not run yet: nobody gets an answer before the start.
    assert autoreply_rows(eng) == [("open", "outbox", "planned", START)]
    assert active_parts(eng.store, "outbox") == []

    at(eng, START - timedelta(minutes=1))
    assert (STEP, "apply") not in sent(workdir)
    at(eng, START, times=3)
    assert autoreply_rows(eng) == [("open", "outbox", "done", START)]
    assert sent(workdir)[(STEP, "apply")] == 1
    [part] = active_parts(eng.store, "outbox")
    assert (part.template, part.since, part.answers_from) == (TEMPLATE, START, START)
    assert part.situation.opened_at == BRIEF  # the surge opened two days earlier; answers start at launch

    prepared = outbox_text(workdir, STEP)
    for expected in ("Winter Sale", "https://shop.example.test/winter/faq", "within about 12 hours",
                     "kb. 12 óra alatt", "približne 12 hodín", "e-maile: 12 godzin"):
        assert expected in prepared, expected
    assert "WINTER15" not in prepared  # the codes stay on the FAQ page

    at(eng, END - timedelta(minutes=1))
    assert sent(workdir)[(STEP, "apply")] == 1 and (STEP, "undo") not in sent(workdir)
    at(eng, END, times=3)
    assert [row[:3] for row in autoreply_rows(eng)] == [("open", "outbox", "undone"), ("undo", "outbox", "done")]
    assert sent(workdir)[(STEP, "apply")] == 1 and sent(workdir)[(STEP, "undo")] == 1
    assert active_parts(eng.store, "outbox") == []
    assert "launch-autoreply" in outbox_text(workdir, "summary")  # listed among what was switched off


def test_cancelled_before_launch_nobody_is_answered(engine: MakeEngine, workdir: Path) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)
    phases.cancel(eng, "winter-sale", by="marketing")
    at(eng, END)
    assert [row[:3] for row in autoreply_rows(eng)] == [("open", "outbox", "cancelled")]
    assert (STEP, "apply") not in sent(workdir) and (STEP, "undo") not in sent(workdir)


@pytest.mark.parametrize("locale", LOCALES)
def test_one_combined_answer_covers_the_campaign_and_a_phone_outage(engine: MakeEngine, workdir: Path,
                                                                    locale: str) -> None:
    eng = engine()
    phases.register(eng, write(workdir), by="marketing")
    at(eng, BRIEF)
    at(eng, START + timedelta(hours=1))
    campaign_only = Composer(eng.loaded, eng.clock).text(active_parts(eng.store, "outbox"), locale)
    eng.open("phone", reason=PHONE_DOWN, eta=timedelta(hours=2), by="tester")
    tick(eng)

    parts = active_parts(eng.store, "outbox")
    assert [(p.situation.kind, p.template) for p in parts] == [("surge", TEMPLATE), ("outage", "outage/autoreply")]
    subject, body = Composer(eng.loaded, eng.clock).text(parts, locale)
    phone_only = Composer(eng.loaded, eng.clock).text(parts[1:], locale)
    from continuity.variables import CAUSES

    for expected in ("Winter Sale", "https://shop.example.test/winter/faq", CAUSES["unknown"][locale],
                     "Example Webshop"):
        assert expected in body, expected
    assert PHONE_DOWN not in body  # the staff's words stay with staff
    greeting = campaign_only[1].splitlines()[0]
    assert greeting == phone_only[1].splitlines()[0] and body.count(greeting) == 1  # greets once, signs once
    assert body.count("Example Webshop") == 1
    assert "{{" not in body and subject and subject != campaign_only[0]
    wait = {"en": "12 hours", "hu": "12 óra", "sk": "12 hodín", "pl": "12 godzin"}[locale]
    assert wait in body

    eng.close("phone", by="tester")
    tick(eng)
    assert Composer(eng.loaded, eng.clock).text(active_parts(eng.store, "outbox"), locale) == campaign_only


# The real responder ----------------------------------------------------------------------------------------------


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    with ScriptedRelay(mode="swallow") as server:
        yield server


def test_mail_is_answered_from_the_launch_on_not_since_the_briefing(
        configure: Configure, engine: MakeEngine, workdir: Path, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    configure(lambda cfg: add_mailbox(cfg, "support", mailbox_sink(dovecot, mail_user, relay)))

    def deliver(subject: str, sender: str) -> str:
        raw = mail_message(subject, "Hello, where is my order from yesterday?\n", sender=sender, to=mail_user.address)
        dovecot.deliver(mail_user.address, raw, sender=sender)
        return raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()

    # Mail written after the briefing but before the launch is staff's to answer, not the campaign's.
    deliver("Before the sale", "early@example.test")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    text = (WINTER.replace("start: 2026-12-01T08:00:00+01:00", f"start: {start.isoformat()}")
            .replace("end: 2026-12-03T20:00:00+01:00", f"end: {(start + timedelta(days=2)).isoformat()}"))
    eng = engine(start=start - timedelta(days=3), environ={env_name("support"): mail_user.password})
    run = phases.register(eng, write(workdir, text), by="marketing").run
    at(eng, run.opens_at)
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 1.05)

    at(eng, datetime.now(UTC))  # the launch: the responder of mailbox `support` is on
    assert latest_run(eng.store, "winter-sale").state == "live"  # type: ignore[union-attr]
    eng.open("phone", reason=PHONE_DOWN, eta=timedelta(hours=2), by="tester")
    tick(eng)
    during = deliver("Order 1001", "anna@example.test")

    resp = responder(eng)
    asyncio.run(run_until(resp, lambda: resp.counts["sent"] >= 1))
    time.sleep(0.3)
    [answer] = relay.answers()
    assert answer["In-Reply-To"] == during and answer["Subject"] == "Re: Order 1001"
    assert answer["Auto-Submitted"] == "auto-replied"
    content = answer.get_content()
    assert "Winter Sale" in content and "winter/faq" in content and PHONE_DOWN not in content
    assert "We are still looking into the cause." in content  # the outage, by its prepared cause
    assert content.count("Dear Customer") == 1
