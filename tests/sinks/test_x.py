"""The X sink: the exact requests tweepy sends (mocked at the requests layer with `responses`, since no X server
exists here), threads, undo, X's answers (429, 5xx, 401, 403 duplicate) and the engine end to end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
import responses
from pydantic import ValidationError

from continuity.clock import ManualClock
from continuity.config.envrefs import FromEnv
from continuity.engine import Engine
from continuity.sinks.base import Action, Earlier, Outcome, Rendered, SinkContext
from continuity.sinks.x import POST, XSink
from tests.conftest import NOW, Configure, MakeEngine, run_cli

TWEETS = "https://api.twitter.com/2/tweets"
CREDS = {
    "consumer_key": "ck-Q2xpZW50S2V5",
    "consumer_secret": "cs-c2VjcmV0LWNvbnN1bWVy",
    "access_token": "at-1234567890-VG9rZW4",
    "access_token_secret": "ats-dG9rZW4tc2VjcmV0",
}
ENV = {"X_CONSUMER_KEY": CREDS["consumer_key"], "X_CONSUMER_SECRET": CREDS["consumer_secret"],
       "X_ACCESS_TOKEN": CREDS["access_token"], "X_ACCESS_TOKEN_SECRET": CREDS["access_token_secret"]}
SINK_CONFIG = {
    "type": "x",
    "consumer_key": "${X_CONSUMER_KEY}",
    "consumer_secret": "${X_CONSUMER_SECRET}",
    "access_token": "${X_ACCESS_TOKEN}",
    "access_token_secret": "${X_ACCESS_TOKEN_SECRET}",
}
ETA = NOW + timedelta(hours=2)
KEY = "s7/open/social-post/1/x"  # post_action's key


# helpers ------------------------------------------------------------------------------------------------------


def make_sink(context: SinkContext, **extra: Any) -> XSink:
    settings = XSink.Settings.model_validate({**{k: FromEnv(v) for k, v in CREDS.items()}, **extra})
    return XSink("x", settings, context)


def post_action(text: str = "Our phone line is down. Please use chat: https://shop.example.com/chat",
                **overrides: Any) -> Action:
    fields: dict[str, Any] = {
        "key": "s7/open/social-post/1/x", "operation": "apply", "kind": "post", "situation_id": 7,
        "step_id": "social-post", "channel": "phone", "audience": "customers",
        "messages": [Rendered("hu", {"body": "Nem működik a telefon."}), Rendered("en", {"body": text})],
    }
    fields.update(overrides)
    return Action(**fields)


def run(sink: XSink, *actions: Action) -> list[Outcome]:
    async def go() -> list[Outcome]:
        try:
            return [await (sink.undo(a) if a.operation == "undo" else sink.apply(a)) for a in actions]
        finally:
            await sink.aclose()

    return asyncio.run(go())


def oauth_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth "), header
    return {k: unquote(v) for k, v in re.findall(r'(\w+)="([^"]*)"', header[len("OAuth "):])}


def expected_signature(method: str, url: str, oauth: dict[str, str]) -> str:
    """RFC 5849 HMAC-SHA1, computed here independently of oauthlib (a JSON body is not signed)."""

    def enc(s: str) -> str:
        return quote(s, safe="~-._")

    pairs = sorted((enc(k), enc(v)) for k, v in oauth.items() if k not in ("oauth_signature", "realm"))
    base = "&".join([method, enc(url), enc("&".join(f"{k}={v}" for k, v in pairs))])
    key = enc(CREDS["consumer_secret"]) + "&" + enc(CREDS["access_token_secret"])
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


def assert_signed(call: Any, method: str, url: str) -> None:
    """The request carries a complete OAuth 1.0a header that X would accept for our four credentials."""
    oauth = oauth_params(call.request.headers["Authorization"])
    assert oauth["oauth_consumer_key"] == CREDS["consumer_key"]
    assert oauth["oauth_token"] == CREDS["access_token"]
    assert (oauth["oauth_signature_method"], oauth["oauth_version"]) == ("HMAC-SHA1", "1.0")
    assert oauth["oauth_nonce"] and oauth["oauth_timestamp"].isdigit()
    assert oauth["oauth_signature"] == expected_signature(method, url, oauth)
    # The secrets themselves never travel.
    assert CREDS["consumer_secret"] not in call.request.headers["Authorization"]
    assert CREDS["access_token_secret"] not in call.request.headers["Authorization"]


def body(call: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(call.request.body)
    return doc


@pytest.fixture
def x_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def tweet_json(tweet_id: str, text: str = "…") -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}


# the sink on its own ----------------------------------------------------------------------------------------------


def test_class_describes_itself() -> None:
    assert XSink.type_name == "x"
    assert XSink.actions == frozenset({"post", "notice"})
    # Idempotent through the send marks (and X's duplicate refusal): a re-run never posts twice (tests below).
    assert XSink.idempotent and XSink.reversible


def test_first_post_is_one_signed_json_request(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    sink = make_sink(context, locale="en")

    [outcome] = run(sink, post_action())

    assert outcome.ok, outcome.detail
    assert outcome.detail == "posted https://x.com/i/status/1001 (en)"
    [call] = x_api.calls
    assert (call.request.method, call.request.url) == ("POST", TWEETS)
    assert call.request.headers["Content-Type"] == "application/json"
    assert body(call) == {"text": "Our phone line is down. Please use chat: https://shop.example.com/chat"}
    assert_signed(call, "POST", TWEETS)


def test_without_a_locale_the_first_organisation_language_is_posted(
    context: SinkContext, x_api: responses.RequestsMock
) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    [outcome] = run(make_sink(context), post_action())
    assert outcome.ok
    assert body(x_api.calls[0]) == {"text": "Nem működik a telefon."}


def test_later_posts_reply_to_the_first_post_of_the_situation(
    context: SinkContext, x_api: responses.RequestsMock
) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("2002"), status=201)
    earlier = (
        Earlier("s7/open/staff-x/1/x", "staff-x", "open", "undone", "posted https://x.com/i/status/900 (en)"),
        Earlier("s7/open/social-post/1/x", "social-post", "open", "done", "posted https://x.com/i/status/1001 (en)"),
        Earlier("s7/update/social-update/rev1/x", "social-update", "update", "done",
                "posted https://x.com/i/status/1500 in reply to 1001 (en)"),
    )
    update = post_action("Update: back by 13:00.", key="s7/update/social-update/rev2/x", step_id="social-update",
                         earlier=earlier)

    [outcome] = run(make_sink(context, locale="en"), update)

    assert outcome.detail == "posted https://x.com/i/status/2002 in reply to 1001 (en)"
    # The undone (deleted) post 900 is skipped: the thread hangs under the first post still up.
    assert body(x_api.calls[0]) == {"text": "Update: back by 13:00.", "reply": {"in_reply_to_tweet_id": "1001"}}
    assert_signed(x_api.calls[0], "POST", TWEETS)


def test_a_retry_of_a_posted_action_does_not_post_again(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    first, again = run(make_sink(context, locale="en"), post_action(), post_action())
    assert first.ok and again.ok
    assert "1001" in again.detail
    assert len(x_api.calls) == 1


def test_too_long_fails_before_any_request(context: SinkContext, x_api: responses.RequestsMock) -> None:
    # 250 letters and a long link (23 as X counts it) fit; the same with 260 letters does not.
    link = "https://shop.example.com/" + "very-long-path/" * 10
    fits = post_action("a" * 250 + " " + link)
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    too_long = post_action("a" * 260 + " " + link, key="other")

    ok, failed = run(make_sink(context, locale="en"), fits, too_long)

    assert ok.ok
    assert failed.status == "error"
    assert "284 characters as X counts them" in failed.detail and "limit is 280" in failed.detail
    assert "social-post" in failed.detail
    assert len(x_api.calls) == 1


def test_a_locale_the_step_was_not_rendered_in_fails(context: SinkContext, x_api: responses.RequestsMock) -> None:
    [outcome] = run(make_sink(context, locale="de"), post_action())
    assert outcome.status == "error" and "'de'" in outcome.detail
    assert not x_api.calls


def _x_error(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "json": payload, "headers": headers or {}}


DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
             "title": "Forbidden", "status": 403}
NO_WRITE = {"detail": "You are not permitted to perform this action.", "type": "about:blank",
            "title": "Forbidden", "status": 403}
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        (_x_error(500, {"title": "Internal Server Error"}), "retryable", "X answered 500"),
        (_x_error(503, {"title": "Service Unavailable"}), "retryable", "X answered 503"),
        (_x_error(403, DUPLICATE), "ok", "already posted"),
        (_x_error(403, NO_WRITE), "error", "read and write permission"),
        (_x_error(401, UNAUTHORIZED), "error", "X refused the credentials"),
        (_x_error(400, {"errors": [{"message": "Invalid reply"}], "title": "Invalid Request"}), "error",
         "X answered 400"),
        ({"body": requests.ConnectionError("connection refused")}, "retryable", "cannot reach X (ConnectionError)"),
        ({"body": requests.ReadTimeout("read timed out")}, "retryable", "X did not answer within 15s"),
    ],
)
def test_x_answers(context: SinkContext, x_api: responses.RequestsMock, answer: dict[str, Any], status: str,
                   says: str) -> None:
    x_api.add(responses.POST, TWEETS, **answer)
    [outcome] = run(make_sink(context, locale="en"), post_action())
    assert (outcome.status, outcome.retry_after) == (status, None)
    assert says in outcome.detail
    for value in CREDS.values():
        assert value not in outcome.detail
    # A refusal (or a request that never reached X) forgets the mark, so a retry may post; X's "duplicate"
    # says an earlier attempt is up, which the mark keeps.
    assert context.marks.state(KEY, POST) == ("sent" if status == "ok" else None)


def test_429_waits_for_the_rate_limit_reset(context: SinkContext, x_api: responses.RequestsMock) -> None:
    reset = int((NOW + timedelta(minutes=12)).timestamp())
    x_api.add(responses.POST, TWEETS, status=429, json={"title": "Too Many Requests", "status": 429},
              headers={"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    [outcome] = run(make_sink(context, locale="en"), post_action())
    assert outcome.status == "retryable"
    assert outcome.retry_after == timedelta(minutes=12)
    assert "rate limit" in outcome.detail and "10:12:00 UTC" in outcome.detail


def test_429_of_the_daily_limit_waits_for_its_reset(context: SinkContext, x_api: responses.RequestsMock) -> None:
    soon = int((NOW + timedelta(minutes=5)).timestamp())
    tomorrow = int((NOW + timedelta(hours=7)).timestamp())
    x_api.add(responses.POST, TWEETS, status=429, json={"title": "Too Many Requests"},
              headers={"x-rate-limit-reset": str(soon), "x-user-limit-24hour-remaining": "0",
                       "x-user-limit-24hour-reset": str(tomorrow)})
    [outcome] = run(make_sink(context, locale="en"), post_action())
    assert outcome.retry_after == timedelta(hours=7)


def test_undo_deletes_the_step_posts_when_configured(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.DELETE, f"{TWEETS}/1001", json={"data": {"deleted": True}})
    x_api.add(responses.DELETE, f"{TWEETS}/1700", status=404, json={"title": "Not Found Error"})
    earlier = (
        Earlier("s7/open/x-notice/1/x", "x-notice", "open", "done", "posted https://x.com/i/status/1001 (en)"),
        Earlier("s7/open/social-post/1/x", "social-post", "open", "done", "posted https://x.com/i/status/1200 (en)"),
        Earlier("s7/update/x-notice/refresh1/x", "x-notice", "update", "done",
                "posted https://x.com/i/status/1700 in reply to 1001 (en)"),
    )
    undo = post_action(key="s7/undo/x-notice/x", operation="undo", kind="notice", step_id="x-notice",
                       target_key="s7/update/x-notice/refresh1/x", earlier=earlier)

    [outcome] = run(make_sink(context, locale="en", delete_on_undo=True), undo)

    assert outcome.ok, outcome.detail
    assert outcome.detail == "deleted 2 post(s): 1700, 1001"
    assert [(c.request.method, c.request.url) for c in x_api.calls] == [
        ("DELETE", f"{TWEETS}/1700"), ("DELETE", f"{TWEETS}/1001")]  # 1200 is another step's post
    for call in x_api.calls:
        assert_signed(call, "DELETE", str(call.request.url))


def test_undo_leaves_posts_up_by_default(context: SinkContext, x_api: responses.RequestsMock) -> None:
    earlier = (Earlier("k", "x-notice", "open", "done", "posted https://x.com/i/status/1001 (en)"),)
    undo = post_action(operation="undo", step_id="x-notice", target_key="k", earlier=earlier)
    [outcome] = run(make_sink(context), undo)
    assert outcome.ok and "stays up" in outcome.detail
    assert not x_api.calls


def test_credentials_never_reach_logs_or_outcomes(
    context: SinkContext, x_api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    x_api.add(responses.POST, TWEETS, status=401, json=UNAUTHORIZED)
    outcomes = run(make_sink(context, locale="en"), post_action(), post_action(key="second"))
    assert "Signing request" in caplog.text and "oauth_consumer_key" in caplog.text  # the debug logs were there
    for value in CREDS.values():
        assert value not in caplog.text
        assert all(value not in o.detail for o in outcomes)
    # Once closed, the sink leaves other code's logs alone.
    for name in ("tweepy.client", "requests_oauthlib.oauth1_auth", "oauthlib.oauth1.rfc5849"):
        assert logging.getLogger(name).filters == []


def test_credentials_must_come_from_the_environment() -> None:
    with pytest.raises(ValidationError, match="secrets must not be written in the YAML"):
        XSink.Settings.model_validate({**CREDS})
    with pytest.raises(ValidationError, match="access_token_secret"):
        XSink.Settings.model_validate({k: FromEnv(v) for k, v in CREDS.items() if k != "access_token_secret"})


# send marks: what survives a retry and a restart ----------------------------------------------------------------------
#
# Each apply gets a fresh sink sharing only the context's marks: what the second sink knows it can only know from
# the marks, as a restarted process knows it only from the store.


def test_a_second_apply_with_the_same_marks_posts_nothing(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    [first] = run(make_sink(context, locale="en"), post_action())
    assert first.ok, first.detail
    assert (context.marks.state(KEY, POST), context.marks.detail(KEY, POST)) == ("sent", "https://x.com/i/status/1001")

    [again] = run(make_sink(context, locale="en"), post_action())

    assert again.ok, again.detail
    assert again.detail == "posted https://x.com/i/status/1001 (already, by an earlier attempt)"
    assert len(x_api.calls) == 1


def test_the_mark_is_ending_while_x_has_the_request(context: SinkContext, x_api: responses.RequestsMock) -> None:
    seen: list[str | None] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append(context.marks.state(KEY, POST))
        return 201, {}, json.dumps(tweet_json("1001"))

    x_api.add_callback(responses.POST, TWEETS, callback=answer)
    [outcome] = run(make_sink(context, locale="en"), post_action())
    assert outcome.ok
    assert seen == ["ending"]  # written before the request went out: a crash now leaves it for a person


def test_an_ending_mark_is_uncertain_and_posts_nothing(context: SinkContext, x_api: responses.RequestsMock) -> None:
    context.marks.ending(KEY, POST)  # the process died while X had the request

    [outcome] = run(make_sink(context, locale="en"), post_action())

    assert outcome.status == "uncertain", outcome.detail
    assert "it may be up" in outcome.detail and "continuity settle ID resend" in outcome.detail
    assert not x_api.calls
    assert context.marks.state(KEY, POST) == "ending"  # still for a person to settle


def test_a_refusal_forgets_the_mark_so_a_retry_posts(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.POST, TWEETS, status=400, json={"errors": [{"message": "Invalid reply"}], "title": "Bad"})
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)

    [refused] = run(make_sink(context, locale="en"), post_action())
    assert refused.status == "error" and "X answered 400" in refused.detail
    assert context.marks.state(KEY, POST) is None

    [retried] = run(make_sink(context, locale="en"), post_action())  # `continuity retry ID`
    assert retried.detail == "posted https://x.com/i/status/1001 (en)"
    assert len(x_api.calls) == 2
    assert context.marks.state(KEY, POST) == "sent"


def test_a_duplicate_refusal_is_remembered_as_posted(context: SinkContext, x_api: responses.RequestsMock) -> None:
    x_api.add(responses.POST, TWEETS, **_x_error(403, DUPLICATE))
    [first] = run(make_sink(context, locale="en"), post_action())
    assert first.ok

    [again] = run(make_sink(context, locale="en"), post_action())

    assert again.ok and "post id unknown" in again.detail
    assert len(x_api.calls) == 1


def test_a_restarted_sink_threads_under_a_post_it_knows_only_from_the_marks(
    context: SinkContext, x_api: responses.RequestsMock
) -> None:
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    x_api.add(responses.POST, TWEETS, json=tweet_json("1002"), status=201)
    assert run(make_sink(context, locale="en"), post_action())[0].ok
    # The first post's ledger row does not name the post (its detail was written by a person's `settle`, which
    # says only who confirmed it): the id is still in the action's send mark.
    earlier = (Earlier(KEY, "social-post", "open", "done", "confirmed sent by bela"),)
    update = post_action("Update: back by 13:00.", key="s7/update/social-update/rev1/x", step_id="social-update",
                         earlier=earlier)

    [outcome] = run(make_sink(context, locale="en"), update)

    assert outcome.detail == "posted https://x.com/i/status/1002 in reply to 1001 (en)"
    assert body(x_api.calls[1])["reply"] == {"in_reply_to_tweet_id": "1001"}


def test_a_restarted_sink_deletes_a_post_it_knows_only_from_the_marks(
    context: SinkContext, x_api: responses.RequestsMock
) -> None:
    notice = post_action(key="s7/open/x-notice/1/x", kind="notice", step_id="x-notice")
    x_api.add(responses.POST, TWEETS, json=tweet_json("1001"), status=201)
    x_api.add(responses.DELETE, f"{TWEETS}/1001", json={"data": {"deleted": True}})
    assert run(make_sink(context, locale="en", delete_on_undo=True), notice)[0].ok

    undo = post_action(key="s7/undo/x-notice/x", operation="undo", kind="notice", step_id="x-notice",
                       target_key="s7/open/x-notice/1/x", earlier=())
    [outcome] = run(make_sink(context, locale="en", delete_on_undo=True), undo)

    assert outcome.detail == "deleted 1 post(s): 1001"
    assert [(c.request.method, c.request.url) for c in x_api.calls] == [("POST", TWEETS), ("DELETE", f"{TWEETS}/1001")]


def test_a_retried_undo_after_a_restart_deletes_only_what_is_left(
    context: SinkContext, x_api: responses.RequestsMock
) -> None:
    x_api.add(responses.DELETE, f"{TWEETS}/1700", json={"data": {"deleted": True}})
    x_api.add(responses.DELETE, f"{TWEETS}/1001", status=503, json={"title": "Service Unavailable"})
    x_api.add(responses.DELETE, f"{TWEETS}/1001", json={"data": {"deleted": True}})
    earlier = (
        Earlier("s7/open/x-notice/1/x", "x-notice", "open", "done", "posted https://x.com/i/status/1001 (en)"),
        Earlier("s7/update/x-notice/refresh1/x", "x-notice", "update", "done",
                "posted https://x.com/i/status/1700 in reply to 1001 (en)"),
    )
    undo = post_action(key="s7/undo/x-notice/x", operation="undo", kind="notice", step_id="x-notice",
                       target_key="s7/update/x-notice/refresh1/x", earlier=earlier)

    [failed] = run(make_sink(context, locale="en", delete_on_undo=True), undo)
    assert failed.status == "retryable" and "503" in failed.detail

    [retried] = run(make_sink(context, locale="en", delete_on_undo=True), undo)

    assert retried.detail == "deleted 1 post(s): 1001"
    assert [(c.request.method, c.request.url) for c in x_api.calls] == [
        ("DELETE", f"{TWEETS}/1700"), ("DELETE", f"{TWEETS}/1001"), ("DELETE", f"{TWEETS}/1001")]


# through the engine -------------------------------------------------------------------------------------------------


def x_config(configure: Configure, **sink: Any) -> Path:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["x"] = {**SINK_CONFIG, **sink}
        cfg["routes"]["social"] = ["x"]
        cfg["retry"] = {"attempts": 4, "first_delay": "2s", "max_delay": "1m", "inline_budget": "0s"}

    return configure(edit)


class FakeX:
    """Answers POST /2/tweets with increasing ids (or scripted errors) and DELETE with success."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.next_id = 1001
        self.errors: list[tuple[int, dict[str, str]]] = []
        mock.add_callback(responses.POST, TWEETS, callback=self.post)
        mock.add_callback(responses.DELETE, re.compile(re.escape(TWEETS) + r"/\d+"), callback=self.delete)
        self.mock = mock

    def post(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.errors:
            status, headers = self.errors.pop(0)
            return status, headers, json.dumps({"title": "scripted", "status": status})
        tweet_id, self.next_id = str(self.next_id), self.next_id + 1
        return 201, {}, json.dumps(tweet_json(tweet_id, json.loads(request.body)["text"]))

    def delete(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"data": {"deleted": True}})

    def posts(self) -> list[dict[str, Any]]:
        return [body(c) for c in self.mock.calls if c.request.method == "POST"]


