"""ChatSink through apprise's json:// and form:// URLs, pointed at a real HTTP server on loopback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.sinks.base import Action, Rendered, SinkContext
from continuity.sinks.chat import ChatSink
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
    assert not ChatSink.idempotent and not ChatSink.reversible


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
