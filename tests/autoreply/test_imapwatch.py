"""The mailbox reader's IDLE against the real Dovecot: new mail wakes it at once, whether it arrived before
IDLE began (Dovecot then sends `+ idling` and `* N EXISTS` in one segment, which imaplib buffers together) or
while it waits; with no mail it waits out its time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from continuity.autoreply.imapwatch import MailboxReader
from continuity.sinks.autoreply import AutoreplySettings
from tests.autoreply.respkit import ScriptedRelay, add_mailbox, env_name, mailbox_sink
from tests.conftest import Configure, MakeEngine
from tests.probes import peerfixtures
from tests.probes.mailpeers import DovecotServer, MailUser, mail_message

dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user


@pytest.fixture
def reader(configure: Configure, engine: MakeEngine, dovecot: DovecotServer,
           mail_user: MailUser) -> Iterator[MailboxReader]:
    with ScriptedRelay(mode="swallow") as relay:
        configure(lambda cfg: add_mailbox(cfg, "support", mailbox_sink(dovecot, mail_user, relay)))
        settings = engine(environ={env_name("support"): mail_user.password}).loaded.sinks["support"].settings
        assert isinstance(settings, AutoreplySettings)
        r = MailboxReader(settings)
        r.connect()
        assert r.can_idle, "Dovecot offers IDLE"
        try:
            yield r
        finally:
            r.close()


def deliver(dovecot: DovecotServer, user: MailUser, subject: str) -> None:
    dovecot.deliver(user.address, mail_message(subject, "Hello\n", sender="anna@example.test", to=user.address),
                    sender="anna@example.test")


def timed_idle(r: MailboxReader, seconds: float) -> tuple[bool, float]:
    began = time.monotonic()
    changed = r.idle(seconds, threading.Event())
    return changed, time.monotonic() - began


def test_mail_that_came_before_idle_wakes_it_at_once(reader: MailboxReader, dovecot: DovecotServer,
                                                     mail_user: MailUser) -> None:
    deliver(dovecot, mail_user, "Order #1")
    time.sleep(0.3)  # delivered and indexed before the IDLE command is sent
    changed, took = timed_idle(reader, 10.0)
    assert changed and took < 3.0, took
    reader.noop()  # the connection is in a clean state after IDLE: the next command works


def test_mail_that_comes_during_idle_wakes_it(reader: MailboxReader, dovecot: DovecotServer,
                                              mail_user: MailUser) -> None:
    threading.Timer(0.5, deliver, (dovecot, mail_user, "Order #2")).start()
    changed, took = timed_idle(reader, 10.0)
    assert changed and took < 5.0, took


def test_no_mail_waits_out_its_time(reader: MailboxReader) -> None:
    changed, took = timed_idle(reader, 1.0)
    assert not changed and 0.9 <= took < 3.0, took