@pytest.fixture
def fake_x(x_api: responses.RequestsMock) -> FakeX:
    return FakeX(x_api)


def x_rows(eng: Engine) -> list[Any]:
    return [r for r in eng.store.steps_for(1) if r.sink == "x"]


def advance(eng: Engine, delta: timedelta) -> None:
    assert isinstance(eng.clock, ManualClock)
    eng.clock.advance(delta)


def test_a_phone_outage_is_one_thread_on_x(engine: MakeEngine, configure: Configure, fake_x: FakeX) -> None:
    eng = engine(x_config(configure, locale="en"), environ=ENV)
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    eng.run_due()
    assert fake_x.posts() == []  # the post waits for 30 minutes

    advance(eng, timedelta(minutes=30))
    eng.run_due()
    advance(eng, timedelta(minutes=10))
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA + timedelta(hours=1), by="tester")
    eng.run_due()
    advance(eng, timedelta(minutes=10))
    eng.close("phone", by="tester", note="provider fixed the trunk")
    eng.run_due()

    first, update, resolved = fake_x.posts()
    assert "reply" not in first
    assert first["text"].startswith("Our phone line is temporarily unavailable")
    assert update["text"].startswith("Update on our phone line")
    assert resolved["text"].startswith("Our phone line is working again")
    assert update["reply"] == resolved["reply"] == {"in_reply_to_tweet_id": "1001"}
    assert [(r.step_id, r.state, r.detail) for r in x_rows(eng)] == [
        ("social-post", "done", "posted https://x.com/i/status/1001 (en)"),
        ("social-update", "done", "posted https://x.com/i/status/1002 in reply to 1001 (en)"),
        ("social-resolved", "done", "posted https://x.com/i/status/1003 in reply to 1001 (en)"),
    ]
    for call in fake_x.mock.calls:
        assert_signed(call, "POST", TWEETS)


