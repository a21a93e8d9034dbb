"""Pytest fixtures around the servers in mailpeers.py. A test module binds the ones it uses to module names
(pytest_plugins is only honoured in the root conftest):

    from tests.probes import peerfixtures

    dovecot = peerfixtures.dovecot
    mail_user = peerfixtures.mail_user

One Dovecot serves the whole session (it takes a second or two to stop): the first module to ask starts it,
later modules, which get their own copy of the fixture, reuse it, and the first one stops it at the end.
Each test gets its own mailbox through `mail_user`, so tests never see each other's mail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.probes.mailpeers import DovecotServer, MailUser, SilentUdpPort, SippServer, SmtpRelay, closed_udp_port

_shared: dict[str, DovecotServer] = {}
_mailboxes = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """The session's Dovecot (IMAP and LMTP on loopback); fails, never skips, when Dovecot is missing."""
    if "server" in _shared:
        yield _shared["server"]
        return
    server = DovecotServer().start()
    _shared["server"] = server
    try:
        yield server
    finally:
        del _shared["server"]
        server.stop()


@pytest.fixture
def mail_user(dovecot: DovecotServer) -> MailUser:
    """A fresh, empty mailbox for this test."""
    return dovecot.add_user(f"support{next(_mailboxes)}@example.test", "pw-Imap-s3cret")


@pytest.fixture
def smtp_relay(dovecot: DovecotServer) -> Iterator[SmtpRelay]:
    """SMTP on loopback relaying every accepted message into Dovecot (set `.mode` to refuse or swallow)."""
    with SmtpRelay.into(dovecot) as relay:
        yield relay


@pytest.fixture(scope="module")
def sipp_ok() -> Iterator[SippServer]:
    """SIPp answering OPTIONS with 200 OK over UDP."""
    with SippServer("200 OK") as server:
        yield server


@pytest.fixture(scope="module")
def sipp_unavailable() -> Iterator[SippServer]:
    """SIPp answering OPTIONS with 503 Service Unavailable over UDP (a PBX that is up but not working)."""
    with SippServer("503 Service Unavailable") as server:
        yield server


@pytest.fixture
def silent_udp() -> Iterator[SilentUdpPort]:
    """A UDP port that receives and never answers."""
    with SilentUdpPort() as port:
        yield port


@pytest.fixture
def closed_udp() -> int:
    """A UDP port nothing is bound to (ICMP port unreachable)."""
    return closed_udp_port()
