"""The e-mail sink's point of no return: the final dot of DATA. A failure before it is a safe retry; a late or
lost reply after it is `uncertain` and never a second copy, against a real aiosmtpd server with the faults
of a slow content filter, a dropped line and a refusal after the dot."""

from __future__ import annotations

from typing import Any

import pytest

from continuity.sinks.base import SinkContext
from tests.sinks.conftest import apply_once as run
from tests.sinks.test_email import make_sink, notify


def test_a_reply_later_than_the_timeout_is_uncertain_and_never_sent_again(
        context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    smtp_server.data_delay = 1.0  # answers 250, but after the sink stopped waiting
    sink = make_sink(context, smtp_server.port, to=["lead@example.org"], timeout=0.3)

    first = run(sink, notify(make_action))

    assert first.status == "uncertain", first.detail
    assert "lead@example.org" in first.detail and "continuity settle ID sent" in first.detail
    assert len(smtp_server.messages) == 1
    smtp_server.data_delay = 0
    for _ in range(3):  # the runner's retries, a tick, a restart: none sends a second copy
        again = run(sink, notify(make_action))
        assert again.status == "uncertain", again.detail
    assert len(smtp_server.messages) == 1


def test_a_line_dropped_after_the_final_dot_is_uncertain(
        context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    smtp_server.drop_after_data = True
    sink = make_sink(context, smtp_server.port, to=["lead@example.org"])

    outcome = run(sink, notify(make_action))

    assert outcome.status == "uncertain", outcome.detail
    smtp_server.drop_after_data = False
    assert run(sink, notify(make_action)).status == "uncertain"
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("reply", ["451 4.7.1 greylisted, come back later", "452 4.3.1 insufficient storage",
                                   "421 4.3.2 shutting down"])
def test_a_refusal_after_the_final_dot_is_retried_because_nothing_was_delivered(
        context: SinkContext, make_action: Any, smtp_server: Any, reply: str) -> None:
    smtp_server.data_reply = reply
    sink = make_sink(context, smtp_server.port, to=["lead@example.org"])

    first = run(sink, notify(make_action))
    assert first.status == "retryable" and reply[:3] in first.detail, first.detail

    smtp_server.data_reply = None
    second = run(sink, notify(make_action))
    assert second.ok, second.detail
    assert context.marks.state("sit-7/tell-team", "lead@example.org") == "sent"
    assert run(sink, notify(make_action)).ok  # already sent: nothing more goes out
    assert len(smtp_server.messages) == 2  # the refused copy and the accepted one


def test_one_late_recipient_does_not_hold_up_or_repeat_the_others(
        context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    smtp_server.data_delay = 1.0
    sink = make_sink(context, smtp_server.port, timeout=0.3)  # lead@ and two@

    first = run(sink, notify(make_action))  # lead@ is late, so is two@ (the same slow filter)
    assert first.status == "uncertain"
    assert "lead@example.org" in first.detail and "two@example.org" in first.detail
    assert [m.rcpt_tos for m in smtp_server.messages] == [["lead@example.org"], ["two@example.org"]]

    smtp_server.data_delay = 0
    context.marks.forget("sit-7/tell-team", "two@example.org")  # a person said: two@ never got it
    second = run(sink, notify(make_action))
    assert second.status == "uncertain" and "two@example.org" not in second.detail, second.detail
    assert [m.rcpt_tos for m in smtp_server.messages][-1] == ["two@example.org"]
    assert len(smtp_server.messages) == 3


def test_resend_unconfirmed_sends_again_for_a_server_that_deduplicates(
        context: SinkContext, make_action: Any, smtp_server: Any) -> None:
    smtp_server.data_delay = 1.0
    sink = make_sink(context, smtp_server.port, to=["lead@example.org"], timeout=0.3, resend_unconfirmed=True)

    first = run(sink, notify(make_action))
    assert first.status == "retryable" and "resend_unconfirmed" in first.detail, first.detail

    smtp_server.data_delay = 0
    assert run(sink, notify(make_action)).ok
    ids = {m.content.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for m in smtp_server.messages}
    assert len(smtp_server.messages) == 2 and len(ids) == 1, "the same Message-ID, for the server to drop"