def test_429_is_retried_after_the_reset_and_nothing_is_lost(
    engine: MakeEngine, configure: Configure, fake_x: FakeX
) -> None:
    eng = engine(x_config(configure, locale="en"), environ=ENV)
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    advance(eng, timedelta(minutes=30))
    reset = eng.clock.now() + timedelta(minutes=15)
    fake_x.errors = [(429, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(reset.timestamp()))})]

    eng.run_due()
    [row] = x_rows(eng)
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.next_retry_at == reset  # X's reset, not the 2 s backoff
    assert row.last_error is not None and "rate limit" in row.last_error

    advance(eng, timedelta(minutes=15) - timedelta(seconds=1))
    assert [r for r in eng.run_due() if r.row.sink == "x"] == []
    advance(eng, timedelta(seconds=1))
    eng.run_due()

    [row] = x_rows(eng)
    assert (row.state, row.attempts, row.detail) == ("done", 2, "posted https://x.com/i/status/1001 (en)")
    assert len(fake_x.posts()) == 2 and fake_x.posts()[0] == fake_x.posts()[1]  # the same post, sent once more


def test_5xx_is_retried_with_the_runner_backoff(engine: MakeEngine, configure: Configure, fake_x: FakeX) -> None:
    eng = engine(x_config(configure, locale="en"), environ=ENV)
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    advance(eng, timedelta(minutes=30))
    fake_x.errors = [(500, {}), (503, {})]
    eng.run_due()
    [row] = x_rows(eng)
    assert row.next_retry_at == eng.clock.now() + timedelta(seconds=2)
    advance(eng, timedelta(seconds=2))
    eng.run_due()
    [row] = x_rows(eng)
    assert row.next_retry_at == eng.clock.now() + timedelta(seconds=4)
    advance(eng, timedelta(seconds=4))
    eng.run_due()
    [row] = x_rows(eng)
    assert (row.state, row.attempts) == ("done", 3)
    assert len(fake_x.posts()) == 3


