"""Real processes for the cluster tests: a PostgreSQL database of its own, daemons started and SIGKILLed as
children, a peer whose failure opens an outage, a recording SMTP server and a webhook receiver that counts
every delivery by Idempotency-Key and operation."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from tests.crashkit import free_port

PLAYBOOK = """name: outage-cluster
kind: outage
title: Chat down (cluster test)
steps:
  - {id: staff-runbook, after: 0s, action: notify, to: staff, template: outage/staff-runbook-chat}
  - {id: customer-notice, after: 0s, action: notice, to: website, template: outage/customer-notice}
  - {id: reminder-1, after: 1s, action: notify, to: staff, template: outage/staff-reminder}
  - {id: website-banner, after: 2s, action: banner, to: website, template: outage/banner}
  - {id: reminder-2, after: 3s, action: notify, to: staff, template: outage/staff-reminder}
  - {id: social-post, after: 2s, action: post, to: social, template: outage/social-post}
on_close:
  - {id: staff-resolved, after: 0s, action: notify, to: staff, template: outage/staff-resolved}
"""


class Peer:
    """An HTTP server that answers 200 on /chat, or 503 while `failing` is set."""

    def __init__(self) -> None:
        self.failing = False
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                code = 503 if peer.failing else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hooks:
    """A webhook receiver: every POST is kept as (Idempotency-Key, operation); /post stands for a social
    network that does not deduplicate (the http_post sink, not idempotent), kept as (key, "post")."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                operation = "post" if self.path == "/post" else str(body.get("operation"))
                with hooks.lock:
                    hooks.deliveries.append((self.headers.get("Idempotency-Key", ""), operation))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counts(self) -> Counter[tuple[str, str]]:
        with self.lock:
            return Counter(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(workdir: Path, store_url: str, peer_port: int, smtp_port: int, hook_port: int,
                 failover: str = "10s") -> Path:
    (workdir / "playbooks").mkdir(parents=True, exist_ok=True)
    (workdir / "playbooks" / "outage-cluster.yaml").write_text(PLAYBOOK, encoding="utf-8")
    text = f"""
organisation: {{name: Test Shop, default_locale: en, locales: [en]}}
store: {{url: "{store_url}", busy_timeout: 5s}}
channels:
  chat:
    contact: https://chat.example.test
    playbook: outage-cluster
    health:
      every: 1s
      fail_after: 1
      recover_after: 1
      probes:
        - {{type: http, url: "http://127.0.0.1:{peer_port}/chat", timeout: 1s}}
sinks:
  staff_mail: {{type: email, host: 127.0.0.1, port: {smtp_port}, security: none, sender: alerts@example.test,
               to: [team@example.test], timeout: 5}}
  hook: {{type: webhook, url: "http://127.0.0.1:{hook_port}/hook", timeout: 5}}
  social_api: {{type: http_post, url: "http://127.0.0.1:{hook_port}/post", timeout: 5,
               body: '{{"status": {{{{ text }}}}}}'}}
routes:
  staff: [staff_mail]
  website: [hook]
  social: [social_api]
paths: {{playbooks: [playbooks]}}
retry: {{inline_budget: 0s}}
cluster: {{failover: {failover}}}
"""
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Node:
    """One `continuity daemon --node NAME` child process on a port of its own, its stderr in a log file."""

    def __init__(self, config: Path, name: str) -> None:
        self.config, self.name = config, name
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log_path = self.config.parent / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        env = dict(os.environ, CONTINUITY_API_TOKEN="cluster-t0ken")
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "continuity", "--config", str(self.config), "daemon", "--node", self.name,
                 "--bind", f"127.0.0.1:{self.port}", "--log-format", "json"],
                cwd=self.config.parent, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(timeout=20)
            self.proc = None

    def healthz(self) -> dict[str, Any] | None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/healthz",
                                     headers={"Authorization": "Bearer cluster-t0ken"})
        try:
            with urllib.request.urlopen(req, timeout=8) as r:
                return dict(json.loads(r.read()))
        except urllib.error.HTTPError as err:
            with err:
                return dict(json.loads(err.read()))
        except OSError:
            return None

    def role(self) -> str | None:
        body = self.healthz()
        return None if body is None else str(body.get("role"))

    def log_text(self) -> str:
        return "\n".join(p.read_text() for p in self.logs if p.exists())


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "continuity", "--config", str(config), *args], cwd=config.parent,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, CONTINUITY_USER="tester"))


def check_delivered_once(url: str, smtp_ids: Counter[str], arrived: set[str], hooks: Counter[tuple[str, str]]
                         ) -> Counter[str]:
    """The ledger against what the servers received: every row in an end state, every mail and every
    non-idempotent post at most once (exactly once when done), every idempotent delivery done at least once.
    Returns the rows' states."""
    import psycopg
    from psycopg.rows import dict_row

    from continuity.sinks.email import message_id

    with psycopg.connect(url, row_factory=dict_row) as conn:
        steps = conn.execute("SELECT * FROM steps ORDER BY id").fetchall()
    states = Counter(str(r["state"]) for r in steps)
    assert set(states) <= {"done", "undone", "cancelled", "uncertain"}, states  # nothing forgotten or stuck
    assert all(n == 1 for n in smtp_ids.values()), [m for m, n in smtp_ids.items() if n > 1]
    posts = Counter(key for (key, op) in hooks.elements() if op == "post")
    assert all(n == 1 for n in posts.values()), [k for k, n in posts.items() if n > 1]  # never twice
    for r in steps:
        if r["sink"] == "staff_mail":
            mid = message_id(r["key"], "team@example.test")
            if r["state"] == "done":
                assert smtp_ids[mid] == 1, r
            elif r["state"] == "cancelled":
                assert smtp_ids[mid] == 0, r
        elif r["sink"] == "social_api":
            if r["state"] == "done":
                assert posts[r["key"]] == 1, r
            elif r["state"] == "cancelled":
                assert posts[r["key"]] == 0, r
        elif r["sink"] == "hook" and r["state"] in ("done", "undone"):
            op = "undo" if r["phase"] == "undo" else "apply"
            assert hooks[(r["key"], op)] >= 1, r  # repeats with the same key are the receiver's to drop
    return states
