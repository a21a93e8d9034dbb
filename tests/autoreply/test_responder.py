"""The responder end to end: real Dovecot (IMAP, LMTP), aiosmtpd for the answers, the real engine and store.

An outage of the phone is opened through the engine; its `email-autoreply` step, routed to the mailbox sink,
switches the responder on. The responder runs in-process here (test_responder_kill.py runs the daemon).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from continuity.store.sqlite import SqliteStore
from tests.autoreply.respkit import (
    REASON,
    ScriptedRelay,
    add_mailbox,
    by_reply_to,
    env_name,
    flags,
    mailbox_sink,
    responder,
    run_until,
)
from tests.conftest import Configure, MakeEngine, RunCli, tick
from tests.probes import peerfixtures
from tests.probes.mailpeers import DovecotServer, MailUser, free_port, mail_message

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user

HU_TEXT = "Jó napot kívánok! A tegnapi rendelésemről szeretnék érdeklődni, mikor szállítják ki a csomagot?\n"
PL_TEXT = "Dzień dobry, chciałbym zapytać o moje zamówienie z wczoraj. Kiedy zostanie wysłana paczka?\n"
EN_TEXT = "Hello, I would like to ask about my order from yesterday. When will the parcel be shipped?\n"


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    with ScriptedRelay(mode="swallow") as server:
        yield server


def setup(configure: Configure, engine: MakeEngine, dovecot: DovecotServer, user: MailUser, relay: ScriptedRelay,
          **extra: Any) -> Any:
    configure(lambda cfg: add_mailbox(cfg, "support", mailbox_sink(dovecot, user, relay, **extra)))
    return engine(start=datetime.now(UTC), environ={env_name("support"): user.password})


def open_phone(eng: Any) -> None:
    eng.clock.set(datetime.now(UTC))
    eng.open("phone", reason=REASON, eta=timedelta(hours=2), by="tester")
    results = tick(eng)
    assert {(r.row.step_id, r.row.sink, r.state) for r in results} >= {("email-autoreply", "support", "done")}


def deliver(dovecot: DovecotServer, user: MailUser, subject: str, body: str, sender: str, **headers: str) -> str:
    raw = mail_message(subject, body, sender=sender, to=user.address, headers=headers or None)
    dovecot.deliver(user.address, raw, sender=sender)
    return raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()


def test_answers_new_mail_in_the_customers_language_and_stops_after_close(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay, cli: RunCli) -> None:
    eng = setup(configure, engine, dovecot, mail_user, relay)
    deliver(dovecot, mail_user, "Order 1001", EN_TEXT, "early@example.test")
    time.sleep(1.1)  # INTERNALDATE has whole seconds: the outage opens in a later second
    open_phone(eng)
    hu_id = deliver(dovecot, mail_user, "Rendelés 1002", HU_TEXT, "anna@example.test")
    pl_id = deliver(dovecot, mail_user, "Re: Zamówienie 1003", PL_TEXT, "piotr@example.test",
                    **{"Reply-To": "Piotr Nowak <piotr.nowak@example.test>", "References": "<older@example.test>"})
    en_id = deliver(dovecot, mail_user, "Order 1004", EN_TEXT, "john@example.test", **{"Content-Language": "en-GB"})
    resp = responder(eng)

    async def main() -> float:
        task = asyncio.ensure_future(resp.run())
        try:
            while len(relay.accepted) < 3:
                assert not task.done(), task.result()
                await asyncio.sleep(0.05)
            # Close the outage: the responder notices within one poll interval (1s) and stops by itself.
            eng.clock.set(datetime.now(UTC))
            eng.close("phone", by="tester")
            await eng.run_due_async()
            deliver(dovecot, mail_user, "After the fix", EN_TEXT, "late@example.test")
            started = time.monotonic()
            await asyncio.wait_for(task, 5)  # ends by itself: the ledger says off
            return time.monotonic() - started
        finally:
            resp.stop()
            await asyncio.wait_for(task, 10)

    stopped_after = asyncio.run(main())
    assert stopped_after < 2.5
    time.sleep(0.3)
    answers = relay.answers()
    assert len(answers) == 3  # not the early one, not the one after the close
    assert by_reply_to(answers) == {hu_id: 1, pl_id: 1, en_id: 1}
    to = {a["In-Reply-To"]: a for a in answers}
    hu, pl, en = to[hu_id], to[pl_id], to[en_id]
    for a in answers:
        assert a["From"].addresses[0].addr_spec == mail_user.address
        assert a["Auto-Submitted"] == "auto-replied"
        assert a["Message-ID"].startswith("<autoreply.") and a["Message-ID"] not in (hu_id, pl_id, en_id)
        assert "SIP trunk down at the provider" not in a.get_content()  # the staff's words stay with staff
    assert [a.mail_from for a in relay.accepted] == ["<>"] * 3 or [a.mail_from for a in relay.accepted] == [""] * 3
    assert hu["To"].addresses[0].addr_spec == "anna@example.test"
    assert hu["Subject"] == "Re: Rendelés 1002"
    assert hu["References"] == hu_id
    assert hu["Content-Language"] == "hu"
    assert "Kedves Ügyfelünk" in hu.get_content() and "telefonos ügyfélszolgálat" in hu.get_content()
    assert pl["To"].addresses[0].addr_spec == "piotr.nowak@example.test"  # Reply-To honoured
    assert pl["Subject"] == "Re: Zamówienie 1003"  # no "Re: Re:"
    assert pl["References"] == f"<older@example.test> {pl_id}"
    assert pl["Content-Language"] == "pl" and "Szanowni Państwo" in pl.get_content()
    assert en["Content-Language"] == "en"
    body = en.get_content()
    assert "phone line (+36 1 234 5678) is not working" in body
    assert "help@shop.example.test" not in body or "2 hours" in body
    assert "up to 2 hours longer than usual" in body  # email is the phone's first fallback, 2h extra wait
    assert "https://shop.example.test/chat" in body  # the other fallback
    # Nothing was marked read, moved or deleted.
    assert len(flags(dovecot, mail_user)) == 5 and not any("Seen" in f for f in flags(dovecot, mail_user))

    status = cli("autoreply", "status", "--json", env={env_name("support"): mail_user.password})
    assert status.returncode == 0, status.stderr
    (box,) = json.loads(status.stdout)["mailboxes"]
    assert box["name"] == "support" and box["on"] is False and box["counts"]["sent"] == 3
    assert mail_user.password not in status.stdout


def test_polling_without_idle_answers_and_every_skip_is_logged_with_its_reason(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay, cli: RunCli, caplog: pytest.LogCaptureFixture) -> None:
    eng = setup(configure, engine, dovecot, mail_user, relay, idle=False)
    open_phone(eng)
    answered = deliver(dovecot, mail_user, "Order 1001", EN_TEXT, "anna@example.test")
    deliver(dovecot, mail_user, "[shop-news] Weekly digest", EN_TEXT, "news@lists.example.test",
            **{"List-Id": "Shop news <news.lists.example.test>"})
    resp = responder(eng)
    assert not resp.reader.can_idle or resp.settings.idle is False
    with caplog.at_level(logging.INFO, logger="continuity"):
        asyncio.run(run_until(resp, lambda: resp.counts["sent"] + resp.counts["skipped:mailing-list"] >= 2))
    assert by_reply_to(relay.answers()) == {answered: 1}
    [skip] = [r for r in caplog.records if getattr(r, "event", "") == "autoreply.skipped"]
    assert skip.fields["reason"] == "mailing-list"  # type: ignore[attr-defined]
    assert "not answered: mailing-list (list-id: Shop news <news.lists.example.test>)" in skip.getMessage()

    env = {env_name("support"): mail_user.password}
    (box,) = json.loads(cli("autoreply", "status", "--json", env=env).stdout)["mailboxes"]
    assert box["counts"]["sent"] == 1 and box["skipped_reasons"] == {"mailing-list": 1}
    text = cli("autoreply", "status", env=env)
    assert text.returncode == 0 and "mailing-list 1" in text.stdout, text.stdout


def test_restart_answers_nothing_twice_and_one_answer_per_sender_per_period(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    eng = setup(configure, engine, dovecot, mail_user, relay)
    open_phone(eng)
    deliver(dovecot, mail_user, "First", EN_TEXT, "anna@example.test")
    deliver(dovecot, mail_user, "Second, same sender", EN_TEXT, "anna@example.test")
    deliver(dovecot, mail_user, "Other sender", EN_TEXT, "bela@example.test")
    first = responder(eng)
    asyncio.run(run_until(first, lambda: first.counts["sent"] + first.counts["skipped:rate-limited"] >= 3))
    assert len(relay.accepted) == 2 and first.counts["skipped:rate-limited"] == 1

    # A new responder over the same SQLite file (a restart), with new mail from a known and a new sender.
    deliver(dovecot, mail_user, "Third from anna", EN_TEXT, "anna@example.test")
    deliver(dovecot, mail_user, "New customer", EN_TEXT, "cecil@example.test")
    store = SqliteStore(eng.store.path)
    try:
        second = responder(eng, store=store)
        asyncio.run(run_until(second, lambda: second.counts["sent"] + second.counts["skipped:rate-limited"] >= 2))
        time.sleep(0.3)
    finally:
        store.close()
    answered = sorted(a.rcpt_tos[0] for a in relay.accepted)
    assert answered == ["anna@example.test", "bela@example.test", "cecil@example.test"]
    assert second.counts == {"sent": 1, "skipped:rate-limited": 1}


def test_temporary_smtp_failure_is_retried_after_a_pause(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    relay.temp_failures = 2
    eng = setup(configure, engine, dovecot, mail_user, relay)
    open_phone(eng)
    msg_id = deliver(dovecot, mail_user, "Hello", EN_TEXT, "anna@example.test")
    resp = responder(eng, first_delay=0.3)
    took = asyncio.run(run_until(resp, lambda: resp.counts["sent"] >= 1))
    assert relay.refused == 2 and len(relay.accepted) == 1
    assert took >= 0.3 + 0.6 - 0.05  # two pauses: 0.3s, then 0.6s
    (row,) = eng.store.conn.execute("SELECT state, attempts, last_error FROM autoreply_messages").fetchall()
    assert (row["state"], row["attempts"]) == ("sent", 3) and row["last_error"] is None
    assert by_reply_to(relay.answers()) == {msg_id: 1}


def test_two_responders_pointed_at_each_other_do_not_loop(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser) -> None:
    other = dovecot.add_user(f"sales-{mail_user.address}", "pw-Other-s3cret")
    with ScriptedRelay.into(dovecot) as relay:  # answers really arrive in the other mailbox
        def edit(cfg: dict[str, Any]) -> None:
            add_mailbox(cfg, "support", mailbox_sink(dovecot, mail_user, relay))
            add_mailbox(cfg, "sales", mailbox_sink(dovecot, other, relay, sink="sales"))

        configure(edit)
        eng = engine(start=datetime.now(UTC),
                     environ={env_name("support"): mail_user.password, env_name("sales"): other.password})
        open_phone(eng)
        # A person at sales writes to support: support answers sales once; sales must not answer that answer.
        deliver(dovecot, mail_user, "Question from sales", EN_TEXT, other.address)
        a, b = responder(eng, "support"), responder(eng, "sales")

        async def both() -> None:
            tasks = [asyncio.ensure_future(r.run()) for r in (a, b)]
            try:
                deadline = time.monotonic() + 15
                while not (a.counts["sent"] >= 1 and sum(b.counts.values()) >= 1):
                    assert time.monotonic() < deadline, (a.counts, b.counts)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(2.5)  # more than two poll intervals: room for a loop to show
            finally:
                a.stop()
                b.stop()
                await asyncio.wait_for(asyncio.gather(*tasks), 15)

        asyncio.run(both())
        assert len(relay.accepted) == 1
        assert a.counts == {"sent": 1}
        assert set(b.counts) <= {"skipped:auto-submitted", "skipped:null-sender", "skipped:x-loop"}
        assert sum(b.counts.values()) == 1


def test_one_combined_answer_when_two_situations_are_open(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        add_mailbox(cfg, "support", mailbox_sink(dovecot, mail_user, relay))
        cfg["channels"]["chat"]["add_steps"] = [{"id": "email-autoreply", "action": "autoreply", "to": "autoreply",
                                                 "template": "outage/autoreply"}]

    configure(edit)
    eng = engine(start=datetime.now(UTC), environ={env_name("support"): mail_user.password})
    open_phone(eng)
    eng.open("chat", reason="chat provider outage", by="tester")
    tick(eng)
    msg_id = deliver(dovecot, mail_user, "Hello", HU_TEXT, "anna@example.test")
    resp = responder(eng)
    asyncio.run(run_until(resp, lambda: resp.counts["sent"] >= 1))
    time.sleep(0.2)
    (answer,) = relay.answers()
    assert answer["In-Reply-To"] == msg_id
    body = answer.get_content()
    assert body.count("Kedves Ügyfelünk") == 1 and body.count("Üdvözlettel") == 1
    # Both situations, each by its prepared cause; the staff's words for them stay with staff.
    assert body.count("A hiba okát még vizsgáljuk.") == 2
    assert REASON not in body and "chat provider outage" not in body


def test_wrong_mailbox_password_fails_the_step_visibly(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    configure(lambda cfg: add_mailbox(cfg, "support", mailbox_sink(dovecot, mail_user, relay)))
    eng = engine(start=datetime.now(UTC), environ={env_name("support"): "not-the-password"})
    eng.open("phone", reason=REASON, by="tester")
    results = eng.run_due(inline=False)
    (step,) = [r for r in results if r.row.step_id == "email-autoreply"]
    assert step.state == "failed" and "login refused" in step.detail
    assert "not-the-password" not in step.detail


def test_smtp_server_down_pauses_and_the_answer_goes_out_when_it_is_back(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser) -> None:
    down = ScriptedRelay(mode="swallow")
    down.port = free_port()  # nothing listens there yet
    eng = setup(configure, engine, dovecot, mail_user, down)
    open_phone(eng)
    msg_id = deliver(dovecot, mail_user, "Hello", EN_TEXT, "anna@example.test")
    resp = responder(eng)

    def state() -> tuple[str, str | None]:
        store = SqliteStore(eng.store.path)
        try:
            row = store.conn.execute("SELECT state FROM autoreply_messages").fetchone()
            cursor = store.conn.execute("SELECT last_error FROM autoreply_cursor").fetchone()
            return (row[0] if row else "", cursor[0] if cursor else None)
        finally:
            store.close()

    async def scenario() -> None:
        task = asyncio.ensure_future(resp.run())
        try:
            deadline = time.monotonic() + 10
            while not (state()[0] == "queued" and (state()[1] or "").startswith("SMTP")):
                assert time.monotonic() < deadline and not task.done(), state()
                await asyncio.sleep(0.1)
            down.start_on(down.port)  # the mail server is back
            while resp.counts["sent"] < 1:
                assert time.monotonic() < deadline + 10 and not task.done(), state()
                await asyncio.sleep(0.05)
        finally:
            resp.stop()
            await asyncio.wait_for(task, 10)
            down.stop()

    asyncio.run(scenario())
    assert "connection refused" in (state()[1] or "")
    assert by_reply_to(down.answers()) == {msg_id: 1}


def test_a_dropped_imap_connection_is_reopened_and_reading_resumes_at_the_cursor(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    eng = setup(configure, engine, dovecot, mail_user, relay)
    open_phone(eng)
    first_id = deliver(dovecot, mail_user, "First", EN_TEXT, "anna@example.test")
    resp = responder(eng)

    async def scenario() -> None:
        task = asyncio.ensure_future(resp.run())
        try:
            deadline = time.monotonic() + 15
            while resp.counts["sent"] < 1:
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.05)
            session = resp.reader.session
            assert session is not None and session.client is not None
            session.client.shutdown()  # the server "goes away" under the idling connection
            second = deliver(dovecot, mail_user, "Second", EN_TEXT, "bela@example.test")
            while resp.counts["sent"] < 2:
                assert time.monotonic() < deadline and not task.done()
                await asyncio.sleep(0.05)
            ids.append(second)
        finally:
            resp.stop()
            await asyncio.wait_for(task, 10)

    ids: list[str] = []
    asyncio.run(scenario())
    assert by_reply_to(relay.answers()) == {first_id: 1, ids[0]: 1}
    (error,) = eng.store.conn.execute("SELECT last_error FROM autoreply_cursor").fetchone()
    assert error.startswith("IMAP")
