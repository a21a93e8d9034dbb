"""A chat post survives a SIGKILL of the process sending it: the send marks are in the store, so the next
`continuity tick` (a new process) neither posts a target twice nor forgets what it had sent.

Everything is real: `python -m continuity` in a subprocess on a copy of the shipped config whose staff route
goes to a chat sink with two apprise json:// targets, both on one `http.server` on 127.0.0.1 (in a thread of
this test) that records every POST and answers as each test scripts it: at once, with a 500, or not at all
(it holds the request, so the process is killed while the chat service has the message and has not answered).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIG_NAME, NOW, STORE_NAME, Configure, RunCli
from tests.crashkit import wait_for

RUNBOOK = "Phone down"  # in the title of the staff runbook of `outage phone` ("[Example Webshop] #1 Phone down – …")
UNSURE_NOTE = "Check whether a message went out"  # the title of the note telling staff about an uncertain step


@dataclass
class Post:
    path: str
    title: str


@dataclass
class ChatService:
    """Records every POST; `script[path]` lists the answers to that path's runbook posts, in turn ("ok", "500",
    or "hold": keep the request and never answer until the test ends). Everything else is answered 200."""

    port: int = 0
    script: dict[str, list[str]] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def answer(self, post: Post) -> str:
        with self.lock:
            self.posts.append(post)
            queue = self.script.get(post.path, [])
            return queue.pop(0) if RUNBOOK in post.title and queue else "ok"

    def titled(self, path: str, text: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.path == path and text in p.title]


@pytest.fixture
def chat() -> Iterator[ChatService]:
    service = ChatService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            title = str(json.loads(body).get("title", ""))
            what = service.answer(Post(self.path, title))
            if what == "hold":  # the message is in; the answer never comes while the sender lives
                service.stop.wait(60)
                return
            status = 500 if what == "500" else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            """A client killed mid-request is what these tests do; no traceback on stderr."""

    server = Server(("127.0.0.1", 0), Handler)
    service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def chat_config(configure: Configure, chat: ChatService, **retry: str) -> dict[str, str]:
    """The shipped config with the staff route going to a chat sink with targets /a and /b; returns the
    environment holding their URLs (chat URLs must come from ${ENV})."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["team_chat"] = {"type": "chat", "urls": ["${CHAT_A}", "${CHAT_B}"]}
        cfg["routes"]["staff"] = ["team_chat"]
        cfg["retry"].update(retry)

    configure(edit)
    return {"CHAT_A": chat.url("/a"), "CHAT_B": chat.url("/b")}


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    """What tests.conftest.run_cli gives the CLI, for a process this test starts (and kills) itself."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONTINUITY_CONFIG", "CONTINUITY_NOW", "CONTINUITY_USER", "SMTP_PASSWORD")}
    env.update({"CONTINUITY_USER": "tester", "COLUMNS": "250", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8",
                "CONTINUITY_NOW": NOW.isoformat()})
    env.update(extra)
    return env


def outage_killed_when(workdir: Path, env: dict[str, str], ready: Any, what: str) -> None:
    """Run `continuity outage phone` and SIGKILL it as soon as `ready()` is true (while it is still running)."""
    log_path = workdir / "killed-outage.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "continuity", "--config", str(workdir / CONFIG_NAME), "outage", "phone",
             "--reason", "SIP trunk down"],
            cwd=workdir, env=cli_env(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            def now_or_never() -> bool:
                assert proc.poll() is None, f"the outage finished before {what}:\n" + log_path.read_text("utf-8")
                return bool(ready())

            wait_for(now_or_never, 60, what, every=0.01)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def ledger(workdir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """A read-only look into the store while the CLI works (only to time the kill; results come from the CLI)."""
    if not (workdir / STORE_NAME).exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{workdir / STORE_NAME}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:  # being created
        return []
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # its tables are not there yet
        return []
    finally:
        conn.close()


def runbook_row(cli: RunCli, env: dict[str, str], **options: Any) -> dict[str, Any]:
    status = cli("status", "--json", env=env, **options)
    assert status.returncode == 0, status.stdout + status.stderr
    [sit] = json.loads(status.stdout)["open"]
    [row] = [s for s in sit["steps"] if s["sink"] == "team_chat" and s["step"] == "staff-runbook"]
    return dict(row)


def test_killed_while_the_chat_service_holds_the_post_is_uncertain_never_posted_twice(
    configure: Configure, cli: RunCli, workdir: Path, chat: ChatService
) -> None:
    env = chat_config(configure, chat)
    chat.script = {"/b": ["hold"]}  # /a answers at once; /b takes the runbook and never answers

    outage_killed_when(workdir, env, lambda: chat.titled("/b", RUNBOOK), "the runbook to reach target /b")
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 1)

    tick = cli("tick", env=env, now=NOW)

    # The interrupted row runs again (the chat sink is idempotent): /a is skipped (sent before the kill), /b is
    # left for a person (it had the message when the process died). Neither gets the runbook a second time.
    assert tick.returncode == 1, tick.stdout + tick.stderr
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 1)
    row = runbook_row(cli, env, now=NOW)
    assert row["state"] == "uncertain", row
    assert f"continuity settle {row['id']} sent" in tick.stderr
    # Staff were told about the doubt, on both targets, once.
    assert (len(chat.titled("/a", UNSURE_NOTE)), len(chat.titled("/b", UNSURE_NOTE))) == (1, 1)

    again = cli("tick", "--json", env=env, now=NOW)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["ran"] == []

    settled = cli("settle", str(row["id"]), "sent", "--json", env=env, now=NOW)
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert runbook_row(cli, env, now=NOW)["state"] == "done"
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 1)


def test_killed_after_the_chat_service_confirmed_a_target_never_posts_it_again(
    configure: Configure, cli: RunCli, workdir: Path, chat: ChatService
) -> None:
    # /a takes the runbook (200, marked sent); /b refuses it once (500: forgotten, retried). The runner waits 30s
    # for that retry inline, and the process is killed while it waits: the kill lands after /a was confirmed.
    env = chat_config(configure, chat, first_delay="30s", inline_budget="1m")
    chat.script = {"/b": ["500"]}

    def waiting_for_the_retry() -> bool:
        return ledger(workdir, "SELECT state FROM steps WHERE step_id = 'staff-runbook' AND sink = 'team_chat'") \
            == [("failed",)]

    outage_killed_when(workdir, env, waiting_for_the_retry, "/b's refusal to be recorded for a retry")
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 1)

    later = NOW + timedelta(minutes=2)  # the retry is due
    tick = cli("tick", env=env, now=later)

    assert tick.returncode == 0, tick.stdout + tick.stderr
    # /a is not posted again (its mark survived the kill); /b gets the runbook it refused.
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 2)
    row = runbook_row(cli, env, now=later)
    assert row["state"] == "done", row
    assert chat.titled("/a", UNSURE_NOTE) == chat.titled("/b", UNSURE_NOTE) == []

    again = cli("tick", "--json", env=env, now=later)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["ran"] == []
    assert (len(chat.titled("/a", RUNBOOK)), len(chat.titled("/b", RUNBOOK))) == (1, 2)
