"""The outbox sink, driven by the real engine through a phone outage: one file per ledger row, named for
it, `.eml` for mail-like actions and `.json` for the rest, an undo record on restore, and one file only when
a step runs again after a crash.

The shipped example routes the website banner to a banner folder and the phone announcement nowhere; here
both routes point at the outbox too, so every action kind lands in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from continuity.clock import ManualClock
from continuity.engine import Engine
from continuity.runner import Runner
from continuity.sinks.base import Action
from continuity.store.records import StepRecord
from tests.conftest import NOW, Configure, MakeEngine, tick, tree

LOCALES = ["hu", "en", "sk", "pl"]  # the shipped example's organisation.locales; staff read en
REASON = "SIP trunk down at the provider"
ETA = timedelta(hours=2)
# outage-phone's steps that run within its first 30 minutes: (step, action, audience, file type, reversible).
STEPS = [
    ("staff-runbook", "notify", "staff", "eml", False),
    ("customer-notice", "notice", "customers", "eml", True),
    ("email-autoreply", "autoreply", "customers", "eml", True),
    ("phone-announcement", "announce", "customers", "json", True),
    ("website-banner", "banner", "customers", "json", True),
    ("social-post", "post", "customers", "json", False),
]
MAIL_STEPS = [s for s in STEPS if s[3] == "eml"]
JSON_STEPS = [s for s in STEPS if s[3] == "json"]
# Words each locale's body starts with (one per message, in the order of the message's locales).
OPENINGS = {
    "staff-runbook": ["OUTAGE #1: "],
    "customer-notice": ["Kedves Ügyfelünk!", "Dear Customer,", "Dobrý deň,", "Szanowni Państwo,"],
    "email-autoreply": ["Kedves Ügyfelünk!", "Dear Customer,", "Dobrý deň,", "Szanowni Państwo,"],
}
NAME = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)-s(?P<situation>\d+)-(?P<step>[A-Za-z0-9._-]+)-(?P<operation>apply|undo)"
                  r"-(?P<digest>[0-9a-f]{8})\.(?P<ext>eml|json)")
SEPARATOR = "\n\n" + "-" * 40 + "\n\n"  # between the locales of one .eml body
JSON_FIELDS = {"operation", "key", "kind", "situation_id", "step_id", "channel", "audience", "at", "messages", "facts"}


@pytest.fixture
def eng(configure: Configure, engine: MakeEngine) -> Engine:
    configure(lambda cfg: cfg["routes"].update(website=["outbox"], announcement=["outbox"]))
    return engine()


def outbox(workdir: Path) -> list[Path]:
    return [workdir / "outbox" / name for name in tree(workdir / "outbox")]


def files_of(workdir: Path, step: str, operation: str = "apply") -> list[Path]:
    out = []
    for path in outbox(workdir):
        m = NAME.fullmatch(path.name)
        assert m is not None, f"{path.name} does not follow the outbox naming"
        if m["step"] == step and m["operation"] == operation:
            out.append(path)
    return out


def row_of(eng: Engine, step: str, phase: str = "open") -> StepRecord:
    (row,) = [r for r in eng.store.steps_for(1) if r.step_id == step and r.phase == phase and r.sink == "outbox"]
    return row


def expected_action(eng: Engine, row: StepRecord) -> Action:
    """What the runner hands the sink for this row (rendered again on the same clock, so identical)."""
    return Runner(eng).build_action(row)


def open_and_run(eng: Engine, minutes: int = 0) -> None:
    eng.open("phone", reason=REASON, eta=ETA, by="tester")
    tick(eng)
    if minutes:
        advance(eng, timedelta(minutes=minutes))
        tick(eng)


def advance(eng: Engine, delta: timedelta) -> None:
    assert isinstance(eng.clock, ManualClock)
    eng.clock.advance(delta)


@pytest.mark.parametrize(("step", "action", "audience", "ext", "reversible"), STEPS, ids=[s[0] for s in STEPS])
def test_each_step_is_one_file_named_for_its_ledger_row(eng: Engine, workdir: Path, step: str, action: str,
                                                        audience: str, ext: str, reversible: bool) -> None:
    open_and_run(eng, minutes=30)
    row = row_of(eng, step)

    (path,) = files_of(workdir, step)

    m = NAME.fullmatch(path.name)
    assert m is not None
    assert row.state == "done" and row.action == action
    assert m["stamp"] == row.due_at.strftime("%Y%m%dT%H%M%SZ")  # when it was due, not when a retry ran
    assert m["situation"] == "1" and m["operation"] == "apply"
    assert m["digest"] == hashlib.sha256(row.key.encode()).hexdigest()[:8]
    # The real rule: notify, notice and autoreply are mail; banner, post and announce are data.
    assert m["ext"] == ext == ("eml" if action in {"notify", "notice", "autoreply"} else "json")


def test_every_step_of_the_first_half_hour_and_nothing_else(eng: Engine, workdir: Path) -> None:
    open_and_run(eng, minutes=30)

    names = [NAME.fullmatch(p.name) for p in outbox(workdir)]

    assert sorted((m["step"], m["ext"]) for m in names if m) == sorted((s[0], s[3]) for s in STEPS)
    assert not list((workdir / "outbox").glob(".tmp-*"))  # the temporary file of each write is gone


def parse_eml(path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.mark.parametrize(("step", "action", "audience", "ext", "reversible"), MAIL_STEPS,
                         ids=[s[0] for s in MAIL_STEPS])
def test_mail_like_steps_are_messages_in_the_readers_languages(eng: Engine, workdir: Path, step: str, action: str,
                                                               audience: str, ext: str, reversible: bool) -> None:
    open_and_run(eng)
    row = row_of(eng, step)
    sent = expected_action(eng, row)
    locales = ["en"] if audience == "staff" else LOCALES  # staff_locale en; customers in every locale

    (path,) = files_of(workdir, step)
    msg = parse_eml(path)

    assert [m.locale for m in sent.messages] == locales
    assert msg["To"] == f"{audience}@outbox.invalid"
    assert msg["Subject"] == sent.messages[0].subject  # the first locale's subject
    assert msg["Subject"].strip()
    assert msg["From"] == "continuity@localhost"
    assert msg["Date"] == format_datetime(row.due_at)
    assert msg["X-Continuity-Key"] == row.key
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == f"<{hashlib.sha256(row.key.encode()).hexdigest()[:32]}@continuity>"
    assert msg.get_content_type() == "text/plain"
    bodies = msg.get_content().removesuffix("\n").split(SEPARATOR)
    assert bodies == [m.body for m in sent.messages]
    for body, opening in zip(bodies, OPENINGS[step], strict=True):
        assert body.lstrip().startswith(opening), body[:200]


@pytest.mark.parametrize(("step", "locales"), [("staff-runbook", ["en"]), ("customer-notice", LOCALES),
                                               ("email-autoreply", LOCALES)], ids=["staff", "notice", "autoreply"])
def test_mail_names_its_languages_in_content_language(eng: Engine, workdir: Path, step: str,
                                                      locales: list[str]) -> None:
    open_and_run(eng)

    (path,) = files_of(workdir, step)

    assert parse_eml(path)["Content-Language"] == ", ".join(locales)


def test_staff_mail_is_in_the_staff_language_not_the_default_locale(eng: Engine, workdir: Path) -> None:
    # The organisation speaks Hungarian by default; its staff read English (staff_locale: en).
    open_and_run(eng)

    (path,) = files_of(workdir, "staff-runbook")
    msg = parse_eml(path)

    assert "Phone down" in msg["Subject"]
    assert "Customers cannot reach us by phone." in msg.get_content()
    assert "Leállt" not in msg["Subject"] and "telefonon" not in msg.get_content()


@pytest.mark.parametrize(("step", "action", "audience", "ext", "reversible"), JSON_STEPS,
                         ids=[s[0] for s in JSON_STEPS])
def test_other_steps_are_json_records_with_every_field(eng: Engine, workdir: Path, step: str, action: str,
                                                       audience: str, ext: str, reversible: bool) -> None:
    open_and_run(eng, minutes=30)
    row = row_of(eng, step)
    sent = expected_action(eng, row)

    (path,) = files_of(workdir, step)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))

    assert set(doc) == JSON_FIELDS
    assert doc["operation"] == "apply" and doc["key"] == row.key and doc["kind"] == action
    assert doc["situation_id"] == 1 and doc["step_id"] == step
    assert doc["channel"] == "phone" and doc["audience"] == audience
    assert doc["at"] == row.due_at.isoformat()
    assert [m["locale"] for m in doc["messages"]] == LOCALES
    assert doc["messages"] == [{"locale": m.locale, **m.blocks} for m in sent.messages]
    assert all(m.get("title") or m.get("body") or m.get("text") for m in doc["messages"]), doc["messages"]
    facts = doc["facts"]
    assert facts["situation_kind"] == "outage" and facts["reason"] == REASON
    assert facts["opened_at"] == NOW.isoformat() and facts["eta"] == (NOW + ETA).isoformat()
    assert facts["closed_at"] is None and facts["revision"] == 0 and facts["occurrence"] == 1


def test_restore_writes_an_undo_record_for_each_reversible_step(eng: Engine, workdir: Path) -> None:
    open_and_run(eng, minutes=30)
    advance(eng, timedelta(minutes=10))
    closed_at = eng.clock.now()

    eng.close("phone", by="tester", note="provider fixed the trunk")
    tick(eng)

    for step, action, audience, _, reversible in STEPS:
        undo = files_of(workdir, step, "undo")
        if not reversible:
            assert undo == [], f"{step} ({action}) cannot be switched off"
            continue
        (path,) = undo
        row = row_of(eng, step, "undo")
        assert row.state == "done" and row_of(eng, step).state == "undone"
        m = NAME.fullmatch(path.name)
        assert m is not None
        # Mail-like or not, an undo is a record of the switch-off, never a second message to customers.
        assert m["ext"] == "json"
        assert m["stamp"] == closed_at.strftime("%Y%m%dT%H%M%SZ")
        assert m["digest"] == hashlib.sha256(row.key.encode()).hexdigest()[:8]
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert set(doc) == JSON_FIELDS
        assert doc["operation"] == "undo" and doc["key"] == row.key == f"s1/undo/{step}/outbox"
        assert doc["kind"] == action and doc["audience"] == audience and doc["step_id"] == step
        assert doc["facts"]["closed_at"] == closed_at.isoformat()
    # The applied files stay: the outbox is a record of what went out.
    assert all(len(files_of(workdir, s[0])) == 1 for s in STEPS)


def test_a_step_run_again_after_a_crash_writes_no_second_file(eng: Engine, engine: MakeEngine,
                                                              workdir: Path) -> None:
    crashed = eng
    # The first process: same host, but its pid now belongs to another process (it died).
    crashed.owner = f"{socket.gethostname()}:{os.getpid()}:not-this-process"
    crashed.open("phone", reason=REASON, eta=ETA, by="tester")
    claimed = crashed.claim_due()
    runner = Runner(crashed)
    for row in claimed:  # it wrote every file, then died before recording a single outcome
        assert asyncio.run(runner.sink(row.sink).apply(runner.build_action(row))).ok
    before = {p.name: p.read_bytes() for p in outbox(workdir)}
    assert len(before) == len(claimed) == 4  # staff-runbook, customer-notice, email-autoreply, phone-announcement
    assert {r.state for r in crashed.store.steps_for(1) if r.id in {c.id for c in claimed}} == {"running"}

    restarted = engine()
    results = tick(restarted)  # recover: the outbox is idempotent, so the rows run again

    assert sorted(r.row.step_id for r in results) == sorted(r.step_id for r in claimed)
    assert {r.state for r in results} == {"done"}
    assert all("already in the outbox" in r.detail for r in results), [r.detail for r in results]
    assert {p.name: p.read_bytes() for p in outbox(workdir)} == before
