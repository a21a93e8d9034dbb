"""SMTP probe over TLS against a real aiosmtpd on loopback: STARTTLS and implicit TLS, a certificate from a
private CA that is trusted (SSL_CERT_FILE), ignored (verify_tls: false) or not trusted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from continuity.config.envrefs import FromEnv
from continuity.probes.base import ProbeResult
from continuity.probes.smtp import SmtpProbe
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import HOST, SmtpRelay, free_port
from tests.tlscerts import TlsFiles, make_tls_files

USER = "ops"
PASSWORD = "pw-Sm7p-tls-pr0be-s3cret"
MODES = ["starttls", "tls"]


@dataclass
class TlsSmtpRelay(SmtpRelay):
    """SmtpRelay (swallowing mail) behind STARTTLS, which it requires, or implicit TLS; notes whether each
    login came over an encrypted connection."""

    security: str = "starttls"
    tls: TlsFiles | None = None
    logins_over_tls: list[bool] = field(default_factory=list)

    def start(self) -> TlsSmtpRelay:
        assert self.tls is not None
        self.port = free_port()
        ctx = self.tls.server_context()
        if self.security == "starttls":
            # auth_require_tls: AUTH is neither offered nor accepted before STARTTLS.
            kwargs: dict[str, Any] = {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True}
        else:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here the connection is encrypted from the start.
            kwargs = {"ssl_context": ctx, "auth_require_tls": False}
        self._controller = Controller(self, hostname=HOST, port=self.port, **kwargs)
        self._controller.start()
        return self

    def __enter__(self) -> TlsSmtpRelay:
        return self.start()

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> str:
        encrypted = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.logins_over_tls.append(encrypted)
        return await super().handle_AUTH(server, session, envelope, args)


@pytest.fixture(scope="module")
def loopback_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate for 127.0.0.1 from a private CA."""
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(scope="module")
def other_name_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A certificate from a private CA for another host name (not 127.0.0.1)."""
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls-other"), names=("mail.example.test",))


@pytest.fixture(params=MODES)
def tls_server(request: pytest.FixtureRequest, loopback_cert: TlsFiles) -> Iterator[TlsSmtpRelay]:
    with TlsSmtpRelay(mode="swallow", credentials=(USER, PASSWORD), security=request.param,
                      tls=loopback_cert) as server:
        yield server


def check(make_probe: MakeProbe, server: TlsSmtpRelay, **extra: Any) -> ProbeResult:
    settings: dict[str, Any] = {"host": HOST, "port": server.port, "security": server.security,
                                "username": USER, "password": FromEnv(PASSWORD), "timeout": 5, **extra}
    probe: SmtpProbe = make_probe(SmtpProbe, **settings)
    return asyncio.run(probe.check())


def test_up_without_verification(tls_server: TlsSmtpRelay, make_probe: MakeProbe) -> None:
    result = check(make_probe, tls_server, verify_tls=False)
    assert result.status == "up", result.reason
    assert tls_server.logins == [(USER, True)]
    assert tls_server.logins_over_tls == [True]


def test_up_with_verification_when_the_ca_is_trusted(tls_server: TlsSmtpRelay, loopback_cert: TlsFiles,
                                                    make_probe: MakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_cert.trust(monkeypatch)
    result = check(make_probe, tls_server)
    assert result.status == "up", result.reason
    assert tls_server.logins_over_tls == [True]


def test_untrusted_certificate_is_down(tls_server: TlsSmtpRelay, make_probe: MakeProbe) -> None:
    result = check(make_probe, tls_server)  # verify_tls defaults to true; the CA is trusted nowhere
    assert result.status == "down"
    assert result.reason.startswith("TLS certificate not trusted ("), result.reason
    assert "certificate" in result.reason.split("(", 1)[1]  # OpenSSL's own words follow
    assert tls_server.logins == []  # the password was never sent
    assert PASSWORD not in repr(result)


@pytest.mark.parametrize("security", MODES)
def test_certificate_for_another_host_is_down(security: str, other_name_cert: TlsFiles, make_probe: MakeProbe,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The CA is trusted, so only the name check can fail: verification really compares names.
    other_name_cert.trust(monkeypatch)
    with TlsSmtpRelay(mode="swallow", credentials=(USER, PASSWORD), security=security,
                      tls=other_name_cert) as server:
        result = check(make_probe, server)
        assert result.status == "down"
        assert result.reason.startswith("TLS certificate not trusted ("), result.reason
        assert "mismatch" in result.reason.lower() and "127.0.0.1" in result.reason
        assert server.logins == []
