"""SIGTERM while a step is being sent and a probe hangs on a server that never answers: the step finishes and
is recorded once, the hanging probe is abandoned, and the daemon exits within 10 seconds with JSON log lines
only."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli
from tests.crashkit import free_port
from tests.daemon.test_daemon_e2e import TOKEN, DaemonProc, Smtp, db, wait_for, write_config

ANSWER_AFTER = 3.0  # seconds the webhook takes to answer: the SIGTERM lands in the middle


class SlowHook:
    """A webhook receiver that answers 200 only after ANSWER_AFTER seconds."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(body)
                time.sleep(ANSWER_AFTER)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts connections and never says a word: an IMAP greeting that never comes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, DaemonProc, SlowHook, SilentServer]]:
    monkeypatch.setenv("CONTINUITY_API_TOKEN", TOKEN)
    monkeypatch.setenv("SILENT_IMAP_PASSWORD", "not-used")
    smtp, hook, silent = Smtp(), SlowHook(), SilentServer()
    smtp.start()
    http_port = free_port()
    config = write_config(tmp_path, smtp.port, http_port)
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["sinks"]["slowhook"] = {"type": "webhook", "url": hook.url, "timeout": 10}
    cfg["routes"]["staff"] = ["slowhook"]
    # Due two seconds after opening, so the daemon (not the CLI that opens the outage) sends it, from a job.
    cfg["channels"]["chat"]["override"] = {"staff-runbook": {"after": "2s"}}
    cfg["channels"]["phone"]["health"] = {
        "every": "1s", "fail_after": 2, "recover_after": 2,
        "probes": [{"type": "imap", "host": "127.0.0.1", "port": silent.port, "security": "none",
                    "username": "staff@shop.example.test", "password": "${SILENT_IMAP_PASSWORD}", "timeout": "30s"}]}
    config.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    daemon = DaemonProc(config, http_port)
    try:
        yield tmp_path, daemon, hook, silent
    finally:
        if daemon.proc is not None:
            daemon.stop(signal.SIGKILL)
        smtp.stop()
        hook.close()
        silent.close()


def test_sigterm_lets_the_step_finish_and_exits_within_ten_seconds(
        stack: tuple[Path, DaemonProc, SlowHook, SilentServer]) -> None:
    workdir, daemon, hook, silent = stack
    daemon.start()
    wait_for(lambda: silent.accepted, 10, "the phone probe to connect to the silent server")

    opened = run_cli(workdir, "outage", "chat", "--reason", "chat widget down")
    assert opened.returncode == 0, opened.stderr
    assert hook.received == []
    wait_for(lambda: hook.received, 15, "the daemon to send the staff message to the webhook")

    assert daemon.proc is not None
    began = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(timeout=20)
    took = time.monotonic() - began
    daemon.proc = None

    assert code == 0
    assert took < 10.0, f"exit took {took:.1f}s"
    assert took >= ANSWER_AFTER - 1.0, "it waited for the webhook's answer rather than cutting it off"
    assert len(hook.received) == 1
    assert db(workdir, "SELECT step_id, sink, state FROM steps WHERE step_id = 'staff-runbook'") == [
        ("staff-runbook", "slowhook", "done")]
    lines = [line for line in daemon.log_text().splitlines() if line.strip()]
    for line in lines:
        json.loads(line)  # one JSON object per line: no raw tracebacks from libraries
    assert any('"event": "daemon.stop"' in line for line in lines)
