"""EmailSink over TLS against a real aiosmtpd on loopback: STARTTLS and implicit TLS, each with a certificate
from a private CA that the process either trusts (SSL_CERT_FILE) or does not.

The sink verifies against the default trust store (the success path trusts the test CA the way an operator
would for a private CA), or not at all with `verify_tls: false`. A certificate it cannot trust fails the step
at once, saying so: retrying does not fix a certificate.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from continuity.config.envrefs import FromEnv
from continuity.sinks.base import Action, SinkContext
from continuity.sinks.email import EmailSink
from tests.sinks.conftest import SMTP_PASSWORD, SMTP_USER, MakeAction, SmtpRecorder, free_port
from tests.sinks.conftest import apply_once as run
from tests.sinks.test_email import make_sink as plain_sink
from tests.tlscerts import TlsFiles, make_tls_files

MODES = ["starttls", "tls"]


@dataclass
class TlsRecorder(SmtpRecorder):
    """SmtpRecorder that also notes, per message and per login, whether the connection was encrypted."""

    mode: str = "starttls"
    messages_over_tls: list[bool] = field(default_factory=list)
    logins_over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages_over_tls.append(_encrypted(server))
        return await super().handle_DATA(server, session, envelope)

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> str:
        self.logins_over_tls.append(_encrypted(server))
        return await super().handle_AUTH(server, session, envelope, args)


def _encrypted(server: SMTP) -> bool:
    # After STARTTLS and on an implicit-TLS port alike, the transport the session speaks through is TLS.
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(params=MODES)
def tls_smtp(request: pytest.FixtureRequest, tls_files: TlsFiles) -> Iterator[TlsRecorder]:
    """aiosmtpd speaking STARTTLS (and refusing mail before it) or TLS from the first byte."""
    recorder = TlsRecorder(mode=request.param)
    recorder.port = free_port()
    ctx = tls_files.server_context()
    if recorder.mode == "starttls":
        # require_starttls: MAIL before STARTTLS is refused, so a delivered message came over TLS.
        kwargs: dict[str, Any] = {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True}
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; the whole connection is encrypted here anyway.
        kwargs = {"ssl_context": ctx, "auth_require_tls": False}
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port, **kwargs)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


def make_sink(context: SinkContext, server: TlsRecorder, password: str = SMTP_PASSWORD, **extra: Any) -> EmailSink:
    return plain_sink(context, server.port, security=server.mode, username=SMTP_USER, password=FromEnv(password),
                      timeout=5, **extra)


def notify(make_action: MakeAction) -> Action:
    return make_action(kind="notify", audience="staff", step_id="tell-team", key="sit-7/tell-team")


def test_sends_over_tls_when_the_certificate_is_trusted(
    context: SinkContext, make_action: MakeAction, tls_smtp: TlsRecorder, tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls_files.trust(monkeypatch)

    outcome = run(make_sink(context, tls_smtp), notify(make_action))

    assert outcome.ok, outcome.detail
    assert outcome.detail == "sent to 2 recipient(s)"
    assert [m.rcpt_tos for m in tls_smtp.messages] == [["lead@example.org"], ["two@example.org"]]
    assert tls_smtp.messages_over_tls == [True, True]
    # The login, and with it the password, went over the encrypted connection.
    assert tls_smtp.logins == [(SMTP_USER, True)]
    assert tls_smtp.logins_over_tls == [True]
    first = email.message_from_bytes(tls_smtp.messages[0].content, policy=email.policy.default)
    assert first["Subject"] == "Phone line down"


def test_untrusted_certificate_stops_before_login_and_mail(
    context: SinkContext, make_action: MakeAction, tls_smtp: TlsRecorder
) -> None:
    # The CA was made for this test run, so no trust store on the machine can hold it.
    secret = "pw-Untrusted-" + SMTP_PASSWORD

    outcome = run(make_sink(context, tls_smtp, password=secret), notify(make_action))

    assert not outcome.ok
    assert tls_smtp.messages == []
    assert tls_smtp.logins == [] and tls_smtp.logins_over_tls == []  # the password never left the process
    assert secret not in repr(outcome)
    assert "Traceback" not in outcome.detail and "\n" not in outcome.detail


def test_untrusted_certificate_outcome_says_so(
    context: SinkContext, make_action: MakeAction, tls_smtp: TlsRecorder
) -> None:
    outcome = run(make_sink(context, tls_smtp), notify(make_action))

    assert outcome.status == "error", "a certificate is not fixed by retrying"
    assert f"TLS with the mail server at 127.0.0.1:{tls_smtp.port} failed: TLS certificate not trusted" in \
        outcome.detail, outcome.detail
    assert "verify_tls: false" in outcome.detail


def test_verify_tls_off_sends_to_a_private_server(
    context: SinkContext, make_action: MakeAction, tls_smtp: TlsRecorder
) -> None:
    outcome = run(make_sink(context, tls_smtp, verify_tls=False), notify(make_action))

    assert outcome.ok, outcome.detail
    assert tls_smtp.messages_over_tls == [True, True]
