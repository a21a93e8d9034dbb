"""IMAP probe over TLS against a real Dovecot on loopback with ssl on: STARTTLS on the IMAP port and implicit
TLS on the IMAPS port, with a certificate from a private CA that is trusted (SSL_CERT_FILE), ignored
(verify_tls: false) or not trusted."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator

import pytest

from continuity.config.envrefs import FromEnv
from continuity.probes.base import ProbeResult
from continuity.probes.imap import ImapProbe
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import DovecotServer, MailUser
from tests.tlscerts import TlsFiles, make_tls_files

MODES = ["starttls", "tls"]
_mailboxes = itertools.count(1)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("imap-tls"))


@pytest.fixture(scope="module")
def tls_dovecot(tls_files: TlsFiles) -> Iterator[DovecotServer]:
    """A Dovecot of this module's own (the shared one has ssl off, which its tests rely on)."""
    with DovecotServer(tls_cert=tls_files.cert, tls_key=tls_files.key) as server:
        yield server


@pytest.fixture
def tls_user(tls_dovecot: DovecotServer) -> MailUser:
    """A mailbox of this test's own, so the login lines in Dovecot's log are this test's."""
    return tls_dovecot.add_user(f"tls{next(_mailboxes)}@example.test", "pw-Imap-tls-s3cret")


def check(make_probe: MakeProbe, server: DovecotServer, user: MailUser, security: str, **extra: object) -> ProbeResult:
    port = server.imaps_port if security == "tls" else server.imap_port
    probe: ImapProbe = make_probe(ImapProbe, host=server.host, port=port, security=security, timeout=5,
                                  username=user.address, password=FromEnv(user.password), **extra)
    return asyncio.run(probe.check())


def login_lines(server: DovecotServer, user: MailUser, wait: float = 0.0) -> list[str]:
    """Dovecot's log lines for this user's logins, waiting up to `wait` seconds for the first to be written."""
    end = time.monotonic() + wait
    while True:
        lines = [line for line in server.log().splitlines() if f"Login: user=<{user.address}>" in line]
        if lines or time.monotonic() >= end:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("security", MODES)
def test_up_without_verification(security: str, tls_dovecot: DovecotServer, tls_user: MailUser,
                                 make_probe: MakeProbe) -> None:
    result = check(make_probe, tls_dovecot, tls_user, security, verify_tls=False)
    assert result.status == "up", result.reason
    lines = login_lines(tls_dovecot, tls_user, wait=2)
    # Dovecot marks a login that came over TLS with "TLS" (a plain loopback login says "secured").
    assert len(lines) == 1 and ", TLS," in lines[0], lines


@pytest.mark.parametrize("security", MODES)
def test_up_with_verification_when_the_ca_is_trusted(security: str, tls_dovecot: DovecotServer,
                                                     tls_user: MailUser, tls_files: TlsFiles,
                                                     make_probe: MakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    tls_files.trust(monkeypatch)
    result = check(make_probe, tls_dovecot, tls_user, security)
    assert result.status == "up", result.reason
    lines = login_lines(tls_dovecot, tls_user, wait=2)
    assert len(lines) == 1 and ", TLS," in lines[0], lines


@pytest.mark.parametrize("security", MODES)
def test_untrusted_certificate_is_down(security: str, tls_dovecot: DovecotServer, tls_user: MailUser,
                                       make_probe: MakeProbe) -> None:
    result = check(make_probe, tls_dovecot, tls_user, security)  # verify_tls defaults to true
    assert result.status == "down"
    assert result.reason.startswith("TLS certificate not trusted ("), result.reason
    assert "certificate" in result.reason.split("(", 1)[1]  # OpenSSL's own words follow
    assert tls_user.password not in repr(result)
    assert login_lines(tls_dovecot, tls_user, wait=0.5) == []  # the password was never sent