def test_a_notice_on_x_is_deleted_when_the_outage_closes(
    engine: MakeEngine, configure: Configure, fake_x: FakeX
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["x"] = {**SINK_CONFIG, "locale": "en", "delete_on_undo": True}
        cfg["routes"]["social"] = ["x"]
        cfg["channels"]["phone"]["add_steps"] = [
            {"id": "x-notice", "after": "0m", "action": "notice", "to": "x", "template": "outage/social-post"}]

    eng = engine(configure(edit), environ=ENV)
    eng.open("phone", reason="SIP trunk down at the provider", eta=ETA, by="tester")
    eng.run_due()
    eng.close("phone", by="tester")
    eng.run_due()

    assert [(c.request.method, c.request.url) for c in fake_x.mock.calls] == [
        ("POST", TWEETS), ("DELETE", f"{TWEETS}/1001")]
    states = {(r.step_id, r.phase): (r.state, r.detail) for r in x_rows(eng)}
    assert states[("x-notice", "open")][0] == "undone"
    assert states[("x-notice", "undo")] == ("done", "deleted 1 post(s): 1001")
    assert ("social-resolved", "close") not in states  # the 30-minute post never went out


def test_validate_catches_a_post_too_long_for_x(configure: Configure, workdir: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["x"] = {**SINK_CONFIG, "locale": "en"}
        cfg["routes"]["social"] = ["x"]
        cfg["channels"]["email"]["contact"] = "help-desk-for-every-question@" + "very-long-subdomain." * 6 + "example"

    configure(edit)
    result = run_cli(workdir, "validate", env=ENV)
    assert result.returncode == 2
    assert re.search(r"templates/en/outage/social-post\.j2:1 block body: the X post would be \d+ characters as X "
                     r"counts them .*the limit is 280 \(sink 'x', step 'social-post' of playbook 'outage-phone'",
                     result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_example_with_x_validates_and_json_output_holds_no_credential(
    configure: Configure, workdir: Path
) -> None:
    x_config(configure)
    result = run_cli(workdir, "validate", "--json", env=ENV)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sinks"]["x"] == "x"
    opened = run_cli(workdir, "outage", "phone", "--reason", "SIP trunk down", "--json", env=ENV, now=NOW)
    assert opened.returncode == 0, opened.stderr
    for value in CREDS.values():
        assert value not in result.stdout + result.stderr + opened.stdout + opened.stderr
