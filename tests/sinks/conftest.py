"""Real loopback servers for the sink tests: an HTTP server and an SMTP server whose answers each test sets.

Nothing here mocks a client library; the sinks talk to sockets on 127.0.0.1 exactly as they would in
production, so a test that passes has exercised the real HTTP and SMTP code paths.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from continuity.clock import ManualClock
from continuity.sinks.base import Action, Outcome, Rendered, Sink, SinkContext

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def free_port() -> int:
    """A port nothing listens on (bound, read and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def context(tmp_path: Path) -> SinkContext:
    return SinkContext(base_dir=tmp_path, clock=ManualClock(NOW))


MakeAction = Callable[..., Action]


@pytest.fixture
def make_action() -> MakeAction:
    """Builds an Action with sensible defaults; keyword arguments override any field."""

    def make(**overrides: Any) -> Action:
        fields: dict[str, Any] = {
            "key": "sit-7/customer-banner/apply",
            "operation": "apply",
            "kind": "banner",
            "situation_id": 7,
            "step_id": "customer-banner",
            "channel": "phone",
            "audience": "customers",
            "messages": [
                Rendered(
                    "en",
                    {
                        "subject": "Phone line down",
                        "title": "Our phone line is down",
                        "body": "Please use chat or email.\n\nWe are on it.",
                    },
                ),
                Rendered(
                    "de",
                    {
                        "subject": "Telefon gestört",
                        "title": "Unsere Telefonleitung ist gestört",
                        "body": "Bitte nutzen Sie Chat oder E-Mail.",
                    },
                ),
            ],
            "facts": {"eta": "11:00", "affected": ["phone"]},
            "created_at": NOW,
        }
        fields.update(overrides)
        return Action(**fields)

    return make


# --- HTTP -------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    """Set `status` / `delay` (or `by_path`) per test; `requests` holds everything received."""

    port: int
    status: int = 200
    delay: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)
    # When set, answers each request itself: (status, extra headers, JSON body), e.g. a fake Mastodon.
    respond: Callable[[Recorded], tuple[int, dict[str, str], bytes]] | None = None
    requests: list[Recorded] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
        state.requests.append(recorded)
        # A hang ends early when the test tears the server down, so no thread outlives its test for long.
        if state.delay and state.stop.wait(state.delay):
            return
        status = state.by_path.get(self.path.split("?", 1)[0], state.status)
        extra: dict[str, str] = {}
        payload = b"{}"
        if state.respond is not None:
            status, extra, payload = state.respond(recorded)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `requests` instead."""


class _Server(ThreadingHTTPServer):
    state: HttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout tests) is expected; no traceback on stderr."""


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = HttpServer(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """Connecting here is refused."""
    return free_port()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) but never says a word: a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


# --- SMTP -------------------------------------------------------------------------------------------------

SMTP_USER = "ops"
SMTP_PASSWORD = "pw-Sm7p-s3cret"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records messages; `rcpt_replies` makes chosen addresses answer with a code.

    The faults of a server that has the whole message: `data_delay` answers the final dot that many seconds
    late (a slow content filter), `data_reply` answers it with that reply instead of 250 (the message is still
    recorded as having reached the server), `drop_after_data` closes the line instead of answering."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    data_reply: str | None = None
    drop_after_data: bool = False
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        if self.drop_after_data:
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 closing"  # written to a closed line: the client never reads it
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return self.data_reply or "250 OK"

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> str:
        # The hook answers AUTH PLAIN itself (aiosmtpd's built-in path warns about a deprecated attribute).
        if args[0].upper() != "PLAIN" or len(args) != 2:
            # Only PLAIN with an initial response is understood here; clients fall back to LOGIN after a
            # refused PLAIN, and that must look like the same refusal.
            return "535 5.7.8 Authentication credentials invalid"
        _, user, password = base64.b64decode(args[1]).decode().split("\0")
        ok = (user, password) == (SMTP_USER, SMTP_PASSWORD)
        self.logins.append((user, ok))
        return "235 2.7.0 Authentication successful" if ok else "535 5.7.8 Authentication credentials invalid"


@pytest.fixture
def smtp_server() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    # aiosmtpd cannot bind port 0 (it probes the port it was given), so pick a free one first.
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port, auth_require_tls=False)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


def apply_once(sink: Sink, action: Action) -> Outcome:
    """Apply one action in a fresh event loop and close the sink after it, as the runner does."""

    async def go() -> Outcome:
        try:
            return await sink.apply(action)
        finally:
            await sink.aclose()

    return asyncio.run(go())
