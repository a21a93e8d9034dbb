"""More of the responder end to end, on the same real servers as test_responder.py (Dovecot for IMAP and LMTP,
aiosmtpd for the answers, the real engine and SQLite store): pooled and concurrent SMTP, the per-sender period
running out on the engine's clock, `require_addressed` from the sink settings, mail without a Message-ID across
a restart, a message bigger than the fetch cap, and the IMAP server going away and coming back.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from continuity.autoreply.imapwatch import MAX_FETCH, MailboxReader
from continuity.autoreply.responder import Responder
from continuity.sinks.autoreply import AutoreplySettings
from continuity.store.sqlite import SqliteStore
from tests.autoreply.respkit import (
    ScriptedRelay,
    by_reply_to,
    db_rows,
    env_name,
    maildir_drop,
    responder,
    run_until,
)
from tests.autoreply.test_responder import EN_TEXT, PL_TEXT, deliver, open_phone
from tests.autoreply.test_responder import setup as setup_mailbox
from tests.conftest import Configure, MakeEngine, RunCli
from tests.probes import peerfixtures
from tests.probes.mailpeers import DOVECOT, DovecotServer, MailUser, _listening, _stop_pid, mail_message, require

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    server = ScriptedRelay(mode="swallow")
    with server:
        yield server


async def wait_for(resp: Responder, task: asyncio.Future[None], done: Callable[[], bool],
                   timeout: float = 20.0) -> None:
    """Let the running responder work until `done()`; fail if it ends or takes too long."""
    deadline = time.monotonic() + timeout
    while not done():
        if task.done():
            task.result()
            raise AssertionError(f"the responder ended early (counts: {dict(resp.counts)})")
        assert time.monotonic() < deadline, f"not done within {timeout}s (counts: {dict(resp.counts)})"
        await asyncio.sleep(0.05)


def deliver_raw(dovecot: DovecotServer, user: MailUser, raw: bytes, sender: str) -> None:
    dovecot.deliver(user.address, raw, sender=sender)


# 1. pooled, concurrent SMTP -----------------------------------------------------------------------------------

@dataclass
class CountingRelay(ScriptedRelay):
    """ScriptedRelay that also counts the client connections that carried answers and the DATA in flight."""

    peers: set[Any] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # All handlers run on the controller's one event loop thread: plain counters are safe.
        self.peers.add(session.peer)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.in_flight -= 1


def test_a_backlog_is_answered_concurrently_over_at_most_max_smtp_connections(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser) -> None:
    backlog, connections, per_answer = 32, 3, 0.2
    relay = CountingRelay(mode="swallow", delay=per_answer)
    with relay:  # (the name keeps its type; `with … as` would give the base class)
        eng = setup_mailbox(configure, engine, dovecot, mail_user, relay, max_smtp_connections=connections)
        open_phone(eng)
        raws = [mail_message(f"Order {i}", EN_TEXT, sender=f"customer{i}@example.test", to=mail_user.address)
                for i in range(backlog)]
        maildir_drop(dovecot, mail_user, raws)
        ids = {raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode() for raw in raws}
        resp = responder(eng)
        took = asyncio.run(run_until(resp, lambda: resp.counts["sent"] >= backlog, timeout=40))
        time.sleep(0.2)

    assert resp.counts == {"sent": backlog}
    assert by_reply_to(relay.answers()) == dict.fromkeys(ids, 1)
    assert sorted(a.rcpt_tos[0] for a in relay.accepted) == sorted(f"customer{i}@example.test"
                                                                     for i in range(backlog))
    # Reused connections: never more than the setting, counted on both ends.
    assert 1 <= resp.pool.connections_opened <= connections
    assert 1 <= len(relay.peers) <= connections
    # Concurrent: every connection carried an answer at the same moment, and the backlog took far less than
    # one answer after another would (32 x 0.2 s).
    assert relay.max_in_flight == connections
    assert took < backlog * per_answer * 0.75, took


# 2. the per-sender period runs out ----------------------------------------------------------------------------

def test_the_per_sender_period_expires_on_the_engine_clock(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    eng = setup_mailbox(configure, engine, dovecot, mail_user, relay, period="1m")
    open_phone(eng)
    first = deliver(dovecot, mail_user, "Order 1001", EN_TEXT, "anna@example.test")
    resp = responder(eng)
    assert resp.clock is eng.clock  # the responder decides on the engine's ManualClock
    ids: dict[str, str] = {}

    async def scenario() -> None:
        task = asyncio.ensure_future(resp.run())
        try:
            await wait_for(resp, task, lambda: resp.counts["sent"] >= 1)
            eng.clock.advance(timedelta(seconds=30))  # within the minute
            ids["second"] = deliver(dovecot, mail_user, "Order 1001 again", EN_TEXT, "anna@example.test")
            await wait_for(resp, task, lambda: resp.counts["skipped:rate-limited"] >= 1)
            eng.clock.advance(timedelta(seconds=31))  # 61 s after the first answer: the period is over
            ids["third"] = deliver(dovecot, mail_user, "Still waiting", EN_TEXT, "anna@example.test")
            await wait_for(resp, task, lambda: resp.counts["sent"] >= 2)
        finally:
            resp.stop()
            await asyncio.wait_for(task, 15)

    asyncio.run(scenario())
    time.sleep(0.2)
    assert resp.counts == {"sent": 2, "skipped:rate-limited": 1}
    assert by_reply_to(relay.answers()) == {first: 1, ids["third"]: 1}
    assert [a.rcpt_tos for a in relay.accepted] == [["anna@example.test"]] * 2
    rows = {r["key"]: (r["state"], r["reason"])
            for r in db_rows(eng.store.path, "SELECT key, state, reason FROM autoreply_messages")}
    assert rows[ids["second"].strip("<>").lower()] == ("skipped", "rate-limited")


# 3. require_addressed from the sink settings ------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "expected"), [
    ({}, {"sent": 1, "skipped:not-addressed": 1}),  # the default is true
    ({"require_addressed": True}, {"sent": 1, "skipped:not-addressed": 1}),
    ({"require_addressed": False}, {"sent": 2}),
], ids=["default", "true", "false"])
def test_require_addressed_in_the_sink_settings(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay, settings: dict[str, Any], expected: dict[str, int]) -> None:
    eng = setup_mailbox(configure, engine, dovecot, mail_user, relay, **settings)
    open_phone(eng)
    forwarded = mail_message("Fwd: order 1001", EN_TEXT, sender="anna@example.test", to="someone@else.example")
    deliver_raw(dovecot, mail_user, forwarded, "anna@example.test")
    addressed = deliver(dovecot, mail_user, "Order 1002", EN_TEXT, "bela@example.test")
    resp = responder(eng)
    asyncio.run(run_until(resp, lambda: sum(resp.counts.values()) >= 2))
    time.sleep(0.2)
    assert resp.counts == expected
    answered = sorted(a.rcpt_tos[0] for a in relay.accepted)
    if "skipped:not-addressed" in expected:
        assert answered == ["bela@example.test"]
        assert by_reply_to(relay.answers()) == {addressed: 1}
    else:
        assert answered == ["anna@example.test", "bela@example.test"]


# 4. no Message-ID: the fallback key across a restart ----------------------------------------------------------

def test_mail_without_message_id_is_answered_once_across_a_restart(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay, caplog: pytest.LogCaptureFixture) -> None:
    eng = setup_mailbox(configure, engine, dovecot, mail_user, relay)
    open_phone(eng)
    with_id = mail_message("Order 1001", EN_TEXT, sender="anna@example.test", to=mail_user.address,
                           headers={"Date": format_datetime(datetime.now(UTC))})
    no_id = re.sub(rb"Message-ID: <[^>]*>\r\n", b"", with_id)
    assert b"Message-ID" not in no_id
    deliver_raw(dovecot, mail_user, no_id, "anna@example.test")
    first = responder(eng)
    asyncio.run(run_until(first, lambda: first.counts["sent"] >= 1))
    time.sleep(0.2)
    assert first.counts == {"sent": 1}
    (answer,) = relay.answers()
    assert answer["To"].addresses[0].addr_spec == "anna@example.test"
    assert answer["Subject"] == "Re: Order 1001" and answer["In-Reply-To"] is None
    ((key, state),) = db_rows(eng.store.path, "SELECT key, state FROM autoreply_messages")
    assert key.startswith("sha256:") and state == "sent"  # remembered by its fingerprint

    # The same message delivered again (an MTA retrying after a lost LMTP reply) and a new customer; then a
    # restart that must read the whole mailbox again (its UIDVALIDITY changed: the mailbox was rebuilt).
    deliver_raw(dovecot, mail_user, no_id, "anna@example.test")
    cecil = deliver(dovecot, mail_user, "New customer", EN_TEXT, "cecil@example.test")
    store = SqliteStore(eng.store.path)
    try:
        with store.transaction():
            store.conn.execute("UPDATE autoreply_cursor SET uidvalidity = uidvalidity + 1")
        second = responder(eng, store=store)
        with caplog.at_level(logging.INFO, logger="continuity"):
            asyncio.run(run_until(second, lambda: second.counts["sent"] >= 1))
        time.sleep(0.3)
    finally:
        store.close()
    assert any(getattr(r, "event", "") == "autoreply.uidvalidity" for r in caplog.records)  # it did read it all
    # Not answered again, and not merely rate-limited: recognised as already decided by its key.
    assert second.counts == {"sent": 1}
    assert sorted(a.rcpt_tos[0] for a in relay.accepted) == ["anna@example.test", "cecil@example.test"]
    assert by_reply_to(relay.answers()[1:]) == {cecil: 1}
    states = sorted(tuple(r) for r in db_rows(eng.store.path, "SELECT key LIKE 'sha256:%', state "
                                                               "FROM autoreply_messages"))
    assert states == [(0, "sent"), (1, "sent")]


# 5. bigger than the fetch cap ---------------------------------------------------------------------------------

def test_a_message_over_the_fetch_cap_is_answered_in_the_language_of_its_text(
        configure: Configure, engine: MakeEngine, dovecot: DovecotServer, mail_user: MailUser,
        relay: ScriptedRelay) -> None:
    msg = EmailMessage()
    msg["From"] = "Piotr Nowak <piotr@example.test>"
    msg["To"] = mail_user.address
    msg["Subject"] = "#1002"  # no words: the language must come from the text part
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content(PL_TEXT)
    msg.add_attachment(os.urandom(3 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename="faktura-skan.bin")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    assert len(raw) > MAX_FETCH + 1024 * 1024 and b"Content-Language" not in raw

    eng = setup_mailbox(configure, engine, dovecot, mail_user, relay)
    open_phone(eng)
    deliver_raw(dovecot, mail_user, raw, "piotr@example.test")
    resp = responder(eng)
    asyncio.run(run_until(resp, lambda: sum(resp.counts.values()) >= 1, timeout=30))
    time.sleep(0.2)
    assert resp.counts == {"sent": 1}
    (answer,) = relay.answers()
    assert answer["In-Reply-To"] == msg["Message-ID"]
    assert answer["To"].addresses[0].addr_spec == "piotr@example.test"
    assert answer["Subject"] == "Re: #1002"
    # Polish, not the organisation's default (hu): read from the text before the attachment.
    assert answer["Content-Language"] == "pl" and "Szanowni Państwo" in answer.get_content()

    # What the responder's reader gets from the server for it: a partial fetch, cut at the cap.
    settings = eng.loaded.sinks["support"].settings
    assert isinstance(settings, AutoreplySettings)
    reader = MailboxReader(settings)
    reader.connect()
    try:
        uids = reader.search(0, datetime.now(UTC) - timedelta(days=1))
        (fetched,) = reader.bodies(uids)
    finally:
        reader.close()
    assert len(fetched.raw) == MAX_FETCH < len(raw)


# 6. the IMAP server goes away and comes back ------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (read from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _is_dovecot(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"dovecot")
    except OSError:
        return False


class RestartableDovecot(DovecotServer):
    """A private Dovecot that can be stopped and started again on the same ports with the same mail (the
    session's shared server cannot: its stop() deletes the mail and start() picks new ports)."""

    def halt(self) -> None:
        """The whole server goes down: the master and every process it started, open sessions included."""
        assert self.pid is not None and self.root is not None
        children = _children(self.pid)
        _stop_pid(self.pid, timeout=10)
        self.pid = None
        # A stopped master leaves the imap processes of open sessions serving them (seen with Dovecot 2.3.19):
        # end them too, by the pids this server started, or the responder's session would simply go on.
        for pid in children:
            if _is_dovecot(pid):
                _stop_pid(pid, timeout=5)
        # A dead master may linger as a zombie with its pid; a new master would take it for a running one.
        (self.root / "base" / "master.pid").unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        while _listening(self.imap_port, "tcp") or _listening(self.lmtp_port, "tcp"):
            assert time.monotonic() < deadline, "dovecot still listens after it stopped"
            time.sleep(0.05)

    def resume(self, timeout: float = 10.0) -> None:
        assert self.pid is None and self.root is not None
        out = self.root / "restart.out"
        with out.open("wb") as sink:
            run = subprocess.run([require(DOVECOT, "dovecot-imapd dovecot-lmtpd"), "-c",
                                  str(self.root / "dovecot.conf")], stdout=sink, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, timeout=timeout)
        assert run.returncode == 0, out.read_text(errors="replace")
        self.pid = self._wait_pid(self.root / "base" / "master.pid", timeout)
        self._wait_ready(timeout)


@pytest.fixture
def own_dovecot() -> Iterator[RestartableDovecot]:
    server = RestartableDovecot({"help@example.test": "pw-Own-Imap-s3cret"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_imap_down_shows_in_status_backs_off_and_answering_resumes_when_it_is_back(
        configure: Configure, engine: MakeEngine, own_dovecot: RestartableDovecot, relay: ScriptedRelay,
        cli: RunCli, caplog: pytest.LogCaptureFixture) -> None:
    user = own_dovecot.user
    imap_port = own_dovecot.imap_port
    eng = setup_mailbox(configure, engine, own_dovecot, user, relay)
    open_phone(eng)
    first = deliver(own_dovecot, user, "Order 1001", EN_TEXT, "anna@example.test")
    resp = responder(eng, first_delay=0.2, max_delay=1.0)
    env = {env_name("support"): user.password}
    seen: dict[str, Any] = {}

    def last_error() -> str:
        rows = db_rows(eng.store.path, "SELECT last_error FROM autoreply_cursor")
        return (rows[0][0] or "") if rows else ""

    def retry_delays() -> list[float]:
        return [float(m.group(1)) for r in caplog.records if getattr(r, "event", "") == "autoreply.imap_error"
                and (m := re.search(r"retrying in ([0-9.]+)s", r.getMessage()))]

    async def scenario() -> None:
        task = asyncio.ensure_future(resp.run())
        try:
            await wait_for(resp, task, lambda: resp.counts["sent"] >= 1)
            await asyncio.to_thread(own_dovecot.halt)
            # Down: the idling connection is gone and every reconnect is refused, with growing pauses.
            await wait_for(resp, task, lambda: "refused" in last_error() and len(retry_delays()) >= 4)
            status = await asyncio.to_thread(cli, "autoreply", "status", "--json", env=env)
            seen["status"] = status
            await asyncio.to_thread(own_dovecot.resume)
            assert own_dovecot.imap_port == imap_port
            seen["second"] = deliver(own_dovecot, user, "Order 1002", EN_TEXT, "bela@example.test")
            await wait_for(resp, task, lambda: resp.counts["sent"] >= 2, timeout=15)
        finally:
            resp.stop()
            await asyncio.wait_for(task, 15)

    with caplog.at_level(logging.INFO, logger="continuity"):
        asyncio.run(scenario())
    time.sleep(0.2)

    status: subprocess.CompletedProcess[str] = seen["status"]
    assert status.returncode == 0, status.stderr
    (box,) = json.loads(status.stdout)["mailboxes"]
    assert box["name"] == "support" and box["on"] is True and box["counts"]["sent"] == 1
    assert box["last_error"].startswith("IMAP 127.0.0.1") and "refused" in box["last_error"], box
    assert user.password not in status.stdout
    # Backoff: 0.2 s after the drop, then doubling up to the 1 s cap.
    delays = retry_delays()
    assert delays[:4] == [0.2, 0.4, 0.8, 1.0] and set(delays[4:]) <= {1.0}, delays
    assert resp.counts == {"sent": 2}
    assert by_reply_to(relay.answers()) == {first: 1, seen["second"]: 1}
