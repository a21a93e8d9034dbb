"""The http_post sink against a real loopback server shaped like the Mastodon statuses API and the Facebook
Graph page feed; Mastodon through apprise (the chat sink) as the documented alternative."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from continuity.clock import ManualClock
from continuity.config.envrefs import FromEnv
from continuity.config.loader import load_config
from continuity.engine import Engine
from continuity.preview import render_everything
from continuity.sinks.base import Action, Earlier, Outcome, Rendered, SinkContext
from continuity.sinks.chat import ChatSink
from continuity.sinks.http_post import HttpPostSink
from tests.conftest import EXAMPLE_CONFIG, NOW, Configure, MakeEngine, run_cli, tick
from tests.sinks.conftest import HttpServer, Recorded

MASTODON_TOKEN = "mstdn-tok-8c1f2e3d4b5a6978"
PAGE_TOKEN = "EAAGm0PX4ZCpsBAKZCfb-page-token-51"
MASTODON_BODY = ('{"status": {{ text }}, "visibility": "public", "language": {{ locale }}, '
                 '"in_reply_to_id": {{ reply_to }}}')
FACEBOOK_BODY = '{"message": {{ text }}, "published": true}'
TRICKY = 'Phone down.\nSay "hi" on chat: https://shop.example.com/chat", "visibility": "direct'


def make_sink(context: SinkContext, name: str = "mastodon", **settings: Any) -> HttpPostSink:
    return HttpPostSink(name, HttpPostSink.Settings.model_validate(settings), context)


def mastodon(context: SinkContext, server: HttpServer, **extra: Any) -> HttpPostSink:
    return make_sink(context, url=server.url("/api/v1/statuses"), body=MASTODON_BODY,
                     headers={"Authorization": FromEnv(f"Bearer {MASTODON_TOKEN}")}, **extra)


def facebook(context: SinkContext, server: HttpServer, **extra: Any) -> HttpPostSink:
    return make_sink(context, "facebook", url=server.url("/v19.0/1234567890/feed"), body=FACEBOOK_BODY,
                     headers={"Authorization": FromEnv(f"Bearer {PAGE_TOKEN}")}, **extra)


def action(text: str = TRICKY, **overrides: Any) -> Action:
    fields: dict[str, Any] = {
        "key": "s3/open/social-post/1/mastodon", "operation": "apply", "kind": "post", "situation_id": 3,
        "step_id": "social-post", "channel": "phone", "audience": "customers",
        "messages": [Rendered("hu", {"body": "Nem működik a telefon.\n"}), Rendered("en", {"body": text})],
    }
    fields.update(overrides)
    return Action(**fields)


def run(sink: HttpPostSink | ChatSink, *actions: Action) -> list[Outcome]:
    async def go() -> list[Outcome]:
        try:
            return [await sink.apply(a) for a in actions]
        finally:
            await sink.aclose()

    return asyncio.run(go())


def fake_mastodon(server: HttpServer, first_id: int = 109001) -> None:
    """Answers like Mastodon: 200 and the new status, with an increasing id."""
    ids = iter(range(first_id, first_id + 100))

    def respond(req: Recorded) -> tuple[int, dict[str, str], bytes]:
        new = str(next(ids))
        doc = {"id": new, "url": f"https://mastodon.example/@shop/{new}", "content": "<p>…</p>"}
        return 200, {}, json.dumps(doc).encode()

    server.respond = respond


def test_mastodon_status_shape(context: SinkContext, http_server: HttpServer) -> None:
    fake_mastodon(http_server)
    [outcome] = run(mastodon(context, http_server, locale="en"), action())

    assert outcome.ok and outcome.detail == "mastodon: HTTP 200 OK; id 109001"
    [req] = http_server.requests
    assert (req.method, req.path) == ("POST", "/api/v1/statuses")
    assert req.headers["Authorization"] == f"Bearer {MASTODON_TOKEN}"
    assert req.headers["Idempotency-Key"] == "s3/open/social-post/1/mastodon"
    assert req.headers["Content-Type"] == "application/json; charset=utf-8"
    # The quotes and the line break stay inside the status: the text cannot add or change a field.
    assert json.loads(req.body) == {"status": TRICKY, "visibility": "public", "language": "en",
                                    "in_reply_to_id": None}


def test_mastodon_updates_reply_to_the_first_status(context: SinkContext, http_server: HttpServer) -> None:
    fake_mastodon(http_server, first_id=109500)
    earlier = (Earlier("s3/open/social-post/1/mastodon", "social-post", "open", "done",
                       "mastodon: HTTP 200 OK; id 109001"),)
    [outcome] = run(mastodon(context, http_server), action("Update", step_id="social-update", earlier=earlier))
    assert outcome.detail.endswith("id 109500")
    doc = json.loads(http_server.requests[0].body)
    assert doc["in_reply_to_id"] == "109001"
    assert (doc["status"], doc["language"]) == ("Nem működik a telefon.", "hu")  # the first language, stripped


def test_facebook_page_feed_shape(context: SinkContext, http_server: HttpServer) -> None:
    http_server.respond = lambda req: (200, {}, b'{"id": "1234567890_987654321"}')
    [outcome] = run(facebook(context, http_server, locale="en"), action())
    assert outcome.ok and outcome.detail == "facebook: HTTP 200 OK; id 1234567890_987654321"
    [req] = http_server.requests
    assert (req.method, req.path) == ("POST", "/v19.0/1234567890/feed")
    assert req.headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert json.loads(req.body) == {"message": TRICKY, "published": True}


def test_facebook_error_names_the_reason_not_the_token(
    context: SinkContext, http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph_error = {"error": {"message": f"(#200) Token {PAGE_TOKEN} may not publish to this page",
                             "type": "OAuthException", "code": 200}}
    http_server.respond = lambda req: (403, {}, json.dumps(graph_error).encode())
    # A token in the URL (Graph also takes ?access_token=) is as secret as one in a header.
    url = FromEnv(http_server.url(f"/v19.0/1234567890/feed?access_token={PAGE_TOKEN}"))
    sink = make_sink(context, "facebook", url=url, body=FACEBOOK_BODY)
    [outcome] = run(sink, action())
    assert outcome.status == "error"
    assert outcome.detail.startswith("facebook: HTTP 403 Forbidden: (#200) Token ********** may not publish")
    assert PAGE_TOKEN not in outcome.detail and PAGE_TOKEN not in caplog.text


def _answer(status: int, headers: dict[str, str] | None = None) -> Any:
    return lambda req: (status, headers or {}, b'{"error": "scripted"}')


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after", "says"),
    [
        (201, None, "ok", None, "HTTP 201 Created"),
        (204, None, "ok", None, "HTTP 204"),
        (206, None, "error", None, "not one of the answers listed in `expect`"),
        (500, None, "retryable", None, "HTTP 500"),
        (503, None, "retryable", None, "HTTP 503"),
        (429, {"Retry-After": "120"}, "retryable", timedelta(seconds=120), "HTTP 429"),
        (429, {"Retry-After": "Mon, 23 Nov 2026 10:05:00 GMT"}, "retryable", timedelta(minutes=5), "HTTP 429"),
        (401, None, "error", None, "HTTP 401 Unauthorized: scripted"),
        (422, None, "error", None, "HTTP 422"),
        (302, {"Location": "https://elsewhere.example"}, "error", None, "redirects are not followed"),
    ],
)
def test_status_codes(context: SinkContext, http_server: HttpServer, status: int, headers: dict[str, str] | None,
                      expected: str, retry_after: timedelta | None, says: str) -> None:
    http_server.respond = _answer(status, headers)
    [outcome] = run(mastodon(context, http_server), action())
    assert (outcome.status, outcome.retry_after) == (expected, retry_after)
    assert says in outcome.detail


def test_refused_and_silent_servers_are_retried(context: SinkContext, closed_port: int, silent_port: int) -> None:
    refused = make_sink(context, url=f"http://127.0.0.1:{closed_port}/api/v1/statuses", body=MASTODON_BODY)
    silent = make_sink(context, url=f"http://127.0.0.1:{silent_port}/api/v1/statuses", body=MASTODON_BODY,
                       timeout=0.3)
    [a] = run(refused, action())
    [b] = run(silent, action())
    assert a.status == b.status == "retryable"
    assert "cannot connect" in a.detail and "no answer within 0.3s" in b.detail


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "ftp://x", "body": "{}"}, "url must start with http"),
        ({"url": "https://m.example", "body": '{"status": {{ text }'}, "body template, line 1"),
        ({"url": "https://m.example", "body": "{}", "expect": [200, 404]}, "[404] are not 2xx"),
        ({"url": "https://m.example", "body": "{}", "method": "GET"}, "method"),
        ({"url": "https://m.example", "body": "{}", "bdy": "{}"}, "bdy"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        HttpPostSink.Settings.model_validate(settings)
    assert message in str(exc.value)


def test_a_body_that_is_not_json_fails_without_sending(context: SinkContext, http_server: HttpServer) -> None:
    sink = make_sink(context, url=http_server.url("/api/v1/statuses"), body='{"status": "{{ text }}"}')
    [outcome] = run(sink, action())
    assert outcome.status == "error" and "does not yield JSON" in outcome.detail
    assert not http_server.requests


def test_mastodon_through_apprise_and_the_chat_sink(context: SinkContext, http_server: HttpServer) -> None:
    """Where apprise fits: `mastodon://TOKEN@HOST` (mastodons:// for https) with the chat sink."""
    fake_mastodon(http_server)
    url = f"mastodon://{MASTODON_TOKEN}@127.0.0.1:{http_server.port}/?visibility=public&language=hu"
    sink = ChatSink("mastodon", ChatSink.Settings.model_validate({"urls": [FromEnv(url)]}), context)
    [outcome] = run(sink, action("Phone down.", messages=[Rendered("hu", {"body": "Nem működik a telefon."})]))
    assert outcome.ok, outcome.detail
    [req] = http_server.requests
    assert (req.method, req.path, req.headers["Authorization"]) == ("POST", "/api/v1/statuses",
                                                                    f"Bearer {MASTODON_TOKEN}")
    doc = json.loads(req.body)
    assert (doc["status"], doc["visibility"], doc["language"]) == ("Nem működik a telefon.", "public", "hu")


# through the engine and validate -------------------------------------------------------------------------------


def social_config(configure: Configure, server: HttpServer, **mastodon_extra: Any) -> Path:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["mastodon"] = {"type": "http_post", "url": server.url("/api/v1/statuses"),
                                    "headers": {"Authorization": "Bearer ${MASTODON_TOKEN}"},
                                    "body": MASTODON_BODY, "locale": "en", **mastodon_extra}
        cfg["sinks"]["facebook"] = {"type": "http_post", "url": server.url("/v19.0/1234567890/feed"),
                                    "headers": {"Authorization": "Bearer ${FACEBOOK_PAGE_TOKEN}"},
                                    "body": FACEBOOK_BODY}
        cfg["routes"]["social"] = ["mastodon", "facebook"]

    return configure(edit)


ENV = {"MASTODON_TOKEN": MASTODON_TOKEN, "FACEBOOK_PAGE_TOKEN": PAGE_TOKEN}


def test_an_outage_posts_to_mastodon_and_facebook(engine: MakeEngine, configure: Configure,
                                                  http_server: HttpServer) -> None:
    fake_mastodon(http_server)
    eng: Engine = engine(social_config(configure, http_server), environ=ENV)
    eng.open("phone", reason="SIP trunk down", eta=NOW + timedelta(hours=2), by="tester")
    assert isinstance(eng.clock, ManualClock)
    eng.clock.advance(timedelta(minutes=30))
    tick(eng)
    eng.open("phone", reason="SIP trunk down", eta=NOW + timedelta(hours=4), by="tester")
    tick(eng)

    sent = [(r.path, json.loads(r.body)) for r in http_server.requests]
    assert Counter(p for p, _ in sent) == {"/api/v1/statuses": 2, "/v19.0/1234567890/feed": 2}
    toots = [doc for p, doc in sent if p == "/api/v1/statuses"]
    pages = [doc for p, doc in sent if p.endswith("/feed")]
    assert toots[0]["status"].startswith("Our phone line is temporarily unavailable")
    assert pages[0]["message"].startswith("Átmenetileg nem érhető el")  # no locale: the first language (hu)
    assert toots[0]["in_reply_to_id"] is None
    # The update replies to the first status; which id that is depends on the order the two posts ran in.
    first_toot_id = next(str(r.detail) for r in eng.store.steps_for(1)
                         if r.sink == "mastodon" and r.step_id == "social-post").rsplit(" ", 1)[1]
    assert toots[1]["in_reply_to_id"] == first_toot_id
    assert {r.state for r in eng.store.steps_for(1) if r.sink in ("mastodon", "facebook")} == {"done"}


def test_validate_names_a_body_that_is_not_json(configure: Configure, workdir: Path,
                                                http_server: HttpServer) -> None:
    social_config(configure, http_server, body='{"status": "{{ text }}"}')
    result = run_cli(workdir, "validate", env=ENV)
    assert result.returncode == 2
    assert "sinks.mastodon.body: the body template does not yield JSON" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and MASTODON_TOKEN not in result.stderr


def documented_sinks(names: tuple[str, ...]) -> str:
    """The commented sink blocks of playbooks.example.yaml for these names, uncommented."""
    lines = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.rstrip().removeprefix("  # ").rstrip(":") in names and line.startswith("  # ") and line.endswith(":"):
            out.append("  " + line[4:])
            for nxt in lines[i + 1:]:
                if not nxt.startswith("  #   "):
                    break
                out.append("  " + nxt[4:])
    return "\n".join(out) + "\n"


def test_the_documented_social_sinks_work_as_written(config_path: Path) -> None:
    names = ("x", "mastodon", "facebook_page")
    block = documented_sinks(names)
    assert all(f"\n  {n}:\n" in "\n" + block for n in names), block
    text = config_path.read_text(encoding="utf-8")
    text = text.replace("\nsinks:\n", "\nsinks:\n" + block, 1)
    text = text.replace("  social: [outbox]", "  social: [x, mastodon, facebook_page]", 1)
    config_path.write_text(text, encoding="utf-8")
    env = {**ENV, "X_CONSUMER_KEY": "k", "X_CONSUMER_SECRET": "s", "X_ACCESS_TOKEN": "t",
           "X_ACCESS_TOKEN_SECRET": "ts"}

    loaded = load_config(config_path, environ=env)

    assert {n: loaded.sinks[n].cls.type_name for n in names} == {"x": "x", "mastodon": "http_post",
                                                                  "facebook_page": "http_post"}
    assert loaded.routes["social"] == list(names)
    assert render_everything(loaded, NOW) > 0  # every social template fits X and renders a JSON body
