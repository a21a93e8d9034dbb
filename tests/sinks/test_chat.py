"""ChatSink through apprise's json:// and form:// URLs, pointed at a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.sinks.base import Action, Rendered, SinkContext
from continuity.sinks.chat import ChatSink, target_part
from tests.sinks.conftest import Recorded
from tests.sinks.conftest import apply_once as run

TOKEN = "xoxb-Ch4t-t0ken-5ecret"


def make_sink(context: SinkContext, *urls: str) -> ChatSink:
    """A sink whose URLs count as written with ${ENV} references, as the config demands."""
    cfg = ChatSink.Settings.model_validate({"urls": [FromEnv(u) for u in urls]})
    return ChatSink("staff-chat", cfg, context)


def json_url(port: int, path: str = "/chat") -> str:
    return f"json://127.0.0.1:{port}{path}"


def notify(make_action: Any, **overrides: Any) -> Action:
    action: Action = make_action(
        kind="notify", audience="staff", step_id="tell-team", key="sit-7/tell-team", **overrides
    )
    return action


def test_class_describes_itself() -> None:
    assert ChatSink.type_name == "chat"
    assert ChatSink.actions == frozenset({"notify", "post"})
    # Idempotent through the send marks: a re-run after a crash never posts a target twice (tests below).
    assert ChatSink.idempotent and not ChatSink.reversible


def test_json_target_gets_title_and_body(context: SinkContext, make_action: Any, http_server: Any) -> None:
    outcome = run(make_sink(context, json_url(http_server.port)), notify(make_action))

    assert outcome.ok, outcome.detail
    [req] = http_server.requests
    assert (req.method, req.path) == ("POST", "/chat")
    doc = json.loads(req.body)
    assert doc["title"] == "Our phone line is down"
    assert doc["message"].startswith("Please use chat or email.")
    assert "Bitte nutzen Sie Chat oder E-Mail." in doc["message"]


def test_form_target(context: SinkContext, make_action: Any, http_server: Any) -> None:
    single = [Rendered("en", {"title": "Heads up", "body": "Queue is long"})]
    url = f"form://127.0.0.1:{http_server.port}/form"
    assert run(make_sink(context, url), notify(make_action, messages=single)).ok
    [req] = http_server.requests
    assert req.path == "/form"
    assert b"Queue+is+long" in req.body or b"Queue is long" in req.body


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "ok"), (204, "ok"), (400, "retryable"), (500, "retryable"), (503, "retryable")],
)
def test_status_codes(
    context: SinkContext, make_action: Any, http_server: Any, status: int, expected: str
) -> None:
    # apprise reports only delivered / not delivered, so every failure is worth another try.
    http_server.status = status
    outcome = run(make_sink(context, json_url(http_server.port)), notify(make_action))
    assert outcome.status == expected, outcome.detail


def test_connection_refused_is_retryable(context: SinkContext, make_action: Any, closed_port: int) -> None:
    outcome = run(make_sink(context, json_url(closed_port)), notify(make_action))
    assert outcome.status == "retryable"
    assert outcome.detail.startswith("chat target 1 of 1 failed")


def test_failed_target_is_named_by_position_and_retried_alone(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    http_server.by_path = {"/broken": 500}
    sink = make_sink(
        context,
        json_url(http_server.port, "/a"),
        json_url(http_server.port, "/broken"),
        json_url(http_server.port, "/c"),
    )

    first = run(sink, notify(make_action))
    assert first.status == "retryable"
    assert first.detail.startswith("chat target 2 of 3 failed")

    http_server.by_path = {}
    second = run(sink, notify(make_action))
    assert second.ok, second.detail
    assert [r.path for r in http_server.requests] == ["/a", "/broken", "/c", "/broken"]


def test_unknown_url_fails_without_echoing_it(
    context: SinkContext, make_action: Any, http_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = f"nosuchservice://{TOKEN}@chat.example.org"
    outcome = run(make_sink(context, json_url(http_server.port), bad), notify(make_action))

    assert outcome.status == "error"
    assert "chat target(s) 2 of 2" in outcome.detail
    assert TOKEN not in repr(outcome)
    assert TOKEN not in caplog.text
    assert http_server.requests == []  # nothing half-sent while the config is wrong


def test_token_never_reaches_details_or_logs(
    context: SinkContext,
    make_action: Any,
    http_server: Any,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        (f"json://bot:{TOKEN}@127.0.0.1:{http_server.port}/chat", 200),
        (f"json://bot:{TOKEN}@127.0.0.1:{http_server.port}/chat", 500),
        (f"json://bot:{TOKEN}@127.0.0.1:{closed_port}/chat", 200),
        (f"json://127.0.0.1:{http_server.port}/hooks/{TOKEN}", 500),
        (TOKEN, 200),
    ]
    for url, status in cases:
        http_server.status = status
        outcome = run(make_sink(context, url), notify(make_action))
        assert TOKEN not in repr(outcome), url
    assert TOKEN not in caplog.text
    assert "apprise" in caplog.text  # the logs were captured, and blanked


def test_the_log_filter_is_removed_on_close(context: SinkContext, make_action: Any, http_server: Any) -> None:
    loggers = [logging.getLogger("apprise"), logging.getLogger("urllib3.connectionpool")]
    before = [list(lg.filters) for lg in loggers]
    run(make_sink(context, json_url(http_server.port)), notify(make_action))
    assert [lg.filters for lg in loggers] == before


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        ChatSink.Settings.model_validate({"urls": []})
    with pytest.raises(ValidationError):
        ChatSink.Settings.model_validate({"url": "json://x"})
    with pytest.raises(ValidationError, match="embeds its token"):
        ChatSink.Settings.model_validate({"urls": [f"slack://{TOKEN}/B0/C0"]})


# send marks: what survives a retry and a restart ------------------------------------------------------------------
#
# Each test builds a fresh sink for every apply, sharing only the context's marks: what the second sink knows
# it can only know from the marks, as a restarted process knows it only from the store.


def test_a_second_apply_with_the_same_marks_posts_nothing(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    url = json_url(http_server.port)
    first = run(make_sink(context, url), notify(make_action))
    assert first.ok, first.detail
    assert context.marks.state("sit-7/tell-team", target_part(url)) == "sent"

    again = run(make_sink(context, url), notify(make_action))

    assert again.ok, again.detail
    assert "already sent to every chat target (1)" in again.detail
    assert len(http_server.requests) == 1


def test_the_mark_is_ending_while_the_service_has_the_message(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    url = json_url(http_server.port)
    seen: list[str | None] = []

    def respond(req: Recorded) -> tuple[int, dict[str, str], bytes]:
        seen.append(context.marks.state("sit-7/tell-team", target_part(url)))
        return 200, {}, b"{}"

    http_server.respond = respond
    assert run(make_sink(context, url), notify(make_action)).ok
    assert seen == ["ending"]  # written before the request went out: a crash now leaves it for a person
    assert context.marks.state("sit-7/tell-team", target_part(url)) == "sent"


def test_an_ending_mark_is_uncertain_and_posts_nothing(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    url = json_url(http_server.port)
    context.marks.ending("sit-7/tell-team", target_part(url))  # a crash while the service had the message

    outcome = run(make_sink(context, url), notify(make_action))

    assert outcome.status == "uncertain", outcome.detail
    assert "chat target 1 of 1" in outcome.detail and "continuity settle ID sent" in outcome.detail
    assert http_server.requests == []
    assert context.marks.state("sit-7/tell-team", target_part(url)) == "ending"  # still for a person to settle


def test_the_other_targets_still_go_out_beside_an_uncertain_one(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    a, b = json_url(http_server.port, "/a"), json_url(http_server.port, "/b")
    context.marks.ending("sit-7/tell-team", target_part(a))

    outcome = run(make_sink(context, a, b), notify(make_action))

    assert outcome.status == "uncertain"
    assert "chat target 1 of 2" in outcome.detail
    assert [r.path for r in http_server.requests] == ["/b"]
    assert context.marks.state("sit-7/tell-team", target_part(b)) == "sent"


@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_a_refusal_forgets_the_mark_so_a_retry_posts(
    context: SinkContext, make_action: Any, http_server: Any, status: int
) -> None:
    url = json_url(http_server.port)
    http_server.status = status
    refused = run(make_sink(context, url), notify(make_action))
    assert refused.status == "retryable", refused.detail
    assert context.marks.state("sit-7/tell-team", target_part(url)) is None

    http_server.status = 200
    retried = run(make_sink(context, url), notify(make_action))
    assert retried.ok, retried.detail
    assert len(http_server.requests) == 2
    assert context.marks.state("sit-7/tell-team", target_part(url)) == "sent"


def test_an_unreachable_target_forgets_the_mark(context: SinkContext, make_action: Any, closed_port: int) -> None:
    url = json_url(closed_port)
    assert run(make_sink(context, url), notify(make_action)).status == "retryable"
    assert context.marks.state("sit-7/tell-team", target_part(url)) is None


def test_a_send_cut_off_midway_is_uncertain_on_the_next_attempt(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    """The runner gives up waiting (its sink timeout cancels apply) while the service holds the message."""
    url = json_url(http_server.port)
    http_server.delay = 1.0
    sink = make_sink(context, url)

    async def cut_off() -> None:
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(sink.apply(notify(make_action)), 0.3)
        finally:
            await sink.aclose()

    asyncio.run(cut_off())
    assert len(http_server.requests) == 1
    assert context.marks.state("sit-7/tell-team", target_part(url)) == "ending"

    http_server.delay = 0
    again = run(make_sink(context, url), notify(make_action))
    assert again.status == "uncertain", again.detail
    assert len(http_server.requests) == 1


def test_marks_follow_a_target_when_the_list_changes(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    a, b, c = (json_url(http_server.port, p) for p in ("/a", "/b", "/c"))
    assert run(make_sink(context, a, b), notify(make_action)).ok

    again = run(make_sink(context, c, b, a), notify(make_action))

    assert again.ok, again.detail
    assert [r.path for r in http_server.requests] == ["/a", "/b", "/c"]


def test_marks_never_hold_the_token(context: SinkContext, make_action: Any, http_server: Any) -> None:
    url = f"json://bot:{TOKEN}@127.0.0.1:{http_server.port}/chat"
    assert run(make_sink(context, url), notify(make_action)).ok
    part = target_part(url)
    assert TOKEN not in part and "127.0.0.1" not in part
    assert TOKEN not in context.marks.detail("sit-7/tell-team", part)
