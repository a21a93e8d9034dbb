"""SMTP probe against real loopback servers: aiosmtpd, a server that greets 421, a silent one, a closed port."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.net.reason import scrub
from continuity.probes.base import ProbeResult
from continuity.probes.smtp import SmtpProbe, SmtpSettings
from tests.probes.conftest import MakeProbe
from tests.probes.mailpeers import SmtpRelay, free_port

USER = "ops"
PASSWORD = "pw-Sm7p-pr0be-s3cret"


@pytest.fixture
def smtp_server() -> Iterator[SmtpRelay]:
    """aiosmtpd that accepts and drops mail; AUTH PLAIN checks USER / PASSWORD."""
    with SmtpRelay(mode="swallow", credentials=(USER, PASSWORD)) as server:
        yield server


def check(probe: SmtpProbe) -> ProbeResult:
    return asyncio.run(probe.check())


def greeting_server_check(greeting: bytes, probe_settings: dict[str, Any], make_probe: MakeProbe) -> ProbeResult:
    """Run the probe against a server that sends `greeting` (b"" for never) and then waits."""

    async def go() -> ProbeResult:
        handlers: list[asyncio.Task[None]] = []

        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                if greeting:
                    writer.write(greeting)
                    await writer.drain()
                await reader.read()  # until the client goes
            finally:
                writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            probe: SmtpProbe = make_probe(SmtpProbe, host="127.0.0.1", port=port, **probe_settings)
            return await probe.check()
        finally:
            server.close()
            await server.wait_closed()
            # A client that gave up may not have closed yet: end the handlers here, not at loop shutdown.
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    return asyncio.run(go())


def test_up(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    result = check(make_probe(SmtpProbe, host="127.0.0.1", port=smtp_server.port, name="mail-out"))
    assert result.status == "up", result.reason
    assert result.probe == "mail-out"
    assert 0 < result.latency < 2


def test_login_accepted(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    probe = make_probe(SmtpProbe, host="127.0.0.1", port=smtp_server.port, username=USER, password=FromEnv(PASSWORD))
    result = check(probe)
    assert result.status == "up", result.reason
    assert smtp_server.logins == [(USER, True)]


def test_login_refused(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    wrong = "wr0ng-pw-" + PASSWORD
    probe = make_probe(SmtpProbe, host="127.0.0.1", port=smtp_server.port, username=USER, password=FromEnv(wrong))
    result = check(probe)
    assert result.status == "down"
    assert result.reason.startswith("login refused"), result.reason
    assert "535" in result.reason
    assert wrong not in result.reason


@pytest.mark.parametrize(("greeting", "reason"), [
    (b"421 4.3.2 Service not available, closing channel\r\n", "SMTP 421 4.3.2 Service not available"),
    (b"554 5.3.2 No service here\r\n", "SMTP 554 5.3.2 No service here"),
])
def test_refusing_greeting_is_down_with_the_code(greeting: bytes, reason: str, make_probe: MakeProbe) -> None:
    result = greeting_server_check(greeting, {}, make_probe)
    assert result.status == "down"
    assert result.reason.startswith(reason), result.reason


def test_server_that_never_greets_times_out(make_probe: MakeProbe) -> None:
    result = greeting_server_check(b"", {"timeout": 1}, make_probe)
    assert (result.status, result.reason) == ("down", "timed out after 1s")
    assert result.latency < 1.5


def test_closed_port_is_refused(make_probe: MakeProbe) -> None:
    result = check(make_probe(SmtpProbe, host="127.0.0.1", port=free_port()))
    assert (result.status, result.reason) == ("down", "connection refused")


def test_starttls_the_server_does_not_offer(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    result = check(make_probe(SmtpProbe, host="127.0.0.1", port=smtp_server.port, security="starttls"))
    assert result.status == "down"
    assert "STARTTLS" in result.reason


def test_tls_against_a_plain_server(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    result = check(make_probe(SmtpProbe, host="127.0.0.1", port=smtp_server.port, security="tls", timeout=2))
    assert (result.status, result.reason) == ("down", "TLS failed (WRONG_VERSION_NUMBER)")


class EchoingServer(SmtpRelay):
    """A careless server that repeats the password it was given in its refusal."""

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> str:
        if args[0].upper() != "PLAIN" or len(args) != 2:
            return "535 5.7.8 Authentication credentials invalid"
        password = base64.b64decode(args[1]).decode().split("\0")[2]
        return f"535 5.7.8 password {password} is wrong"


def test_password_never_reaches_a_reason(smtp_server: SmtpRelay, make_probe: MakeProbe) -> None:
    """Every failing path, with a server that echoes the password: none of them passes it on."""
    secret = "Echo-Me-" + PASSWORD
    with EchoingServer(mode="swallow", auth_mechanisms=("PLAIN",)) as echoing:
        cases: list[dict[str, Any]] = [
            {"port": echoing.port},  # refused login, the password in the answer
            {"port": smtp_server.port},  # refused login
            {"port": smtp_server.port, "security": "starttls"},
            {"port": free_port()},
        ]
        for extra in cases:
            probe = make_probe(SmtpProbe, host="127.0.0.1", username=USER, password=FromEnv(secret), **extra)
            result = check(probe)
            assert result.status == "down"
            assert secret not in result.reason and secret not in repr(result)
            assert secret not in repr(probe.settings)
            if extra["port"] == echoing.port:
                assert result.reason == "login refused (SMTP 535 5.7.8 password ********** is wrong)"


def test_password_must_come_from_the_environment() -> None:
    with pytest.raises(ValidationError, match="secrets must not be written in the YAML"):
        SmtpSettings.model_validate({"type": "smtp", "host": "mail", "username": USER, "password": PASSWORD})


def test_username_and_password_go_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        SmtpSettings.model_validate({"type": "smtp", "host": "mail", "username": USER})


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(ValidationError):
        SmtpSettings.model_validate({"type": "smtp", "host": "mail", "hostname": "x"})


@pytest.mark.parametrize(("text", "secret", "expected"), [
    ("535 bad password hunter22", "hunter22", "535 bad password **********"),
    ("535 bad password p", "p", "(server text withheld: it contains the password)"),
    ("535 5.7.8   credentials\r\n invalid", "hunter22", "535 5.7.8 credentials invalid"),
    ("x" * 300, None, "x" * 159 + "…"),
])
def test_server_text_is_scrubbed(text: str, secret: str | None, expected: str) -> None:
    assert scrub(text, secret) == expected
