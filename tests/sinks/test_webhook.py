"""WebhookSink against a real HTTP server on loopback: body, signature, idempotency key, outcomes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from continuity.config.envrefs import FromEnv
from continuity.sinks.base import Action, Outcome, SinkContext
from continuity.sinks.webhook import WebhookSink

HMAC_KEY = "whsec-9f8e7d6c5b4a"
TOKEN_HEADER = "Bearer tok-1234567890abcdef"


def make_sink(
    context: SinkContext, url: str, client: httpx.AsyncClient | None = None, **extra: Any
) -> WebhookSink:
    cfg = WebhookSink.Settings.model_validate({"url": url, **extra})
    return WebhookSink("status-page", cfg, context, client=client)


def run(sink: WebhookSink, action: Action) -> Outcome:
    async def go() -> Outcome:
        try:
            return await (sink.apply(action) if action.operation == "apply" else sink.undo(action))
        finally:
            await sink.aclose()

    return asyncio.run(go())


def test_class_describes_itself() -> None:
    assert WebhookSink.type_name == "webhook"
    assert WebhookSink.actions == frozenset({"notify", "post", "notice", "banner"})
    assert WebhookSink.idempotent and WebhookSink.reversible


def test_post_carries_json_key_and_signature(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    sink = make_sink(
        context,
        http_server.url("/continuity"),
        secret=FromEnv(HMAC_KEY),
        headers={"X-Team": "support", "Idempotency-Key": "ignored"},
    )
    action = make_action()

    outcome = run(sink, action)

    assert outcome.ok, outcome.detail
    [req] = http_server.requests
    assert (req.method, req.path) == ("POST", "/continuity")
    assert req.headers["Idempotency-Key"] == action.key
    assert req.headers["X-Team"] == "support"
    assert req.headers["Content-Type"].startswith("application/json")
    expected = "sha256=" + hmac.new(HMAC_KEY.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Continuity-Signature"], expected)

    doc = json.loads(req.body)
    assert doc["operation"] == "apply"
    assert doc["key"] == action.key
    assert (doc["kind"], doc["situation_id"], doc["step_id"]) == ("banner", 7, "customer-banner")
    assert (doc["channel"], doc["audience"]) == ("phone", "customers")
    assert doc["messages"][0]["locale"] == "en"
    assert doc["messages"][0]["title"] == "Our phone line is down"
    assert doc["messages"][1]["body"] == "Bitte nutzen Sie Chat oder E-Mail."
    assert doc["facts"] == {"eta": "11:00", "affected": ["phone"]}


def test_undo_posts_the_same_document_marked_undo(
    context: SinkContext, make_action: Any, http_server: Any
) -> None:
    action = make_action(
        key="sit-7/customer-banner/undo", operation="undo", target_key="sit-7/customer-banner/apply"
    )

    assert run(make_sink(context, http_server.url()), action).ok

    [req] = http_server.requests
    doc = json.loads(req.body)
    assert doc["operation"] == "undo"
    assert doc["target_key"] == "sit-7/customer-banner/apply"
    assert req.headers["Idempotency-Key"] == "sit-7/customer-banner/undo"


def test_no_secret_means_no_signature(context: SinkContext, make_action: Any, http_server: Any) -> None:
    assert run(make_sink(context, http_server.url()), make_action()).ok
    assert "X-Continuity-Signature" not in http_server.requests[0].headers


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "ok"),
        (202, "ok"),
        (204, "ok"),
        (301, "error"),
        (400, "error"),
        (401, "error"),
        (404, "error"),
        (422, "error"),
        (429, "retryable"),
        (500, "retryable"),
        (502, "retryable"),
        (503, "retryable"),
    ],
)
def test_status_codes(
    context: SinkContext, make_action: Any, http_server: Any, status: int, expected: str
) -> None:
    http_server.status = status
    outcome = run(make_sink(context, http_server.url()), make_action())
    assert outcome.status == expected, outcome.detail
    assert str(status) in outcome.detail


def test_timeout_is_retryable(context: SinkContext, make_action: Any, http_server: Any) -> None:
    http_server.delay = 5.0
    outcome = run(make_sink(context, http_server.url(), timeout=0.3), make_action())
    assert outcome.status == "retryable"
    assert "0.3s" in outcome.detail


def test_hung_server_is_retryable(context: SinkContext, make_action: Any, silent_port: int) -> None:
    outcome = run(make_sink(context, f"http://127.0.0.1:{silent_port}/", timeout=0.3), make_action())
    assert outcome.status == "retryable"


def test_connection_refused_is_retryable(context: SinkContext, make_action: Any, closed_port: int) -> None:
    outcome = run(make_sink(context, f"http://127.0.0.1:{closed_port}/hook"), make_action())
    assert outcome.status == "retryable"
    assert "connect" in outcome.detail


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "not a url at all", "http://"])
def test_unusable_url_fails(context: SinkContext, make_action: Any, url: str) -> None:
    assert run(make_sink(context, url), make_action()).status == "error"


def test_injected_client_is_used_and_closed(context: SinkContext, make_action: Any, http_server: Any) -> None:
    async def go() -> tuple[Outcome, Outcome, bool]:
        client = httpx.AsyncClient()
        sink = make_sink(context, http_server.url(), client=client)
        first = await sink.apply(make_action())
        second = await sink.apply(make_action(key="other"))
        await sink.aclose()
        return first, second, client.is_closed

    first, second, closed = asyncio.run(go())
    assert first.ok and second.ok and closed
    assert [r.headers["Idempotency-Key"] for r in http_server.requests] == [
        "sit-7/customer-banner/apply",
        "other",
    ]


def test_secrets_never_reach_outcome_details(
    context: SinkContext, make_action: Any, http_server: Any, closed_port: int
) -> None:
    secrets: dict[str, Any] = {
        "secret": FromEnv(HMAC_KEY),
        "headers": {"Authorization": FromEnv(TOKEN_HEADER)},
    }
    cases: list[tuple[str, int, float]] = [
        (http_server.url(f"/hook/{HMAC_KEY}"), 200, 0.0),
        (http_server.url(), 400, 0.0),
        (http_server.url(), 500, 0.0),
        (http_server.url(), 200, 5.0),
        (f"http://127.0.0.1:{closed_port}/hook", 200, 0.0),
    ]
    for url, status, delay in cases:
        http_server.status, http_server.delay = status, delay
        sink = make_sink(context, url, timeout=0.3, **secrets)
        outcome = run(sink, make_action())
        assert HMAC_KEY not in repr(outcome) and "tok-1234567890abcdef" not in repr(outcome)


def test_secret_must_come_from_the_environment() -> None:
    with pytest.raises(ValidationError, match="secrets must not be written"):
        WebhookSink.Settings.model_validate({"url": "http://x", "secret": "literal-key"})
    with pytest.raises(ValidationError):
        WebhookSink.Settings.model_validate({"url": "http://x", "timout": 3})


@pytest.mark.parametrize("module", ["webhook", "email", "chat", "file_banner"])
def test_importing_a_sink_module_stays_light(module: str) -> None:
    # Config validation imports sink modules for their Settings; the CLI must not pay for the clients.
    code = (
        f"import sys, continuity.sinks.{module}\n"
        "heavy = [m for m in ('httpx', 'aiosmtplib', 'apprise') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_a_receiver_that_resets_the_connection_is_retried_and_counted(
    context: SinkContext, make_action: Any
) -> None:
    """A receiver that reads the request and answers with a TCP reset: retryable, and the request was seen."""
    import socket
    import struct
    import threading

    seen: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                seen.append(conn.recv(65536))
            finally:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = server.getsockname()[1]
        outcome = run(make_sink(context, f"http://127.0.0.1:{port}/hook", timeout=2), make_action())
    finally:
        stop.set()
        thread.join(2)
        server.close()
    assert outcome.status == "retryable", outcome.detail
    assert "connection" in outcome.detail
    assert len(seen) >= 1 and seen[0].startswith(b"POST /hook")
