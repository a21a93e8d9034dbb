"""IMAP probe against a real Dovecot on loopback (started once per session), a closed port and a mute one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.net.imap import mailbox_name
from continuity.probes.base import ProbeResult
from continuity.probes.imap import ImapProbe, ImapSettings
from tests.probes import peerfixtures
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import DovecotServer, MailUser, free_port

# Shared fixtures (pytest finds a fixture by its module-level name).
dovecot = peerfixtures.dovecot
mail_user = peerfixtures.mail_user


def check(probe: ImapProbe) -> ProbeResult:
    return asyncio.run(probe.check())


def imap_probe(make_probe: MakeProbe, server: DovecotServer, user: MailUser, **extra: object) -> ImapProbe:
    settings: dict[str, object] = {"host": server.host, "port": server.imap_port, "username": user.address,
                                   "password": FromEnv(user.password)}
    probe: ImapProbe = make_probe(ImapProbe, **{**settings, **extra})
    return probe


@pytest.fixture
def mute_port() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) and never greets."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


def test_up(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    result = check(imap_probe(make_probe, dovecot, mail_user, name="support-inbox"))
    assert result.status == "up", result.reason
    assert result.probe == "support-inbox"
    assert "Login: user=<" + mail_user.address in dovecot.log()


def test_wrong_password_is_login_refused(dovecot: DovecotServer, mail_user: MailUser,
                                         make_probe: MakeProbe) -> None:
    # Dovecot answers a bad login after about 2 s (its auth delay), so this is the only bad-login test.
    wrong = "Wr0ng-" + mail_user.password
    result = check(imap_probe(make_probe, dovecot, mail_user, password=FromEnv(wrong)))
    assert (result.status, result.reason) == ("down", "login refused")
    assert wrong not in repr(result)


def test_missing_mailbox(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    result = check(imap_probe(make_probe, dovecot, mail_user, mailbox="Support Queue"))
    assert result.status == "down"
    assert result.reason.startswith('cannot open mailbox "Support Queue"'), result.reason
    assert "secs" not in result.reason  # Dovecot's timing suffix is trimmed


def test_other_mailbox(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    with dovecot.imap(mail_user.address, mail_user.password, mailbox=None) as client:
        assert client.create(mailbox_name("Beérkezett & kész"))[0] == "OK"
    result = check(imap_probe(make_probe, dovecot, mail_user, mailbox="Beérkezett & kész"))
    assert result.status == "up", result.reason


def test_closed_port(make_probe: MakeProbe) -> None:
    probe: ImapProbe = make_probe(ImapProbe, host="127.0.0.1", port=free_port(), username="u",
                                  password=FromEnv("p"))
    result = check(probe)
    assert (result.status, result.reason) == ("down", "connection refused")


def test_server_that_never_greets(mute_port: int, make_probe: MakeProbe) -> None:
    probe: ImapProbe = make_probe(ImapProbe, host="127.0.0.1", port=mute_port, username="u",
                                  password=FromEnv("p"), timeout=1)
    result = check(probe)
    assert (result.status, result.reason) == ("down", "timed out after 1s")
    assert result.latency < 1.5


def test_starttls_the_server_does_not_offer(dovecot: DovecotServer, mail_user: MailUser,
                                            make_probe: MakeProbe) -> None:
    result = check(imap_probe(make_probe, dovecot, mail_user, security="starttls"))
    assert (result.status, result.reason) == ("down", "the server does not offer STARTTLS")


def test_tls_against_a_plain_port(dovecot: DovecotServer, mail_user: MailUser, make_probe: MakeProbe) -> None:
    result = check(imap_probe(make_probe, dovecot, mail_user, security="tls"))
    assert (result.status, result.reason) == ("down", "TLS failed (WRONG_VERSION_NUMBER)")


@pytest.mark.parametrize(("name", "wire"), [
    ("INBOX", '"INBOX"'),
    ('Say "hi"', '"Say \\"hi\\""'),
    ("Tom & Jerry", '"Tom &- Jerry"'),
    ("Beérkezett", '"Be&AOk-rkezett"'),
    ("日本語", '"&ZeVnLIqe-"'),
])
def test_mailbox_names_on_the_wire(name: str, wire: str) -> None:
    assert mailbox_name(name) == wire


def test_password_must_come_from_the_environment() -> None:
    with pytest.raises(ValidationError, match="secrets must not be written in the YAML"):
        ImapSettings.model_validate({"type": "imap", "host": "h", "username": "u", "password": "literal"})
