"""The answer's text and headers without servers: subjects, recipients, Message-IDs, the combined answer, and
the direct writer (answer_bytes) against the EmailMessage it stands in for."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage

import pytest

from continuity.autoreply.compose import Composer, answer_id, as_bytes, reply_recipient, reply_subject
from continuity.autoreply.message import parse
from continuity.autoreply.state import Part, Pending
from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.sinks.autoreply import AutoreplySettings
from continuity.store.records import SituationRecord
from tests.conftest import NOW


def settings() -> AutoreplySettings:
    from pydantic import SecretStr

    return AutoreplySettings(address="Help@Shop.example.test", imap_host="imap.example.test",
                             imap_password=SecretStr("x"), smtp_host="smtp.example.test")


@pytest.mark.parametrize(("original", "expected"), [
    ("Order 1001", "Re: Order 1001"),
    ("Re: Order 1001", "Re: Order 1001"),
    ("RE: Order", "RE: Order"),
    ("AW: Bestellung", "AW: Bestellung"),
    ("Vá: Rendelés", "Vá: Rendelés"),
    ("Odp: Zamówienie", "Odp: Zamówienie"),
    ("Order\r\n 1001", "Re: Order 1001"),
    ("", "Template subject"),
    ("Reply needed", "Re: Reply needed"),
])
def test_reply_subject(original: str, expected: str) -> None:
    assert reply_subject(original, "Template subject") == expected


def test_reply_goes_to_reply_to_else_from() -> None:
    plain = parse(b"From: Anna <anna@example.test>\r\nTo: help@shop.example.test\r\nSubject: x\r\n\r\nhi\r\n")
    assert reply_recipient(plain) == "anna@example.test"
    replied = parse(b"From: Anna <anna@example.test>\r\nReply-To: Anna Work <ANNA@work.example.test>\r\n"
                    b"To: help@shop.example.test\r\nSubject: x\r\n\r\nhi\r\n")
    assert reply_recipient(replied) == "anna@work.example.test"


def test_answer_message_id_is_stable_per_message_and_differs_between_messages() -> None:
    a = answer_id("help@shop.example.test", "support", "abc@example.test")
    assert a == answer_id("help@shop.example.test", "support", "abc@example.test")
    assert a != answer_id("help@shop.example.test", "support", "abd@example.test")
    assert a.startswith("<autoreply.") and a.endswith("@shop.example.test>")


def situation(sid: int, channel: str, reason: str) -> SituationRecord:
    return SituationRecord(id=sid, kind="outage", channel=channel, playbook=f"outage-{channel}", state="open",
                           source="cli", opened_by="tester", reason=reason, eta=NOW + timedelta(hours=2), note=None,
                           revision=0, opened_at=NOW, closed_at=None, closed_by=None)


@pytest.fixture
def composer(config_path: object) -> Composer:
    from pathlib import Path

    assert isinstance(config_path, Path)
    return Composer(load_config(config_path), ManualClock(NOW + timedelta(minutes=5)))


@pytest.mark.parametrize("locale", ["en", "hu", "sk", "pl"])
def test_combined_answer_greets_once_and_names_every_situation(composer: Composer, locale: str) -> None:
    parts = [Part(situation(1, "phone", "SIP trunk down"), "outage/autoreply"),
             Part(situation(2, "chat", "chat widget broken"), "outage/autoreply")]
    subject, body = composer.text(parts, locale)
    single_subject, single = composer.text(parts[:1], locale)
    from continuity.variables import CAUSES

    cause = CAUSES["unknown"][locale]  # each situation is told by its prepared cause, never the staff's words
    assert body.count(cause) == 2 and single.count(cause) == 1 and subject and single_subject
    assert "SIP trunk down" not in body and "chat widget broken" not in body
    greeting = single.splitlines()[0]
    assert body.count(greeting) == 1
    assert "Example Webshop" in body


def test_direct_writer_matches_the_email_message(composer: Composer) -> None:
    parts = [Part(situation(1, "phone", "SIP trunk down"), "outage/autoreply")]
    refs = tuple(f"<ref{i}.{'x' * 40}@example.test>" for i in range(25))
    pending = Pending(key="orig@example.test", uid=7, recipient="anna@example.test",
                      subject="Rendelés – sürgős kérdés " + "é" * 80, in_reply_to="<orig@example.test>",
                      references=refs, language="hu", situations=(1,), attempts=0)
    s = settings()
    fast = email.message_from_bytes(composer.answer_bytes(pending, parts, s, "support"), policy=email.policy.default)
    slow = email.message_from_bytes(as_bytes(composer.build(pending, parts, s, "support")),
                                    policy=email.policy.default)
    assert isinstance(fast, EmailMessage) and isinstance(slow, EmailMessage)
    for name in ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted",
                 "Content-Language", "X-Loop"):
        assert str(fast[name]) == str(slow[name]), name
    assert fast["Subject"] == "Re: " + pending.subject
    assert str(fast["References"]).split()[-1] == "<orig@example.test>"
    assert len(str(fast["References"]).split()) == 21
    assert fast.get_content() == slow.get_content()
    assert "Kedves Ügyfelünk" in fast.get_content()
    raw = composer.answer_bytes(pending, parts, s, "support")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
