"""Real processes for the vantage tests: one daemon (vantage `central`), agents, and an HTTP peer that can be
made to fail for some vantages only: it tells them apart by the User-Agent each probe sends,
`continuity/VERSION (vantage NAME)`. (The `X-Site: ${SITE}` header only shows that references are resolved
at each site.)"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crashkit import free_port, wait_for

TOKEN = "agent-t0ken-for-tests"
MAX_SILENCE = 6  # seconds: the heartbeat probe's max_silence in the test config


class SitePeer:
    """An HTTP server answering 200 on /chat, or 503 to the vantages in `failing` (named in the User-Agent)."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.seen: dict[str, int] = {}
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                named = re.search(r"\(vantage ([a-z0-9_-]+)\)", self.headers.get("User-Agent", ""))
                site = named.group(1) if named else ""
                peer.seen[site] = peer.seen.get(site, 0) + 1
                code = 503 if site in peer.failing else 200
                body = b"down for you" if code == 503 else b"ok"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_config(workdir: Path, peer_port: int, http_port: int, quorum: int = 2,
                 vantages: tuple[str, ...] = ("central", "office")) -> Path:
    text = f"""
organisation: {{name: Test Shop, default_locale: en, locales: [en]}}
channels:
  chat:
    contact: https://chat.example.test
    health:
      every: 1s
      fail_after: 2
      recover_after: 2
      quorum: {quorum}
      probes:
        - type: http
          url: http://127.0.0.1:{peer_port}/chat
          headers: {{X-Site: "${{SITE}}"}}
          timeout: 1s
          vantages: [{', '.join(vantages)}]
  internet:
    contact: the office uplink
    health:
      every: 1s
      fail_after: 1
      recover_after: 1
      probes:
        - {{type: heartbeat, vantage: office, max_silence: {MAX_SILENCE}s}}
retry: {{inline_budget: 0s}}
daemon:
  bind: 127.0.0.1:{http_port}
  vantage: central
"""
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def get(port: int, path: str, token: str | None = TOKEN) -> tuple[int, Any] | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            raw = r.read()
            return r.status, json.loads(raw) if r.headers.get_content_type() == "application/json" else raw.decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())
    except OSError:
        return None


class Proc:
    """A `continuity daemon` or `continuity agent` child process, its stderr in a log file."""

    def __init__(self, workdir: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.workdir, self.name, self.args, self.env = workdir, name, args, env
        self.proc: subprocess.Popen[str] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log_path = self.workdir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        with log_path.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "continuity", *self.args], cwd=self.workdir,
                                         env=self.env, stdout=subprocess.DEVNULL, stderr=log, text=True)

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if sig == signal.SIGTERM:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process must run to hear SIGTERM
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    def log_text(self) -> str:
        return "\n".join(p.read_text() for p in self.logs if p.exists())


class Site:
    """The daemon, its agents and the peer of one test."""

    def __init__(self, workdir: Path, vantages: tuple[str, ...] = ("central", "office")) -> None:
        self.workdir = workdir
        self.peer = SitePeer()
        self.http_port = free_port()
        self.config = write_config(workdir, self.peer.port, self.http_port, vantages=vantages)
        base = {k: v for k, v in os.environ.items() if k != "CONTINUITY_NOW"}
        self.daemon = Proc(workdir, "daemon", ["--config", str(self.config), "daemon", "--log-format", "json"],
                           {**base, "CONTINUITY_API_TOKEN": TOKEN, "SITE": "central", "CONTINUITY_USER": "tester"})
        self.agents: dict[str, Proc] = {}

    def agent(self, vantage: str, token: str = TOKEN) -> Proc:
        env = {k: v for k, v in os.environ.items() if k not in ("CONTINUITY_NOW", "CONTINUITY_CONFIG")}
        proc = Proc(self.workdir, f"agent-{vantage}", ["agent", "--server", f"http://127.0.0.1:{self.http_port}",
                                                       "--vantage", vantage, "--log-format", "json"],
                    {**env, "CONTINUITY_API_TOKEN": token, "SITE": vantage})
        self.agents[vantage] = proc
        return proc

    def start_daemon(self) -> None:
        self.daemon.start()
        wait_for(lambda: get(self.http_port, "/healthz"), 20, "daemon /healthz")

    def healthz(self) -> dict[str, Any]:
        answer = get(self.http_port, "/healthz")
        return answer[1] if answer is not None else {}

    def view(self, channel: str, vantage: str) -> dict[str, Any]:
        return dict(self.healthz().get("quorum", {}).get(channel, {}).get("vantages", {}).get(vantage, {}))

    def situations(self) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.workdir / "continuity.db")
        try:
            return conn.execute("SELECT channel, kind, state FROM situations ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def open_outages(self) -> set[str]:
        return {ch for ch, kind, state in self.situations() if kind == "outage" and state == "open"}

    def staff_files(self, step: str) -> list[Path]:
        """The outbox's staff messages of one step (`staff-monitoring-degraded`, …)."""
        return sorted((self.workdir / "outbox").glob(f"*-{step}-apply-*.eml"))

    def close(self) -> None:
        for proc in [*self.agents.values(), self.daemon]:
            if proc.proc is not None:
                proc.proc.send_signal(signal.SIGCONT)
                proc.stop(signal.SIGKILL)
        self.peer.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so a fixture can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _explain(request: pytest.FixtureRequest, s: Site) -> None:
    """A failed test prints what the processes logged and the store held: timing failures on a loaded
    machine are diagnosed from these, not guessed at."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    print("situations:", s.situations())
    for proc in [s.daemon, *s.agents.values()]:
        lines = proc.log_text().splitlines()
        print(f"--- {proc.name}: last {min(len(lines), 60)} of {len(lines)} log lines")
        print("\n".join(lines[-60:]))


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    try:
        yield s
    finally:
        _explain(request, s)
        s.close()


@pytest.fixture
def three_sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """chat seen from central and two agents (office, branch), quorum 2; internet on the office's heartbeat."""
    s = Site(tmp_path, ("central", "office", "branch"))
    try:
        yield s
    finally:
        _explain(request, s)
        s.close()
