"""EmailSink against a real aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.sinks.base import Action, Rendered, SinkContext
from continuity.sinks.email import EmailSink, message_id
from tests.sinks.conftest import apply_once as run

SMTP_USER = "ops"
SMTP_PASSWORD = "pw-Sm7p-s3cret"  # the same as the fixture's


def make_sink(context: SinkContext, port: int, **extra: Any) -> EmailSink:
    cfg = EmailSink.Settings.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "sender": "Continuity <continuity@example.org>",
            "to": ["lead@example.org", "Agent Two <two@example.org>"],
            "timeout": 2,
            **extra,
        }
    )
    return EmailSink("team-mail", cfg, context)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def notify(make_action: Any, **overrides: Any) -> Action:
    action: Action = make_action(
        kind="notify", audience="staff", step_id="tell-team", key="sit-7/tell-team", **overrides
    )
    return action


def test_class_describes_itself() -> None:
    assert EmailSink.type_name == "email"
    assert EmailSink.actions == frozenset({"notify", "notice", "post"})
    # safe to run again: each recipient's progress is in the send marks, so a re-run repeats nobody
    assert EmailSink.idempotent and not EmailSink.reversible


def test_one_message_per_recipient(context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    action = notify(make_action)

    outcome = run(make_sink(context, smtp_server.port), action)

    assert outcome.ok, outcome.detail
    assert [m.rcpt_tos for m in smtp_server.messages] == [["lead@example.org"], ["two@example.org"]]
    assert {m.mail_from for m in smtp_server.messages} == {"continuity@example.org"}
    first, second = (parse(m.content) for m in smtp_server.messages)
    assert first["Subject"] == "Phone line down"
    assert first["From"] == "Continuity <continuity@example.org>"
    assert first["To"] == "lead@example.org"
    assert second["To"] == "Agent Two <two@example.org>"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Content-Language"] == action.primary.locale
    assert first["Date"] == "Mon, 23 Nov 2026 10:00:00 +0000"
    assert first["Message-ID"] == message_id("sit-7/tell-team", "lead@example.org")
    assert second["Message-ID"] == message_id("sit-7/tell-team", "two@example.org")
    assert first["Message-ID"] != second["Message-ID"]
    assert (
        first["Message-ID"].endswith("@continuity>") and len(first["Message-ID"]) == len("<>@continuity") + 32
    )

    body = first.get_content()
    english, german = body.split("-" * 40)
    assert "Please use chat or email." in english and "We are on it." in english
    assert "Bitte nutzen Sie Chat oder E-Mail." in german


def test_message_id_is_stable_across_runs(context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    assert run(make_sink(context, smtp_server.port, to=["lead@example.org"]), notify(make_action)).ok
    forgetful = SinkContext(context.base_dir, context.clock)  # another process, with marks of its own
    assert run(make_sink(forgetful, smtp_server.port, to=["lead@example.org"]), notify(make_action)).ok
    ids = [parse(m.content)["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_single_locale_has_no_separator(context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    only = [Rendered("en", {"subject": "Hi", "body": "Just English."})]
    assert run(make_sink(context, smtp_server.port), notify(make_action, messages=only)).ok
    assert parse(smtp_server.messages[0].content).get_content().splitlines() == ["Just English."]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("451 4.3.0 Mailbox busy, try later", "retryable"),
        ("452 4.2.2 Mailbox full", "retryable"),
        ("550 5.1.1 No such user", "error"),
        ("553 5.7.1 Relaying denied", "error"),
    ],
)
def test_smtp_replies(
    context: SinkContext, make_action: Any, smtp_server: Any, reply: str, expected: str
) -> None:
    smtp_server.rcpt_replies["lead@example.org"] = reply
    outcome = run(make_sink(context, smtp_server.port, to=["lead@example.org"]), notify(make_action))
    assert outcome.status == expected, outcome.detail
    assert reply[:3] in outcome.detail
    assert smtp_server.messages == []


def test_connection_refused_is_retryable(context: SinkContext, make_action: Any, closed_port: int) -> None:
    outcome = run(make_sink(context, closed_port), notify(make_action))
    assert outcome.status == "retryable"
    assert f"127.0.0.1:{closed_port}" in outcome.detail


def test_silent_server_times_out_and_is_retryable(
    context: SinkContext, make_action: Any, silent_port: int
) -> None:
    outcome = run(make_sink(context, silent_port, timeout=0.3), notify(make_action))
    assert outcome.status == "retryable"


def test_a_retry_only_goes_to_recipients_still_waiting(
    context: SinkContext, make_action: Any, smtp_server: Any
) -> None:
    sink = make_sink(context, smtp_server.port)
    smtp_server.rcpt_replies["two@example.org"] = "451 4.3.0 try later"

    first = run(sink, notify(make_action))
    assert first.status == "retryable"
    assert "sent to 1 of 2" in first.detail

    del smtp_server.rcpt_replies["two@example.org"]
    second = run(sink, notify(make_action))
    assert second.ok, second.detail
    assert [m.rcpt_tos for m in smtp_server.messages] == [["lead@example.org"], ["two@example.org"]]


def test_login(context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    sink = make_sink(context, smtp_server.port, username=SMTP_USER, password=FromEnv(SMTP_PASSWORD))
    outcome = run(sink, notify(make_action))
    assert outcome.ok, outcome.detail
    assert smtp_server.logins == [(SMTP_USER, True)]
    assert len(smtp_server.messages) == 2


def test_wrong_password_fails_without_showing_it(
    context: SinkContext, make_action: Any, smtp_server: Any
) -> None:
    wrong = "wrong-pw-0xDEADBEEF"
    sink = make_sink(context, smtp_server.port, username=SMTP_USER, password=FromEnv(wrong))
    outcome = run(sink, notify(make_action))
    assert outcome.status == "error"
    assert "535" in outcome.detail and "login refused" in outcome.detail
    assert wrong not in repr(outcome)
    assert smtp_server.messages == []


def test_password_never_reaches_outcome_details(
    context: SinkContext, make_action: Any, smtp_server: Any, closed_port: int, silent_port: int
) -> None:
    smtp_server.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    smtp_server.rcpt_replies["busy@example.org"] = f"451 4.3.0 busy {SMTP_PASSWORD}"  # a server echoing it
    login = {"username": SMTP_USER, "password": FromEnv(SMTP_PASSWORD), "timeout": 0.3}
    cases = [
        (smtp_server.port, ["lead@example.org"]),
        (smtp_server.port, ["gone@example.org"]),
        (smtp_server.port, ["busy@example.org"]),
        (closed_port, ["lead@example.org"]),
        (silent_port, ["lead@example.org"]),
    ]
    for port, to in cases:
        sink = make_sink(context, port, to=to, **login)
        outcome = run(sink, notify(make_action))
        assert SMTP_PASSWORD not in repr(outcome)
        assert SMTP_PASSWORD not in repr(sink.settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"to": []},
        {"to": ["not-an-address"]},
        {"sender": "ops@example.org\r\nBcc: everyone@example.org"},
        {"password": "literal-in-yaml", "username": "ops"},
        {"username": "ops"},
        {"security": "ssl"},
        {"smtp_host": "typo"},
    ],
)
def test_settings_are_strict(settings: dict[str, Any]) -> None:
    base = {"sender": "ops@example.org", "to": ["lead@example.org"]}
    with pytest.raises(ValidationError):
        EmailSink.Settings.model_validate({**base, **settings})


def test_starttls_required_but_not_offered_fails(
    context: SinkContext, make_action: Any, smtp_server: Any
) -> None:
    # The test server offers no STARTTLS; sending in clear text anyway would be worse than failing.
    outcome = run(make_sink(context, smtp_server.port, security="starttls"), notify(make_action))
    assert outcome.status == "error", outcome.detail
    assert smtp_server.messages == []
