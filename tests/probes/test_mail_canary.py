"""Mail canary end to end: aiosmtpd relaying into a real Dovecot, and the canary cleaned up behind itself."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.net.imap import ImapSession
from continuity.probes.base import ProbeResult
from continuity.probes.mail_canary import MailCanaryProbe, MailCanarySettings
from tests.probes import peerfixtures
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import DovecotServer, MailUser, SmtpRelay, free_port, mail_message

# Shared fixtures (pytest finds a fixture by its module-level name).
dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user
smtp_relay = peerfixtures.smtp_relay


class NoUidplus(MailCanaryProbe):
    """The same probe against a server without UIDPLUS (Dovecot has it, so pretend it does not)."""

    def _open(self, session: ImapSession) -> bool:
        super()._open(session)
        return False


def canary(make_probe: MakeProbe, dovecot: DovecotServer, relay: SmtpRelay, user: MailUser,
           cls: type[MailCanaryProbe] = MailCanaryProbe, **extra: Any) -> MailCanaryProbe:
    settings: dict[str, Any] = {
        "smtp_host": "127.0.0.1", "smtp_port": relay.port,
        "sender": "Continuity <continuity@example.test>", "recipient": user.address,
        "imap_host": dovecot.host, "imap_port": dovecot.imap_port,
        "imap_username": user.address, "imap_password": FromEnv(user.password),
        "deadline": 5, "timeout": 10,
    }
    probe: MailCanaryProbe = make_probe(cls, **{**settings, **extra})
    return probe


def check(probe: MailCanaryProbe) -> ProbeResult:
    return asyncio.run(probe.check())


def customer_mail(dovecot: DovecotServer, user: MailUser) -> None:
    """One message staff still need, and one a colleague flagged deleted but did not expunge."""
    dovecot.deliver(user.address, mail_message("Order 1234 never arrived", to=user.address))
    dovecot.deliver(user.address, mail_message("Spam, flagged for deletion", to=user.address))
    with dovecot.imap(user.address, user.password) as client:
        assert client.store("2", "+FLAGS", r"(\Deleted)")[0] == "OK"


def test_delivered_canary_is_up_and_removed_alone(dovecot: DovecotServer, mail_user: MailUser,
                                                  smtp_relay: SmtpRelay, make_probe: MakeProbe) -> None:
    customer_mail(dovecot, mail_user)
    before = dovecot.messages(mail_user.address, mail_user.password)
    probe = canary(make_probe, dovecot, smtp_relay, mail_user, name="support-mail")
    result = check(probe)
    assert (result.status, result.reason, result.probe) == ("up", "", "support-mail")
    assert 0 < result.latency < 2

    [sent] = smtp_relay.accepted
    msg = message_from_bytes(sent.content)
    tag = msg["X-Continuity-Canary"]
    assert tag and tag in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert sent.rcpt_tos == [mail_user.address]
    assert sent.mail_from == "continuity@example.test"

    # The customer's mail is untouched, the flagged one included; the canary is gone.
    assert dovecot.messages(mail_user.address, mail_user.password) == before
    assert sorted(before.values()) == [("", "Order 1234 never arrived"),
                                       ("\\Deleted", "Spam, flagged for deletion")]
    assert probe.pending == []


def test_swallowed_canary_is_down_at_the_deadline_and_swept_later(
        dovecot: DovecotServer, mail_user: MailUser, smtp_relay: SmtpRelay, make_probe: MakeProbe,
) -> None:
    smtp_relay.mode = "swallow"
    probe = canary(make_probe, dovecot, smtp_relay, mail_user, deadline=2, timeout=4)
    result = check(probe)
    assert (result.status, result.reason) == ("down", "canary not delivered within 2s")
    assert 2 <= result.latency < 3
    assert len(probe.pending) == 1

    # The lost canary turns up late; the next check removes it along with its own.
    dovecot.deliver(mail_user.address, smtp_relay.accepted[0].content)
    smtp_relay.mode = "relay"
    assert check(probe).status == "up"
    assert probe.pending == []
    assert dovecot.messages(mail_user.address, mail_user.password) == {}


@pytest.mark.parametrize(("refusal", "reason"), [
    ("550 5.7.1 Relaying denied", "sending: SMTP 550 5.7.1 Relaying denied"),
    ("451 4.3.0 Try again later", "sending: SMTP 451 4.3.0 Try again later"),
])
def test_refused_canary_is_down(refusal: str, reason: str, dovecot: DovecotServer, mail_user: MailUser,
                                smtp_relay: SmtpRelay, make_probe: MakeProbe) -> None:
    smtp_relay.mode, smtp_relay.refusal = "refuse", refusal
    result = check(canary(make_probe, dovecot, smtp_relay, mail_user))
    assert (result.status, result.reason) == ("down", reason)
    assert mail_user.password not in result.reason


def test_smtp_server_down(dovecot: DovecotServer, mail_user: MailUser, smtp_relay: SmtpRelay,
                          make_probe: MakeProbe) -> None:
    result = check(canary(make_probe, dovecot, smtp_relay, mail_user, smtp_port=free_port()))
    assert (result.status, result.reason) == ("down", "sending: connection refused")


def test_mailbox_down_sends_nothing(dovecot: DovecotServer, mail_user: MailUser, smtp_relay: SmtpRelay,
                                    make_probe: MakeProbe) -> None:
    result = check(canary(make_probe, dovecot, smtp_relay, mail_user, imap_port=free_port()))
    assert (result.status, result.reason) == ("down", "mailbox: connection refused")
    assert smtp_relay.accepted == []  # a canary that could not be cleaned up is never sent


def test_without_uidplus_other_deleted_mail_is_never_expunged(
        dovecot: DovecotServer, mail_user: MailUser, smtp_relay: SmtpRelay, make_probe: MakeProbe,
) -> None:
    customer_mail(dovecot, mail_user)
    probe = canary(make_probe, dovecot, smtp_relay, mail_user, cls=NoUidplus)
    result = check(probe)
    assert result.status == "up"
    assert "not expunged" in result.reason
    subjects = sorted(subject for _, subject in dovecot.messages(mail_user.address, mail_user.password).values())
    assert subjects[:2] == ["Order 1234 never arrived", "Spam, flagged for deletion"]
    assert len(subjects) == 3 and subjects[2].startswith("continuity mail check ")  # flagged, left for later


def test_without_uidplus_the_canary_alone_is_expunged(dovecot: DovecotServer, mail_user: MailUser,
                                                      smtp_relay: SmtpRelay, make_probe: MakeProbe) -> None:
    dovecot.deliver(mail_user.address, mail_message("Where is my refund?", to=mail_user.address))
    result = check(canary(make_probe, dovecot, smtp_relay, mail_user, cls=NoUidplus))
    assert (result.status, result.reason) == ("up", "")
    assert [s for _, s in dovecot.messages(mail_user.address, mail_user.password).values()] == ["Where is my refund?"]


BASE: dict[str, Any] = {
    "type": "mail_canary", "smtp_host": "mail", "sender": "a@example.test", "recipient": "b@example.test",
    "imap_host": "mail", "imap_username": "b", "imap_password": FromEnv("x"),
}


def test_defaults_are_valid() -> None:
    s = MailCanarySettings.model_validate(BASE)
    assert s.timeout >= s.deadline


@pytest.mark.parametrize(("extra", "message"), [
    ({"timeout": "30s", "deadline": "60s"}, "timeout must be at least the deadline"),
    ({"poll_every": "0s"}, "poll_every"),
    ({"poll_every": "2m"}, "poll_every"),
    ({"recipient": "b@example.test\r\nBcc: everyone@example.test"}, "not an email address"),
    ({"smtp_username": "u"}, "go together"),
    ({"imap_password": "written-in-yaml"}, "secrets must not be written"),
])
def test_bad_settings(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MailCanarySettings.model_validate({**BASE, **extra})
